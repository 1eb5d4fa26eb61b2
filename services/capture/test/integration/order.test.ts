// Per-table order and transaction boundaries: what the stream holds is what was written, in the
// order it was written, with each group recognisable (txnOrdinal, txnLast, rowIndex) and each
// source transaction in it too (source_txns, RowChange.source_txn), never split between groups.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fromValue } from "@dfs/codec";
import type { ChangeBatch, RowChange } from "@dfs/proto";
import { batchesOf, type RawMessage, rowCount, startHarness, waitForRaw } from "../support/harness.js";

type Table = "ta" | "tb" | "tc";
/** One expected row change: op code and primary key ("before->after" for updates). */
interface Effect {
  table: string;
  op: "c" | "u" | "d";
  pk: string;
}
interface Statement {
  sql: string;
  effects: Effect[];
}

const OPS = { 1: "c", 2: "u", 3: "d" } as Record<number, Effect["op"]>;

/** Generates statements and what each must produce, tracking which ids exist. */
class Model {
  readonly ids: Record<Table, Set<number>> = { ta: new Set(), tb: new Set(), tc: new Set() };

  ins(t: Table, ids: number[]): Statement {
    for (const id of ids) this.ids[t].add(id);
    return {
      sql: `INSERT INTO ${t} (id, v, n) VALUES ${ids.map((id) => `(${id}, 'v${id}', 0)`).join(", ")}`,
      effects: ids.map((id) => ({ table: t, op: "c", pk: String(id) })),
    };
  }

  upd(t: Table, id: number): Statement {
    assert.ok(this.ids[t].has(id), `model: ${t}.${id} exists`);
    return {
      sql: `UPDATE ${t} SET v = CONCAT(v, '+'), n = n + 1 WHERE id = ${id}`,
      effects: [{ table: t, op: "u", pk: `${id}->${id}` }],
    };
  }

  /** Changes the primary key. */
  move(t: Table, from: number, to: number): Statement {
    assert.ok(this.ids[t].has(from) && !this.ids[t].has(to), `model: move ${t}.${from} to ${to}`);
    this.ids[t].delete(from);
    this.ids[t].add(to);
    return {
      sql: `UPDATE ${t} SET id = ${to} WHERE id = ${from}`,
      effects: [{ table: t, op: "u", pk: `${from}->${to}` }],
    };
  }

  del(t: Table, ids: number[]): Statement {
    const sorted = [...ids].sort((a, b) => a - b);
    for (const id of sorted) assert.ok(this.ids[t].delete(id), `model: ${t}.${id} exists`);
    return {
      sql: `DELETE FROM ${t} WHERE id IN (${sorted.join(", ")}) ORDER BY id`,
      effects: sorted.map((id) => ({ table: t, op: "d", pk: String(id) })),
    };
  }

  /** Multi-row UPDATE over a range, rows changed in ORDER BY order; `shift` moves the keys. */
  updRange(t: Table, lo: number, hi: number, shift = 0, desc = false): Statement {
    const hit = [...this.ids[t]].filter((id) => id >= lo && id <= hi).sort((a, b) => (desc ? b - a : a - b));
    for (const id of hit) this.ids[t].delete(id);
    for (const id of hit) this.ids[t].add(id + shift);
    const set = shift ? `id = id + ${shift}` : "n = n + 1";
    return {
      sql: `UPDATE ${t} SET ${set} WHERE id BETWEEN ${lo} AND ${hi} ORDER BY id${desc ? " DESC" : ""}`,
      effects: hit.map((id) => ({ table: t, op: "u", pk: `${id}->${id + shift}` })),
    };
  }

  delRange(t: Table, lo: number, hi: number): Statement {
    const hit = [...this.ids[t]].filter((id) => id >= lo && id <= hi).sort((a, b) => a - b);
    for (const id of hit) this.ids[t].delete(id);
    return {
      sql: `DELETE FROM ${t} WHERE id BETWEEN ${lo} AND ${hi} ORDER BY id`,
      effects: hit.map((id) => ({ table: t, op: "d", pk: String(id) })),
    };
  }

  smallest(t: Table): number {
    return Math.min(...this.ids[t]);
  }
}

/** ~30 transactions of varied shapes over three tables; each is a list of statements. */
function script(m: Model): Statement[][] {
  const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  const txns: Statement[][] = [
    [m.ins("ta", [1])],
    [m.ins("tb", [1])],
    [m.ins("tc", [1])],
    [m.ins("ta", [2, 3]), m.ins("tb", [2]), m.upd("ta", 1), m.ins("tc", [2])],
    [m.ins("tc", range(1000, 5000))],
    [m.move("ta", 2, 200)],
    [m.del("tb", [1])],
    [m.upd("tc", 1000), m.del("ta", [3]), m.move("tb", 2, 20), m.ins("ta", [4])],
    [m.updRange("tc", 1000, 1099)],
    [m.ins("tb", [3, 4, 5]), m.upd("tb", 3), m.del("tb", [4])],
    [m.delRange("tc", 5000, 5999)],
    [m.move("tc", 1, 7), m.move("tc", 7, 8), m.ins("ta", [5]), m.del("ta", [5])],
    [m.updRange("tc", 1100, 1149, 100_000, true), m.ins("tb", [6])],
  ];
  const tables: Table[] = ["ta", "tb", "tc"];
  for (let k = txns.length; k < 30; k++) {
    const [x, y, z] = [tables[k % 3]!, tables[(k + 1) % 3]!, tables[(k + 2) % 3]!];
    if (k % 3 === 0) txns.push([m.ins(x, [100 + k])]);
    else if (k % 3 === 1)
      txns.push([
        m.ins(x, [300 + k]),
        m.upd(y, m.smallest(y)),
        m.ins(z, [300 + k, 400 + k]),
        m.ins(x, [400 + k]),
      ]);
    else txns.push([m.move(x, m.smallest(x), 500 + k), m.del(y, [m.smallest(y)]), m.updRange(z, 0, 99)]);
  }
  return txns;
}

function effectOf(batch: ChangeBatch, row: RowChange): Effect {
  const at = batch.columns.findIndex((c) => c.name === "id");
  const pk = (image: RowChange["after"]) => String(fromValue(image[at]));
  const op = OPS[row.op]!;
  return {
    table: batch.table,
    op,
    pk: op === "c" ? pk(row.after) : op === "d" ? pk(row.before) : `${pk(row.before)}->${pk(row.after)}`,
  };
}

/** Batches grouped by txnOrdinal in stream order; asserts groups are contiguous and ordinals increase. */
function transactionsOf(batches: ChangeBatch[]): ChangeBatch[][] {
  const groups: ChangeBatch[][] = [];
  for (const b of batches) {
    const current = groups[groups.length - 1];
    if (current && current[0]!.txnOrdinal === b.txnOrdinal) {
      current.push(b);
      continue;
    }
    if (current)
      assert.ok(
        b.txnOrdinal > current[0]!.txnOrdinal,
        `txnOrdinal ${b.txnOrdinal} after ${current[0]!.txnOrdinal}: ordinals must strictly increase`,
      );
    groups.push([b]);
  }
  return groups;
}

/** Boundaries of one group: txnLast exactly on the last batch, rowIndex 0..n-1, chunks per table. */
function checkBoundaries(group: ChangeBatch[], label: string): void {
  assert.deepEqual(
    group.map((b) => b.txnLast),
    group.map((_, i) => i === group.length - 1),
    `${label}: exactly the last batch has txnLast`,
  );
  const indexes = group.flatMap((b) => b.rows.map((r) => r.rowIndex)).sort((a, b) => a - b);
  assert.deepEqual(
    indexes,
    indexes.map((_, i) => i),
    `${label}: rowIndex counts 0, 1, 2... over the group`,
  );
  const chunks = new Map<string, number>();
  for (const b of group) {
    const next = chunks.get(b.table) ?? 0;
    assert.equal(b.chunk, next, `${label}: chunk of ${b.table}`);
    chunks.set(b.table, next + 1);
  }
  assert.equal(new Set(group.map((b) => b.position?.gtid)).size, 1, `${label}: one GTID`);
  assert.equal(new Set(group.map((b) => b.position?.sortable)).size, 1, `${label}: one position`);
}

/**
 * The source transactions of one group, in binlog order, each as its row changes in binlog order
 * (by rowIndex): rows name their transaction through source_txns, and a transaction's rows are
 * consecutive in rowIndex from its first_row.
 */
function sourceTransactions(group: ChangeBatch[], label: string): Effect[][] {
  const byFirst = new Map<number, { rowIndex: number; effect: Effect }[]>();
  const gtids = new Map<number, string>();
  for (const b of group)
    for (const r of b.rows) {
      const t = b.sourceTxns[r.sourceTxn];
      assert.ok(t, `${label}: row ${r.rowIndex} names source transaction ${r.sourceTxn} of its batch`);
      assert.ok(r.rowIndex >= t.firstRow, `${label}: row ${r.rowIndex} is not before its transaction`);
      const known = gtids.get(t.firstRow);
      assert.ok(known === undefined || known === t.gtid, `${label}: one GTID per transaction`);
      gtids.set(t.firstRow, t.gtid);
      const rows = byFirst.get(t.firstRow) ?? [];
      rows.push({ rowIndex: r.rowIndex, effect: effectOf(b, r) });
      byFirst.set(t.firstRow, rows);
    }
  return [...byFirst.entries()]
    .sort(([a], [b]) => a - b)
    .map(([first, rows]) => {
      rows.sort((a, b) => a.rowIndex - b.rowIndex);
      assert.deepEqual(
        rows.map((r) => r.rowIndex),
        rows.map((_, i) => first + i),
        `${label}: the rows of the transaction at ${first} are consecutive`,
      );
      return rows.map((r) => r.effect);
    });
}

function uniqueIds(messages: RawMessage[]): void {
  const ids = messages.map((m) => m.msgId);
  assert.ok(
    ids.every((id) => id !== ""),
    "every message has a Nats-Msg-Id",
  );
  assert.equal(new Set(ids).size, ids.length, "message ids are unique");
}

test("per-table order, transaction boundaries and counts over ~30 mixed transactions", async () => {
  const h = await startHarness("order");
  try {
    await h.conn.query(`USE \`${h.db}\``);
    for (const t of ["ta", "tb", "tc"])
      await h.conn.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(64), n INT)`);
    const model = new Model();
    const txns = script(model);
    for (const txn of txns) {
      if (txn.length === 1) {
        await h.conn.query(txn[0]!.sql);
        continue;
      }
      await h.conn.query("BEGIN");
      for (const s of txn) await h.conn.query(s.sql);
      await h.conn.query("COMMIT");
    }
    const expected = txns.map((txn) => txn.flatMap((s) => s.effects));
    const total = expected.reduce((n, e) => n + e.length, 0);
    assert.ok(
      txns.length >= 30 && total > 6000,
      `the script writes ${txns.length} transactions, ${total} rows`,
    );

    const messages = await waitForRaw(h.nc, h.id, (ms) => rowCount(ms) >= total);
    const batches = batchesOf(messages);
    // (c) the count of row changes equals what was written (nothing more arrives later either).
    assert.equal(rowCount(messages), total);

    // (b) groups of whole source transactions, in order, with exact boundaries: each source
    // transaction is recognisable in its group, with its row changes in statement order.
    const groups = transactionsOf(batches);
    assert.ok(groups.length <= txns.length, "a group holds one or more source transactions");
    const got: Effect[][] = [];
    for (const [i, group] of groups.entries()) {
      checkBoundaries(group, `group ${i + 1}`);
      got.push(...sourceTransactions(group, `group ${i + 1}`));
    }
    assert.deepEqual(got, expected, "every source transaction, whole, in order");
    const bulk = groups.find((g) => g.some((b) => b.table === "tc" && b.rows.length === 1000));
    assert.ok(
      bulk && bulk.filter((b) => b.table === "tc").length >= 5,
      "the 5,000-row INSERT is split over several batches (maxRows 1000)",
    );

    // (a) per table, the stream's sequence of changes is the sequence in which they were made.
    for (const t of ["ta", "tb", "tc"]) {
      const got = batches.filter((b) => b.table === t).flatMap((b) => b.rows.map((r) => effectOf(b, r)));
      const want = expected.flat().filter((e) => e.table === t);
      assert.deepEqual(got, want, `order of ${t}`);
    }

    // (d) message ids are unique; stream order is SCN order.
    uniqueIds(messages);
    const scns = batches.map((b) => b.scn);
    assert.ok(
      scns.every((s, i) => i === 0 || s > scns[i - 1]!),
      "SCNs increase in stream order",
    );
  } finally {
    await h.close();
  }
});

test("a transaction bigger than capture.maxBufferBytes arrives whole, once and in order", async () => {
  const h = await startHarness("orderbig", {
    overrides: { capture: { maxBufferBytes: "256KiB", batch: { maxRows: 100 } } },
  });
  const ROWS = 20_000;
  try {
    await h.conn.query(`USE \`${h.db}\``);
    await h.conn.query("CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(200))");
    await h.conn.query("INSERT INTO big VALUES (0, 'before')");
    await h.conn.query("BEGIN");
    for (let from = 1; from <= ROWS; from += 1000) {
      const values = Array.from(
        { length: 1000 },
        (_, i) => `(${from + i}, REPEAT('${String.fromCharCode(97 + ((from + i) % 26))}', 100))`,
      );
      await h.conn.query(`INSERT INTO big VALUES ${values.join(", ")}`);
    }
    await h.conn.query("COMMIT");
    await h.conn.query(`INSERT INTO big VALUES (${ROWS + 1}, 'after')`);

    const messages = await waitForRaw(h.nc, h.id, (ms) => rowCount(ms) >= ROWS + 2, 120_000);
    assert.equal(rowCount(messages), ROWS + 2, "every row once");
    const groups = transactionsOf(batchesOf(messages));
    for (const [i, g] of groups.entries()) checkBoundaries(g, `group ${i + 1}`);
    const source = groups.flatMap((g, i) => sourceTransactions(g, `group ${i + 1}`));
    assert.equal(source.length, 3, "before, the big transaction, after");
    assert.deepEqual(
      source[1],
      Array.from({ length: ROWS }, (_, i) => ({ table: "big", op: "c", pk: String(i + 1) })),
      "all rows of the big transaction, in order",
    );
    assert.deepEqual(
      [source[0]!, source[2]!].map((t) => t.map((e) => e.pk)),
      [["0"], [String(ROWS + 1)]],
    );
    const big = groups.find((g) => g.some((b) => b.rows.some((r) => effectOf(b, r).pk === "1")))!;
    assert.ok(
      big.filter((b) => b.rows.length === 100).length >= ROWS / 100 - 1,
      "batches of maxRows (100) rows",
    );
    const bigMessages = messages.filter((m) => m.batch && m.batch.txnOrdinal === big[0]!.txnOrdinal);
    const bytes = bigMessages.reduce((n, m) => n + m.data.byteLength, 0);
    assert.ok(bytes > 4 * 256 * 1024, `the transaction (${bytes} bytes) is several times maxBufferBytes`);
    uniqueIds(messages);
  } finally {
    await h.close();
  }
});
