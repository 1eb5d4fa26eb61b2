// The journal writer alone, with a real journal on a temporary file and stand-ins for the rest:
// group commit, backpressure on the reader, and settling at the checkpoint (no servers).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { decodeBatch, Position, ValueKind } from "@dfs/codec";
import { createLogger, waitFor } from "@dfs/common";
import { Op } from "@dfs/proto";
import { Assembler } from "../../dist/assembler.js";
import { Journal } from "../../dist/journal.js";
import { JournalWriter } from "../../dist/journal-writer.js";
import type { TableInfo } from "../../dist/tables.js";
import { CaptureTelemetry } from "../../dist/telemetry.js";

const dir = mkdtempSync(join(tmpdir(), "dfs-writer-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const T: TableInfo = {
  db: "d",
  table: "t",
  columns: [{ name: "id", type: "int", charset: "" }],
  keys: ["id"],
  kinds: [ValueKind.Int],
  primaryKey: ["id"],
  schemaVersion: 1,
  subject: "dfs.s.d.t",
};
const at = (pos: number) => Position.at("mysql-bin.000001", pos, "", "srv");

function setup(
  o: {
    groupCommitMs?: number;
    groupCommitBytes?: number;
    maxJournalBytes?: number;
    trimIntervalMs?: number;
    heartbeatIntervalMs?: number;
    /** The reader's position; default at(4). */
    position?: () => Position;
  } = {},
) {
  const journal = new Journal(join(dir, `w${n++}.db`));
  journal.append([], { position: at(4), committedScn: 0, txnOrdinal: 0 });
  const throttle = { paused: false, pauses: 0, pause: () => {}, resume: () => {} };
  throttle.pause = () => {
    throttle.paused = true;
    throttle.pauses++;
  };
  throttle.resume = () => {
    throttle.paused = false;
  };
  let notified = 0;
  let acked = 0;
  const writer = new JournalWriter({
    journal,
    notify: () => notified++,
    acked: () => acked,
    telemetry: new CaptureTelemetry("s", 1 << 30),
    throttle,
    position: o.position ?? (() => at(4)),
    groupCommitMs: o.groupCommitMs ?? 20,
    groupCommitBytes: o.groupCommitBytes ?? 1 << 20,
    maxJournalBytes: o.maxJournalBytes ?? 1 << 30,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? 60_000,
    trimIntervalMs: o.trimIntervalMs ?? 60_000,
    log: createLogger({ level: "fatal" }),
    onFatal: (e) => {
      throw e;
    },
  });
  const assembler = new Assembler({
    sourceId: "s",
    serverUuid: "srv",
    journalId: journal.journalId,
    maxRows: 1000,
    maxBytes: 1 << 20,
    maxBufferBytes: 1 << 22,
    ddlSubject: "dfs.s._ddl",
    heartbeatSubject: "dfs.s._heartbeat",
    nextScn: journal.nextScn,
    txnOrdinal: 0,
    position: at(4),
    write: writer.write,
  });
  writer.bind(assembler);
  const txn = (pos: number, ids: number[]) => {
    assembler.onBegin("", at(pos), 0);
    assembler.onRows(
      Op.OP_CREATE,
      T,
      ids.map((id) => ({ id })),
      0,
    );
    assembler.onCommit(at(pos + 50), 0);
    writer.afterEvent();
  };
  return {
    journal,
    writer,
    assembler,
    throttle,
    txn,
    notified: () => notified,
    setAcked: (s: number) => (acked = s),
  };
}

describe("JournalWriter", () => {
  test("heartbeats while the reader has no position (it is being restarted) leave the checkpoint alone", async () => {
    // A heartbeat at no position made the checkpoint empty, and the next reader started at the
    // beginning of the binlog: every change read again (found by the chaos test, source restart).
    let asked = 0;
    const s = setup({
      heartbeatIntervalMs: 5,
      position: () => {
        asked++;
        return Position.NONE;
      },
    });
    try {
      s.txn(100, [1]);
      s.writer.flush();
      s.writer.start();
      await waitFor(() => asked >= 3, { timeoutMs: 2000, what: "three heartbeat ticks" });
      const c = s.writer.settle();
      assert.equal(
        c.position.toString(),
        at(150).toString(),
        "the checkpoint stays after the last transaction",
      );
    } finally {
      s.writer.close();
      s.journal.close();
    }
  });

  test("complete transactions wait for the group commit window, then share one commit and one message", async () => {
    const s = setup({ groupCommitMs: 30 });
    s.txn(100, [1]);
    s.txn(200, [2]);
    assert.equal(s.journal.stats().committedScn, 0, "not yet committed: inside the window");
    await waitFor(() => s.journal.stats().committedScn === 1, { timeoutMs: 2000, what: "the group commit" });
    assert.equal(s.notified(), 1, "one journal commit for both transactions");
    assert.equal(s.journal.checkpoint?.position.pos, 250);
    const [entry] = s.journal.read(0, 10);
    const batch = decodeBatch(entry!.payload);
    assert.deepEqual(
      batch.sourceTxns.map((t) => Number(t.startPos)),
      [100, 200],
      "one message of the table, both source transactions in it",
    );
    s.journal.close();
  });

  test("groupCommitBytes commits at once", () => {
    const s = setup({ groupCommitMs: 60_000, groupCommitBytes: 1 });
    s.txn(100, [1]);
    assert.equal(s.journal.stats().committedScn, 1);
    s.writer.close();
    s.journal.close();
  });

  test("a full journal pauses the reader; once publishing trims it below 80%, the reader resumes", async () => {
    const s = setup({ groupCommitBytes: 1, maxJournalBytes: 300, trimIntervalMs: 10 });
    for (let i = 0; i < 20 && !s.throttle.paused; i++) s.txn(100 + i * 100, [i, i + 100, i + 200]);
    assert.equal(s.throttle.paused, true, "paused at the limit");
    assert.ok(s.journal.stats().bytes >= 300);
    s.writer.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.throttle.paused, true, "nothing acknowledged yet: still paused");
    s.setAcked(s.journal.stats().committedScn); // the publisher caught up
    await waitFor(() => !s.throttle.paused, { timeoutMs: 2000, what: "the reader to resume" });
    assert.equal(s.journal.stats().bytes, 0, "published entries were trimmed");
    assert.equal(s.throttle.pauses, 1);
    s.writer.close();
    s.journal.close();
  });

  test("settle keeps closed groups and drops the open one (read again); moveTo sets the new checkpoint", () => {
    const s = setup({ groupCommitMs: 60_000 });
    s.txn(100, [1]);
    s.writer.flush(); // the group of the first transaction closes
    s.txn(200, [2]); // complete, but in a group that is still open
    s.assembler.onBegin("", at(300), 0);
    s.assembler.onRows(Op.OP_CREATE, T, [{ id: 3 }], 0);
    const cp = s.writer.settle();
    assert.equal(cp.position.pos, 150, "after the last closed group: the open one is read again from there");
    assert.equal(cp.committedScn, 1);
    assert.equal(s.journal.stats().committedScn, 1, "nothing of the open group was kept");
    assert.equal(s.assembler.inTransaction, false, "the open transaction is forgotten (it is read again)");
    const moved = s.writer.moveTo(at(9000));
    assert.equal(moved.position.pos, 9000);
    assert.equal(s.journal.checkpoint?.position.pos, 9000);
    s.writer.close();
    s.journal.close();
  });
});
