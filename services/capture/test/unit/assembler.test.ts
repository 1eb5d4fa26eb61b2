// The Assembler alone: binlog events in, journal entries out, through a recording writer (no servers).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeBatch, decodeChanges, decodeDdl, decodeHeartbeat, Position, ValueKind } from "@dfs/codec";
import { Op } from "@dfs/proto";
import { Assembler, type AssemblerOptions } from "../../dist/assembler.js";
import type { Checkpoint, JournalEntry } from "../../dist/journal.js";
import type { TableInfo } from "../../dist/tables.js";

const SERVER = "mariadb:1";
const at = (file: number, pos: number, gtid = "") =>
  Position.at(`mysql-bin.${String(file).padStart(6, "0")}`, pos, gtid, SERVER);

function table(name: string): TableInfo {
  return {
    db: "shop",
    table: name,
    columns: [
      { name: "id", type: "bigint(20)", charset: "" },
      { name: "v", type: "varchar(20)", charset: "utf8mb4" },
    ],
    keys: ["id", "v"],
    kinds: [ValueKind.Int, ValueKind.Text],
    primaryKey: ["id"],
    schemaVersion: 7,
    subject: `dfs.s1.shop.${name}`,
  };
}

/** An assembler whose writes are recorded instead of journaled. */
function recording(o: Partial<AssemblerOptions> = {}) {
  const writes: { entries: JournalEntry[]; checkpoint: Checkpoint | null }[] = [];
  const a = new Assembler({
    sourceId: "s1",
    serverUuid: SERVER,
    journalId: "journal-0001",
    maxRows: 1000,
    maxBytes: 512 * 1024,
    maxBufferBytes: 8 * 1024 * 1024,
    ddlSubject: "dfs.s1._ddl",
    heartbeatSubject: "dfs.s1._heartbeat",
    nextScn: 1,
    txnOrdinal: 0,
    position: at(1, 4),
    write: (entries, checkpoint) => writes.push({ entries, checkpoint }),
    ...o,
  });
  return { a, writes, entries: () => writes.flatMap((w) => w.entries) };
}

const rows = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, v: `row ${from + i}` }));

describe("Assembler", () => {
  test("a transaction over two tables: one message per table, txn_last on the last, one checkpoint at its end", () => {
    const { a, writes, entries } = recording();
    const orders = table("orders");
    const lines = table("lines");
    a.onBegin("0-1-10", at(1, 100), 1_700_000_000_000);
    a.onRows(Op.OP_CREATE, orders, rows(1, 2), 1_700_000_000_000);
    a.onRows(Op.OP_CREATE, lines, rows(10, 3), 1_700_000_000_000);
    a.onRows(
      Op.OP_UPDATE,
      orders,
      [{ before: { id: 1, v: "row 1" }, after: { id: 1, v: "changed" } }],
      1_700_000_000_000,
    );
    a.onCommit(at(1, 500, "0-1-10"), 1_700_000_000_000);
    assert.equal(writes.length, 0, "nothing is written before flush (group commit)");
    assert.ok(a.hasPending);
    a.flush();
    assert.equal(writes.length, 1, "one journal commit");
    const es = entries();
    assert.deepEqual(
      es.map((e) => [e.scn, e.ref?.table, e.ops]),
      [
        [1, "orders", { c: 2, u: 1, d: 0, r: 0 }],
        [2, "lines", { c: 3, u: 0, d: 0, r: 0 }],
      ],
    );
    const batches = es.map((e) => decodeBatch(e.payload));
    assert.deepEqual(
      batches.map((b) => b.txnLast),
      [false, true],
    );
    assert.ok(batches.every((b) => b.txnOrdinal === 1n && b.position?.gtid === "0-1-10"));
    assert.deepEqual(
      batches.map((b) => decodeChanges(b).map((c) => c.rowIndex)),
      [
        [0, 1, 5],
        [2, 3, 4],
      ],
      "row indexes count over the whole group, in binlog order; each table's rows stay in order",
    );
    assert.deepEqual(
      batches[0]!.sourceTxns.map((t) => [t.gtid, t.startPos, t.firstRow]),
      [["0-1-10", 100n, 0]],
    );
    assert.deepEqual(
      es.map((e) => e.msgId),
      ["s1:0000000001:000000000100:0", "s1:0000000001:000000000100:1"],
    );
    const cp = writes[0]!.checkpoint!;
    assert.equal(cp.position.toString(), "mysql-bin.000001:500");
    assert.equal(cp.position.gtid, "0-1-10");
    assert.equal(cp.committedScn, 2);
    assert.equal(cp.txnOrdinal, 1);
    assert.equal(a.rowsSeen, 6);
    assert.equal(a.txnsSeen, 1);
  });

  test("small transactions committed within one group share one message per table; each row keeps its transaction", () => {
    const { a, writes, entries } = recording();
    for (let i = 0; i < 5; i++) {
      a.onBegin(`0-1-${20 + i}`, at(2, 1000 + i * 100), 1_700_000_000_000 + i * 1000);
      a.onRows(Op.OP_UPDATE, table("t1"), [{ before: { id: i, v: "a" }, after: { id: i, v: "b" } }], 0);
      a.onRows(Op.OP_DELETE, table("t2"), [{ id: i, v: "x" }], 0);
      a.onCommit(at(2, 1000 + i * 100 + 90), 0);
    }
    a.flush();
    assert.equal(writes.length, 1);
    const es = entries();
    assert.equal(es.length, 2, "two messages for five transactions");
    const [t1, t2] = es.map((e) => decodeBatch(e.payload));
    assert.deepEqual(
      t1!.sourceTxns.map((t) => t.gtid),
      ["0-1-20", "0-1-21", "0-1-22", "0-1-23", "0-1-24"],
    );
    assert.deepEqual(
      decodeChanges(t1!).map((c) => [c.rowIndex, c.sourceTxn]),
      [
        [0, 0],
        [2, 1],
        [4, 2],
        [6, 3],
        [8, 4],
      ],
    );
    assert.deepEqual(
      t2!.sourceTxns.map((t) => t.firstRow),
      [0, 2, 4, 6, 8],
    );
    assert.equal(writes[0]!.checkpoint?.position.pos, 1490, "after the group's last transaction");
    assert.equal(writes[0]!.checkpoint?.txnOrdinal, 1, "one group");
    assert.equal(a.txnsSeen, 5);
  });

  test("a flush inside a transaction ends the group at that transaction's commit, never inside it", () => {
    const { a, writes, entries } = recording();
    a.onBegin("", at(3, 100), 0);
    a.onRows(Op.OP_CREATE, table("t"), rows(1, 2), 0);
    a.flush();
    assert.equal(writes.length, 0, "nothing written: the transaction is open");
    a.onRows(Op.OP_CREATE, table("t"), rows(3, 1), 0);
    a.onCommit(at(3, 400), 0);
    a.flush();
    assert.deepEqual(
      entries().map((e) => e.ops?.c),
      [3],
    );
    assert.equal(writes.at(-1)!.checkpoint?.position.pos, 400);
  });

  test("a message closes at maxRows and the group's ids stay stable when read again", () => {
    const run = () => {
      const { a, entries } = recording({ maxRows: 2 });
      a.onBegin("", at(2, 4), 0);
      a.onRows(Op.OP_CREATE, table("t"), rows(1, 5), 0);
      a.onCommit(at(2, 900), 0);
      a.flush();
      return entries();
    };
    const first = run();
    assert.deepEqual(
      first.map((e) => e.ops?.c),
      [2, 2, 1],
    );
    assert.deepEqual(
      first.map((e) => decodeBatch(e.payload).chunk),
      [0, 1, 2],
    );
    assert.deepEqual(
      first.map((e) => decodeBatch(e.payload).txnLast),
      [false, false, true],
    );
    assert.deepEqual(
      run().map((e) => e.msgId),
      first.map((e) => e.msgId),
      "the same binlog gives the same message ids",
    );
  });

  test("a group larger than maxBufferBytes is written in chunks without a checkpoint until its end", () => {
    const { a, writes } = recording({ maxBufferBytes: 2048, maxRows: 10 });
    a.onBegin("", at(3, 4), 0);
    for (let i = 0; i < 20; i++) a.onRows(Op.OP_CREATE, table("big"), rows(i * 10, 10), 0);
    const before = writes.length;
    assert.ok(before > 0, "chunks were written before the commit");
    assert.ok(
      writes.every((w) => w.checkpoint === null),
      "no checkpoint inside the group",
    );
    a.onCommit(at(3, 99_999), 0);
    a.flush();
    const last = writes.at(-1)!;
    assert.equal(last.checkpoint?.position.pos, 99_999);
    const all = writes.flatMap((w) => w.entries);
    assert.equal(
      all.reduce((n, e) => n + (e.ops?.c ?? 0), 0),
      200,
    );
    assert.equal(decodeBatch(all.at(-1)!.payload).txnLast, true);
    assert.equal(all.filter((e) => decodeBatch(e.payload).txnLast).length, 1);
  });

  test("DDL ends the group and is its own entry; heartbeats wait for the end of a transaction", () => {
    const { a, entries, writes } = recording();
    a.onBegin("", at(4, 100), 0);
    a.onRows(Op.OP_CREATE, table("t"), [{ id: 9, v: "x" }], 0);
    a.onCommit(at(4, 200), 0);
    a.onDdl("ALTER TABLE `my.db`.t ADD c INT", "my.db", [{ db: "my.db", table: "t" }], at(4, 250), 0);
    a.onBegin("", at(4, 250), 0);
    a.heartbeat(at(4, 250));
    a.onRows(Op.OP_DELETE, table("t"), [{ id: 1, v: "x" }], 0);
    a.onCommit(at(4, 300), 0);
    a.heartbeat(at(4, 300));
    a.flush();
    const es = entries();
    assert.deepEqual(
      es.map((e) => e.kind),
      ["batch", "ddl", "batch", "heartbeat"],
      "the group before the DDL, the DDL, the next group, and no heartbeat inside a transaction",
    );
    const ddl = decodeDdl(es[1]!.payload);
    assert.deepEqual(ddl.tables, [{ db: "my.db", table: "t" }]);
    assert.equal(es[1]!.msgId, "s1:0000000004:000000000250:ddl");
    assert.deepEqual(
      [ddl.position?.startPos, ddl.position?.pos],
      [200n, 250n],
      "the DDL starts where the commit before it ended",
    );
    const hb = decodeHeartbeat(es[3]!.payload);
    assert.equal(hb.position?.pos, 300n);
    assert.equal(writes.at(-1)!.checkpoint?.position.pos, 300);
  });

  test("a DDL after its GTID event starts there (not at its end)", () => {
    const { a, entries } = recording();
    a.onBegin("0-1-7", at(4, 230), 0);
    a.onDdl("ALTER TABLE `my.db`.t ADD c INT", "my.db", [{ db: "my.db", table: "t" }], at(4, 300), 0);
    a.flush();
    const ddl = decodeDdl(entries()[0]!.payload);
    assert.deepEqual([ddl.position?.gtid, ddl.position?.startPos, ddl.position?.pos], ["0-1-7", 230n, 300n]);
  });

  test("rows without a BEGIN start where the last transaction ended", () => {
    const { a, entries } = recording({ position: at(5, 1000) });
    a.onRows(Op.OP_CREATE, table("t"), rows(1, 1), 0);
    a.onCommit(at(5, 1200), 0);
    a.flush();
    assert.equal(entries()[0]!.msgId, "s1:0000000005:000000001000:0");
  });

  test("snapshot rows are a group of their own, with op r and the chunk in their ids", () => {
    const { a, entries } = recording();
    a.onBegin("", at(6, 10), 0);
    a.onRows(Op.OP_CREATE, table("t"), rows(1, 1), 0);
    a.onCommit(at(6, 50), 0);
    a.snapshotRows(table("t"), rows(1, 3), at(6, 50), "abc.1");
    a.flush();
    const es = entries();
    assert.equal(es.length, 2, "the open group ends first");
    const e = es[1]!;
    assert.deepEqual(e.ops, { c: 0, u: 0, d: 0, r: 3 });
    assert.equal(e.msgId, "s1:0000000006:000000000050:sabc.1.0");
    assert.ok(decodeChanges(decodeBatch(e.payload)).every((c) => c.op === "r"));
    a.onBegin("", at(6, 60), 0);
    assert.throws(() => a.snapshotRows(table("t"), [], at(6, 60), "x"), /between transactions/);
  });

  test("a transaction of excluded tables (no rows) only moves the checkpoint", () => {
    const { a, writes, entries } = recording();
    a.onBegin("0-1-7", at(7, 100), 0);
    a.onCommit(at(7, 300), 0);
    a.flush();
    assert.equal(entries().length, 0);
    assert.equal(writes[0]!.checkpoint?.position.pos, 300);
  });

  test("reset forgets what was not written", () => {
    const { a, writes } = recording();
    a.onBegin("", at(7, 4), 0);
    a.onRows(Op.OP_CREATE, table("t"), rows(1, 1), 0);
    a.reset(10, 4, at(7, 4));
    assert.equal(a.inTransaction, false);
    a.onBegin("", at(7, 4), 0);
    a.onRows(Op.OP_CREATE, table("t"), rows(1, 1), 0);
    a.onCommit(at(7, 80), 0);
    a.flush();
    assert.equal(writes[0]!.entries[0]!.scn, 10);
    assert.equal(writes[0]!.checkpoint?.txnOrdinal, 5);
  });
});
