import assert from "node:assert/strict";
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { connectNats, subjects } from "@dfs/nats";
import { Op } from "@dfs/proto";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { type CaptureService, startCapture } from "../../dist/index.js";
import { batchesOf, startHarness, waitForRaw } from "../support/harness.js";

/** Ids of the source's binlog dump threads (one per reading replica). */
async function dumpThreads(conn: import("mysql2/promise").Connection): Promise<number[]> {
  const [rows] = await conn.query(
    "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
  );
  return (rows as { ID: number | string }[]).map((r) => Number(r.ID));
}

test("a cut binlog connection is re-opened from the checkpoint: no change lost or doubled", async () => {
  const h = await startHarness("recon", {
    overrides: { capture: { reconnect: { initialMs: "100ms", maxMs: "1s" } } },
  });
  try {
    const { conn, db } = h;
    await conn.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    let next = 1;
    const writeTxns = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const values = Array.from({ length: 10 }, () => `(${next}, ${next++})`).join(",");
        await conn.query(`INSERT INTO \`${db}\`.t VALUES ${values}`);
      }
    };
    await writeTxns(10);
    const before = await waitFor(
      async () => {
        const ids = await dumpThreads(conn);
        return ids.length > 0 ? ids : null;
      },
      { timeoutMs: 10_000, what: "capture's binlog dump thread" },
    );

    // Cut the connection twice, with writes before, between and after.
    for (let round = 0; round < 2; round++) {
      for (const id of await dumpThreads(conn)) await conn.query(`KILL ${id}`).catch(() => {});
      await writeTxns(10);
    }
    const written = next - 1;
    const messages = await waitForRaw(
      h.nc,
      h.id,
      (ms) => batchesOf(ms).reduce((n, b) => n + b.rows.length, 0) >= written,
      30_000,
    );
    const ids = batchesOf(messages).flatMap((b) =>
      b.rows
        .filter((r) => r.op === Op.OP_CREATE)
        .map((r) => Number((r.after[0]!.kind as { value: bigint }).value)),
    );
    assert.equal(ids.length, written, "every inserted row exactly once");
    assert.deepEqual(
      ids,
      Array.from({ length: written }, (_, i) => i + 1),
      "in insertion order",
    );
    const msgIds = messages.map((m) => m.msgId);
    assert.equal(new Set(msgIds).size, msgIds.length, "no message id twice");
    const after = await dumpThreads(conn);
    assert.ok(
      after.length > 0 && after.every((id) => !before.includes(id)),
      "capture reads through a new connection",
    );
    assert.match(h.capture.status().lastError, /connection|closed|killed|lost/i, "the cut was noticed");
    assert.equal(h.capture.status().state, "running");
  } finally {
    await h.close();
  }
});

test("publishing resumes when the server's last message id differs from the stream's last stored message", async () => {
  await ensureStack();
  const id = uniqueId("lastid");
  const db = `${id}_db`;
  const conn = await sourceConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  const cfg = testConfig(id, db);
  let capture: CaptureService | null = null;
  try {
    await conn.query(`CREATE DATABASE \`${db}\``);
    await conn.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY)`);
    capture = await startCapture(cfg);
    await conn.query(`INSERT INTO \`${db}\`.t VALUES (1), (2)`);
    await waitForRaw(nc, id, (ms) => batchesOf(ms).length >= 1);
    await capture.stop();
    capture = null;
    // The server keeps the deleted message's id as "last": a restart's resync must not expect
    // the stored tail's id, or every publish fails with "wrong last msg ID" forever.
    const jsm = await jetstreamManager(nc);
    const stream = subjects.streamName(id);
    const info = await jsm.streams.info(stream);
    await jsm.streams.deleteMessage(stream, info.state.last_seq, false);
    capture = await startCapture(cfg);
    await conn.query(`INSERT INTO \`${db}\`.t VALUES (3)`);
    const messages = await waitForRaw(
      nc,
      id,
      (ms) => batchesOf(ms).reduce((n, b) => n + b.rows.length, 0) >= 3,
      20_000,
    );
    assert.equal(
      batchesOf(messages).reduce((n, b) => n + b.rows.length, 0),
      3,
    );
  } finally {
    await capture?.stop().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc.close();
    await conn.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await conn.end();
  }
});
