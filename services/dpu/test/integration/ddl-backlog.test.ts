// ALTER TABLE in the middle of a backlog: the DPU starts only after capture has published row
// changes on both sides of ADD COLUMN (in the middle of the table), DROP COLUMN and RENAME COLUMN;
// each row is decoded with the schema in force when it was written and applied in order around the
// DDL, so the target ends equal to the source, rows and SHOW CREATE TABLE alike. Then the target
// table is created at the DPU's start from the final definition: from the stream's schema snapshot,
// or, with no DDL in the stream at all, from the source's SHOW CREATE TABLE.
import assert from "node:assert/strict";
import { test } from "node:test";
import { subjects } from "@dfs/nats";
import { changesOf, type StreamMessage, waitForStream } from "@dfs/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { openPipeline, type Pipeline, q, showCreate, tableDump } from "../support/pipeline.js";

/** Waits until capture has published the row with `id` (and so everything before it). */
async function published(p: Pipeline, id: bigint): Promise<StreamMessage[]> {
  return waitForStream(
    p.nc,
    p.id,
    (ms) => changesOf(ms).some((e) => e.ref.table === "t" && e.op === "c" && e.after?.id === id),
    30_000,
  );
}

/** The target equals the source: rows (every column by HEX) and the table definition. */
async function assertSame(p: Pipeline): Promise<void> {
  await p.converged("t");
  assert.equal(await tableDump(p.dst, p.targetDb, "t"), await tableDump(p.src, p.db, "t"), "rows");
  assert.equal(
    await showCreate(p.dst, p.targetDb, "t"),
    await showCreate(p.src, p.db, "t"),
    "SHOW CREATE TABLE of the target equals the source's",
  );
  assert.equal(p.dpu!.status().deadLettered, 0, "nothing dead-lettered");
  assert.equal(p.dpu!.status().state, "running");
}

test("ddl backlog: ADD, DROP and RENAME COLUMN in the middle of a backlog apply in order", async () => {
  const p = await openPipeline("ddlb");
  const t = `${q(p.db)}.t`;
  try {
    await p.startCapture(); // no DPU yet: everything below becomes a backlog
    await p.src.query(
      `CREATE TABLE ${t} (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(20) CHARACTER SET latin1, note VARCHAR(10) DEFAULT 'x')`,
    );
    await p.src.query(`INSERT INTO ${t} (id, a, b) VALUES (1, 10, 'b1'), (2, 20, 'bé2'), (3, 30, NULL)`);
    await p.src.query(`UPDATE ${t} SET b = 'b3', note = 'n3' WHERE id = 3`);
    // A column in the middle: images before and after it differ in every later position.
    await p.src.query(`ALTER TABLE ${t} ADD COLUMN c INT NOT NULL DEFAULT 7 AFTER id`);
    await p.src.query(
      `INSERT INTO ${t} (id, c, a, b, note) VALUES (4, 40, 41, 'b4', 'n4'), (5, 50, 51, '', NULL)`,
    );
    await p.src.query(`UPDATE ${t} SET c = id * 100 WHERE id <= 2`);
    await p.src.query(`ALTER TABLE ${t} DROP COLUMN b`);
    await p.src.query(`INSERT INTO ${t} (id, c, a, note) VALUES (6, 60, 61, 'n6'), (7, 70, 71, 'n7')`);
    await p.src.query(`UPDATE ${t} SET a = a + 1, note = 'upd' WHERE id IN (1, 4)`);
    await p.src.query(`DELETE FROM ${t} WHERE id = 3`);
    await p.src.query(`ALTER TABLE ${t} RENAME COLUMN a TO a2`);
    await p.src.query(`INSERT INTO ${t} (id, c, a2, note) VALUES (8, 80, 81, 'n8')`);
    await p.src.query(`UPDATE ${t} SET a2 = 99 WHERE id = 2`);
    await p.src.query(`DELETE FROM ${t} WHERE id = 6`);
    await p.src.query(`INSERT INTO ${t} (id, a2) VALUES (100, 0)`); // the last change of the backlog

    const messages = await published(p, 100n);
    const ddl = messages.flatMap((m) => (m.kind === "ddl" ? [m.ddl.statement] : []));
    assert.deepEqual(
      ddl.filter((s) => /ALTER TABLE/i.test(s)).map((s) => s.match(/(ADD|DROP|RENAME) COLUMN/i)?.[1]),
      ["ADD", "DROP", "RENAME"],
      `the backlog spans the three ALTERs: ${ddl.join(" | ")}`,
    );
    const names = changesOf(messages)
      .filter((e) => e.ref.table === "t")
      .map((e) => Object.keys(e.after ?? e.before ?? {}).join(","));
    assert.equal(names[0], "id,a,b,note", "rows before ADD COLUMN carry the first definition");
    assert.ok(names.includes("id,c,a,b,note"), "rows between ADD and DROP carry c and b");
    assert.ok(names.includes("id,c,a,note"), "rows between DROP and RENAME carry a");
    assert.equal(names[names.length - 1], "id,c,a2,note", "rows after RENAME carry a2");
    assert.equal(await showCreate(p.dst, p.targetDb, "t"), "<missing>", "no target table before the DPU");

    await p.startDpu();
    await assertSame(p);
    const [rows] = await p.dst.query(`SELECT id, c, a2, note FROM ${q(p.targetDb)}.t ORDER BY id`);
    assert.deepEqual(
      (rows as { id: number; c: number; a2: number; note: string | null }[]).map(
        (r) => `${r.id}:${r.c}:${r.a2}:${r.note}`,
      ),
      ["1:100:11:upd", "2:200:99:x", "4:40:42:upd", "5:50:51:null", "7:70:71:n7", "8:80:81:n8", "100:7:0:x"],
      "the values the backlog wrote, independent of the source's rendering",
    );
  } finally {
    await p.close();
  }
});

for (const from of ["schema snapshot", "source definition"] as const) {
  test(`ddl backlog: a missing target table is created from the ${from} in its final definition`, async () => {
    const p = await openPipeline(from === "schema snapshot" ? "ddls" : "ddld");
    const t = `${q(p.db)}.t`;
    try {
      // The whole history of the definition happens before capture starts.
      await p.src.query(
        `CREATE TABLE ${t} (id BIGINT UNSIGNED PRIMARY KEY, a INT NOT NULL, b TEXT, u VARCHAR(8) NOT NULL, UNIQUE KEY uk (u))`,
      );
      await p.src.query(`ALTER TABLE ${t} ADD COLUMN c DECIMAL(10,2) NOT NULL DEFAULT 1.50 AFTER id`);
      await p.src.query(`ALTER TABLE ${t} DROP COLUMN b`);
      await p.src.query(`ALTER TABLE ${t} RENAME COLUMN a TO a2`);
      await p.startCapture();
      await p.src.query(
        `INSERT INTO ${t} (id, c, a2, u) VALUES (1, 1.25, 10, 'u1'), (2, DEFAULT, 20, 'u2'), (18446744073709551615, -3.75, -1, 'umax')`,
      );
      await p.src.query(`UPDATE ${t} SET a2 = a2 * 2, u = 'u2b' WHERE id = 2`);
      await p.src.query(`DELETE FROM ${t} WHERE id = 1`);
      await p.src.query(`INSERT INTO ${t} (id, a2, u) VALUES (100, 0, 'last')`);
      const messages = await published(p, 100n);
      const ddl = messages.filter((m) => m.kind === "ddl");
      assert.ok(
        ddl.some((m) => m.kind === "ddl" && /CREATE TABLE IF NOT EXISTS `t`/.test(m.ddl.statement)),
        "the schema snapshot holds the table",
      );
      if (from === "source definition") {
        // No DDL in the stream at all: only the source's SHOW CREATE TABLE can make the table.
        const jsm = await jetstreamManager(p.nc);
        const purged = await jsm.streams.purge(subjects.streamName(p.id), { filter: subjects.ddl(p.id) });
        assert.equal(purged.purged, ddl.length, "every DDL message purged");
        // Purged before the DPU applied them: a loss the DPU stops at unless told it is deliberate.
        p.cfg.dpu.acceptLossThrough = Math.max(...ddl.map((m) => m.seq));
      }
      assert.equal(await showCreate(p.dst, p.targetDb, "t"), "<missing>", "no target table before the DPU");

      await p.startDpu();
      await assertSame(p);
      const [rows] = await p.dst.query(
        `SELECT CAST(id AS CHAR) AS i, CAST(c AS CHAR) AS c, a2, u FROM ${q(p.targetDb)}.t ORDER BY id`,
      );
      assert.deepEqual(
        (rows as { i: string; c: string; a2: number; u: string }[]).map(
          (r) => `${r.i}:${r.c}:${r.a2}:${r.u}`,
        ),
        ["2:1.50:40:u2b", "100:1.50:0:last", "18446744073709551615:-3.75:-1:umax"],
      );
    } finally {
      await p.close();
    }
  });
}
