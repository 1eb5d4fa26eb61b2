// Snapshots (DBLog watermarks): the snapshot path gives the same values as the binlog path for
// every column type; a snapshot taken while the table is being written hands over to the stream
// with no lost or stale row; it resumes after a restart; bad requests name each problem.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { decodeChanges } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { parseMetrics, sumOf } from "@dfs/metrics";
import { Op } from "@dfs/proto";
import { sourceConnection, tempDir, testConfig } from "@dfs/testkit";
import type mysql from "mysql2/promise";
import { startCapture } from "../../dist/index.js";
import { batchesOf, type RawMessage, readRaw, startHarness, waitForRaw } from "../support/harness.js";
import { COLS, createStatement, insertStatements, ROW_COUNT } from "../support/type-fixtures.js";

const q = (n: string) => `\`${n}\``;

/** Replays the stream's row changes for one table, in stream order: key -> after image (JSON). */
function fold(messages: RawMessage[], table: string, key: string): Map<string, string> {
  const state = new Map<string, string>();
  for (const b of batchesOf(messages)) {
    if (b.table !== table) continue;
    for (const e of decodeChanges(b)) {
      const image = e.after ?? e.before!;
      const k = String(image[key]);
      if (e.op === "d") state.delete(k);
      else
        state.set(
          k,
          JSON.stringify(e.after, (_, v) => (typeof v === "bigint" ? String(v) : v)),
        );
    }
  }
  return state;
}

async function sourceState(conn: mysql.Connection, table: string): Promise<Map<string, string>> {
  const [rows] = await conn.query(`SELECT id, v, note FROM ${table} ORDER BY id`);
  return new Map(
    (rows as { id: number; v: number; note: string | null }[]).map((r) => [
      String(r.id),
      JSON.stringify({ id: String(r.id), v: String(r.v), note: r.note }),
    ]),
  );
}

const snapshotRows = (messages: RawMessage[], table: string) =>
  batchesOf(messages)
    .filter((b) => b.table === table)
    .flatMap((b) => b.rows.filter((r) => r.op === Op.OP_READ));

test("the snapshot path gives exactly the binlog path's values for every column type", async () => {
  const h = await startHarness("snaptypes");
  const table = `${q(h.db)}.${q("all_types")}`;
  try {
    await h.conn.query(createStatement(table));
    await h.conn.query("SET time_zone = '+05:30', sql_mode = ''");
    for (const sql of insertStatements(table)) await h.conn.query(sql);
    await h.capture.snapshot([{ db: h.db, table: "all_types" }]);
    const messages = await waitForRaw(h.nc, h.id, (ms) => snapshotRows(ms, "all_types").length >= ROW_COUNT);
    const batches = batchesOf(messages).filter((b) => b.table === "all_types");
    const inserted = batches.filter((b) => b.rows.some((r) => r.op === Op.OP_CREATE));
    const read = batches.filter((b) => b.rows.some((r) => r.op === Op.OP_READ));
    assert.deepEqual(
      read[0]!.columns.map((c) => c.name),
      inserted[0]!.columns.map((c) => c.name),
    );
    assert.deepEqual(read[0]!.primaryKey, ["id"]);
    const byId = (bs: typeof batches, op: Op) => {
      const m = new Map<string, unknown>();
      for (const b of bs)
        for (const r of b.rows.filter((x) => x.op === op)) {
          const idAt = b.columns.findIndex((c) => c.name === "id");
          m.set(String((r.after[idAt]!.kind as { value: unknown }).value), r.after);
        }
      return m;
    };
    const fromBinlog = byId(inserted, Op.OP_CREATE);
    const fromSnapshot = byId(read, Op.OP_READ);
    assert.equal(fromSnapshot.size, ROW_COUNT);
    for (const [id, image] of fromBinlog) {
      const snap = fromSnapshot.get(id) as { kind: unknown }[];
      for (const [i, c] of COLS.entries())
        assert.deepEqual(
          snap[i],
          (image as { kind: unknown }[])[i],
          `row ${id}, column ${c.name} (${c.sql})`,
        );
    }
  } finally {
    await h.close();
  }
});

test("a snapshot under concurrent writes hands over to the stream with no lost or stale row", async () => {
  const h = await startHarness("snapload", { overrides: { capture: { snapshot: { chunkRows: 250 } } } });
  const table = `${q(h.db)}.${q("t")}`;
  let writing = true;
  try {
    await h.conn.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))`);
    // Rows that exist before capture's stream knows anything of them: only the snapshot has them.
    await h.conn.query(
      `INSERT INTO ${table} SELECT seq, 0, 'initial' FROM ${q(h.db)}.seq_1_to_20000`, // MariaDB's SEQUENCE engine
    );
    // Four writers on their own connections: updates, inserts and deletes all over the key range.
    const writers = Array.from({ length: 4 }, async (_, w) => {
      const conn = await sourceConnection();
      let i = 0;
      try {
        while (writing) {
          const id = 1 + ((i * 7919 + w * 104_729) % 21_000); // some ids beyond the initial rows: inserts
          i++;
          if (i % 11 === 0) await conn.query(`DELETE FROM ${table} WHERE id = ?`, [id]);
          else
            await conn.query(
              `INSERT INTO ${table} (id, v, note) VALUES (?, 1, 'new') ON DUPLICATE KEY UPDATE v = v + 1, note = 'upd'`,
              [id],
            );
        }
      } finally {
        await conn.end();
      }
      return i;
    });
    const id = await h.capture.snapshot([{ db: h.db, table: "t" }]);
    assert.match(id, /^[0-9a-f-]{13}$/);
    await waitFor(() => h.capture.status().snapshot?.tablesLeft === 0, {
      timeoutMs: 60_000,
      what: "the snapshot to finish",
    });
    writing = false;
    const writes = (await Promise.all(writers)).reduce((a, b) => a + b, 0);
    assert.ok(writes > 100, `only ${writes} writes ran during the snapshot`);
    const expected = await sourceState(h.conn, table);
    const messages = await waitForRaw(h.nc, h.id, (ms) => fold(ms, "t", "id").size === expected.size, 30_000);
    const got = fold(messages, "t", "id");
    let mismatches = 0;
    for (const [k, v] of expected) if (got.get(k) !== v) mismatches++;
    assert.equal(mismatches, 0, `${mismatches} rows differ from the source after replaying the stream`);
    assert.equal(got.size, expected.size);
    const read = snapshotRows(messages, "t").length;
    assert.ok(read > 0 && read <= 21_000, `${read} snapshot rows`);
    const metrics = parseMetrics(
      await (await fetch(`http://127.0.0.1:${h.capture.endpoints.http}/metrics`)).text(),
    );
    assert.equal(sumOf(metrics, "dfs_snapshot_rows_total", { db: h.db, table: "t" }) >= read, true);
    assert.equal(sumOf(metrics, "dfs_snapshot_progress_ratio", { db: h.db, table: "t" }), 1);
  } finally {
    writing = false;
    await h.close();
  }
});

test("a snapshot resumes after a restart", async () => {
  const h = await startHarness("snapresume", { overrides: { capture: { snapshot: { chunkRows: 200 } } } });
  const table = `${q(h.db)}.${q("t")}`;
  try {
    await h.conn.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))`);
    await h.conn.query(`INSERT INTO ${table} SELECT seq, seq, 'x' FROM ${q(h.db)}.seq_1_to_20000`);
    await h.capture.snapshot([{ db: h.db, table: "t" }]);
    await waitFor(() => (h.capture.status().snapshot?.rowsRead ?? 0) >= 1000, {
      timeoutMs: 30_000,
      what: "some chunks",
    });
    await h.capture.stop();
    const messages = await readRaw(h.nc, h.id);
    const before = snapshotRows(messages, "t").length;
    assert.ok(before >= 1000 && before < 20_000, `stopped after ${before} rows`);
    // The same journal: the snapshot goes on from its last chunk.
    const again = await h.restart();
    await waitFor(() => again.status().snapshot?.tablesLeft === 0, {
      timeoutMs: 60_000,
      what: "the resumed snapshot",
    });
    const all = await waitForRaw(h.nc, h.id, (ms) => fold(ms, "t", "id").size === 20_000, 30_000);
    const total = snapshotRows(all, "t").length;
    assert.ok(total < 20_000 + 2 * 200, `resumed, not restarted: ${total} snapshot rows for 20,000`);
    assert.deepEqual(fold(all, "t", "id"), await sourceState(h.conn, table));
  } finally {
    await h.close();
  }
});

test("bad snapshot requests name every problem", async () => {
  const h = await startHarness("snapbad", { overrides: { capture: { snapshot: { keylessMaxRows: 2 } } } });
  try {
    await h.conn.query(`CREATE TABLE ${q(h.db)}.nokey (a INT, b INT)`);
    await h.conn.query(`INSERT INTO ${q(h.db)}.nokey VALUES (1, 1), (2, 2), (3, 3)`);
    await h.conn.query(`ANALYZE TABLE ${q(h.db)}.nokey`);
    await h.conn.query(`CREATE TABLE ${q(h.db)}.ok (id INT PRIMARY KEY)`);
    await assert.rejects(
      h.capture.snapshot([
        { db: h.db, table: "nokey" },
        { db: h.db, table: "missing" },
        { db: "mysql", table: "user" },
        { db: "", table: "plain" },
      ]),
      (err: Error) => {
        assert.match(
          err.message,
          /nokey: has no primary key or NOT NULL unique key, so it would be read whole under a table read lock, and it has about 3 rows, more than capture\.snapshot\.keylessMaxRows \(2\)/,
        );
        assert.match(err.message, /missing: table .* does not exist/);
        assert.match(err.message, /mysql\.user: not captured/);
        assert.match(err.message, /plain: name tables by database and table/);
        return true;
      },
    );
    assert.equal(h.capture.status().snapshot, null, "nothing started");
  } finally {
    await h.close();
  }
});

test("source.start.snapshot: a new journal snapshots the tables that already had rows", async () => {
  const h = await startHarness("snapinit");
  let capture: Awaited<ReturnType<typeof startCapture>> | null = null;
  try {
    await h.capture.stop();
    const table = `${q(h.db)}.${q("t")}`;
    await h.conn.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))`);
    await h.conn.query(`INSERT INTO ${table} SELECT seq, seq, 'before' FROM ${q(h.db)}.seq_1_to_3000`);
    await h.conn.query(`CREATE TABLE ${q(h.db)}.nokey (a INT)`);
    await h.conn.query(`INSERT INTO ${q(h.db)}.nokey VALUES (1), (2)`);
    const cfg = testConfig(h.id, h.db, {
      source: { start: { snapshot: true } },
      capture: { journal: { path: join(tempDir(), "journal.db") } },
    });
    capture = await startCapture(cfg);
    await h.conn.query(`UPDATE ${table} SET v = -1, note = 'after' WHERE id <= 10`);
    await waitFor(() => capture!.status().snapshot?.tablesLeft === 0, {
      timeoutMs: 60_000,
      what: "the initial snapshot",
    });
    const messages = await waitForRaw(h.nc, h.id, (ms) => fold(ms, "t", "id").size === 3000, 30_000);
    assert.deepEqual(fold(messages, "t", "id"), await sourceState(h.conn, table));
    // A table without a key is loaded too: one read under a table lock, after a TRUNCATE.
    const keyless = await waitForRaw(h.nc, h.id, (ms) => snapshotRows(ms, "nokey").length === 2, 30_000);
    const nokey = batchesOf(keyless).filter((b) => b.table === "nokey");
    assert.deepEqual(
      nokey
        .flatMap((b) => decodeChanges(b))
        .map((e) => Number(e.after?.a))
        .sort(),
      [1, 2],
    );
    const truncate = keyless.findIndex(
      (m) => m.ddl?.statement === "TRUNCATE TABLE `nokey`" && m.ddl.db === h.db,
    );
    const firstRow = keyless.findIndex((m) => m.batch?.table === "nokey");
    assert.ok(truncate >= 0 && truncate < firstRow, "the TRUNCATE comes before the keyless table's rows");
    // Started once: a restart with the same journal does not snapshot again.
    await capture.stop();
    capture = await startCapture(cfg);
    assert.equal(capture.status().snapshot, null);
  } finally {
    await capture?.stop();
    await h.close();
  }
});
