// DDL events in binlog order and include/exclude filters end to end (the rules alone:
// test/unit/ddl-parse.test.ts and filter.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeChanges, formatTableRef, fromValue } from "@dfs/codec";
import { connectNats, subjects } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import mysql from "mysql2/promise";
import { type CaptureService, startCapture } from "../../dist/index.js";
import { batchesOf, bytesContain, type RawMessage, startHarness, waitForRaw } from "../support/harness.js";

/** A compact, comparable line per data or DDL message: "ddl <tables>" or "<table> <op><pk>...". */
/** "ddl <tables>" for a DDL message; "<table> <op><id>" for each row of a batch. */
function signatures(m: RawMessage): string[] {
  if (m.ddl) return [`ddl ${m.ddl.tables.map(formatTableRef).join(",")}`];
  return decodeChanges(m.batch!).map((e) => `${m.batch!.table} ${e.op}${String((e.after ?? e.before)!.id)}`);
}

/** Row batches and binlog DDL, without the schema snapshot a new journal starts with (tested below). */
const dataAndDdl = (ms: RawMessage[]) =>
  ms.filter((m) => (m.kind === "batch" || m.kind === "ddl") && !m.msgId.includes(":schema:"));

test("DDL events arrive on _ddl in binlog order with the rows, and the schema version follows", async () => {
  const h = await startHarness("ddl");
  const db = h.db;
  try {
    const statements = [
      "CREATE TABLE t1 (id INT PRIMARY KEY, a VARCHAR(10))",
      "INSERT INTO t1 VALUES (1, 'x')",
      "ALTER TABLE t1 ADD COLUMN b INT NOT NULL DEFAULT 7",
      "INSERT INTO t1 VALUES (2, 'y', 8)",
      "UPDATE t1 SET a = 'z' WHERE id = 1",
      "RENAME TABLE t1 TO t2",
      "INSERT INTO t2 VALUES (3, 'w', 9)",
      "TRUNCATE TABLE t2",
      "INSERT INTO t2 VALUES (4, 'v', 10)",
      "CREATE TABLE `we.ird` (id INT PRIMARY KEY)",
      "INSERT INTO `we.ird` VALUES (1)",
      "DROP TABLE t2, `we.ird`",
    ];
    await h.conn.query(`USE \`${db}\``);
    for (const s of statements) await h.conn.query(s);
    const expected = [
      `ddl ${db}.t1`,
      "t1 c1",
      `ddl ${db}.t1`,
      "t1 c2",
      "t1 u1",
      `ddl ${db}.t1,${db}.t2`,
      "t2 c3",
      `ddl ${db}.t2`,
      "t2 c4",
      `ddl ${db}.\`we.ird\``,
      "we.ird c1",
      `ddl ${db}.t2,${db}.\`we.ird\``,
    ];
    // Consecutive transactions of one table may share a message (capture groups them): compared
    // row by row.
    const messages = dataAndDdl(
      await waitForRaw(h.nc, h.id, (ms) => dataAndDdl(ms).flatMap(signatures).length >= expected.length),
    );
    assert.deepEqual(messages.flatMap(signatures), expected);

    const ddls = messages.filter((m) => m.ddl);
    const kinds = [
      /^CREATE TABLE t1/,
      /^ALTER TABLE t1 ADD COLUMN b/,
      /^RENAME TABLE t1 TO t2/,
      /^TRUNCATE TABLE t2/,
      /^CREATE TABLE `we\.ird`/,
      /^DROP TABLE/,
    ];
    for (const [i, m] of ddls.entries()) {
      assert.equal(m.subject, `dfs.${h.id}._ddl`);
      assert.match(m.ddl!.statement, kinds[i]!);
      assert.equal(m.ddl!.db, db, "the statement's session database");
      assert.equal(m.ddl!.sourceId, h.id);
    }
    // Stream order is journal (SCN) order is binlog order.
    const scns = messages.map((m) => (m.ddl ? m.ddl.scn : m.batch!.scn));
    assert.ok(
      scns.every((s, i) => i === 0 || s > scns[i - 1]!),
      `SCNs increase: ${scns.join(" ")}`,
    );
    const positions = messages.map((m) => (m.ddl ? m.ddl.position : m.batch!.position)!.sortable);
    assert.deepEqual([...positions].sort(), positions, "source positions never go backwards");

    const batches = messages.filter((m) => m.batch).map((m) => m.batch!);
    const [before, afterAlter] = batches as [(typeof batches)[0], (typeof batches)[0]];
    const update = batches.find((b) => decodeChanges(b).some((c) => c.op === "u"))!;
    assert.deepEqual(
      before.columns.map((c) => c.name),
      ["id", "a"],
    );
    assert.deepEqual(
      afterAlter.columns.map((c) => c.name),
      ["id", "a", "b"],
    );
    assert.notEqual(afterAlter.schemaVersion, before.schemaVersion, "ALTER changes the schema version");
    assert.equal(update.schemaVersion, afterAlter.schemaVersion);
    const updated = decodeChanges(update).find((c) => c.op === "u")!;
    assert.deepEqual(updated.before, { id: 1n, a: "x", b: 7n }, "the added column's default in the old row");
    assert.deepEqual(updated.after, { id: 1n, a: "z", b: 7n });
    const weird = messages.find((m) => m.batch?.table === "we.ird")!;
    assert.equal(
      weird.subject,
      subjects.data(h.id, db, "we.ird"),
      "a dotted table name is one subject token",
    );
  } finally {
    await h.close();
  }
});

const PASSWORD_COLUMN = "password";

test("include/exclude filters: databases, table globs and columns never reach the stream", async () => {
  const h = await startHarness("ddlflt", {
    databases: 2,
    overrides: ([a]) => ({
      source: { exclude: { tables: [`${a}.secret*`], columns: [`${a}.users.${PASSWORD_COLUMN}`] } },
    }),
  });
  const [dbA, dbB] = h.dbs as [string, string];
  const mark = (what: string) => `${what}-${h.id}-marker`;
  const [pw1, pw2, pw3, secret, inB] = [mark("pw1"), mark("pw2"), mark("pw3"), mark("secret"), mark("dbB")];
  try {
    const q = (sql: string, params: unknown[] = []) => h.conn.query(sql, params);
    await q(
      `CREATE TABLE \`${dbA}\`.users (id INT PRIMARY KEY, name VARCHAR(50), ${PASSWORD_COLUMN} VARCHAR(100))`,
    );
    await q(`CREATE TABLE \`${dbA}\`.secret_x (id INT PRIMARY KEY, v VARCHAR(100))`);
    await q(`CREATE TABLE \`${dbA}\`.open_t (id INT PRIMARY KEY, v VARCHAR(100))`);
    await q(`CREATE TABLE \`${dbB}\`.t (id INT PRIMARY KEY, v VARCHAR(100))`);
    await q(`INSERT INTO \`${dbA}\`.users VALUES (1, 'alice', ?)`, [pw1]);
    await q(`INSERT INTO \`${dbA}\`.secret_x VALUES (1, ?)`, [secret]);
    await q(`INSERT INTO \`${dbB}\`.t VALUES (1, ?)`, [inB]);
    await q("BEGIN");
    await q(`INSERT INTO \`${dbA}\`.users VALUES (2, 'bob', ?)`, [pw2]);
    await q(`INSERT INTO \`${dbA}\`.secret_x VALUES (2, ?)`, [secret]);
    await q(`INSERT INTO \`${dbB}\`.t VALUES (2, ?)`, [inB]);
    await q(`INSERT INTO \`${dbA}\`.open_t VALUES (1, 'mixed')`);
    await q("COMMIT");
    await q(`UPDATE \`${dbA}\`.users SET ${PASSWORD_COLUMN} = ? WHERE id = 1`, [pw3]);
    await q(`UPDATE \`${dbA}\`.users SET name = 'alice2' WHERE id = 1`);
    await q(`ALTER TABLE \`${dbB}\`.t ADD COLUMN x INT`);
    await q(`ALTER TABLE \`${dbA}\`.secret_x ADD COLUMN x INT`);
    await q(`UPDATE \`${dbA}\`.secret_x SET v = ?`, [`${secret}!`]);
    await q(`DELETE FROM \`${dbA}\`.users WHERE id = 2`);
    await q(`INSERT INTO \`${dbA}\`.open_t VALUES (2, 'done')`);

    // Everything written before the sentinel row is in the stream once the sentinel is.
    const all = await waitForRaw(h.nc, h.id, (ms) =>
      batchesOf(ms).some(
        (b) => b.table === "open_t" && b.rows.some((r) => r.after.length > 0 && fromValue(r.after[0]) === 2n),
      ),
    );
    const batches = batchesOf(all);
    assert.deepEqual([...new Set(batches.map((b) => `${b.db}.${b.table}`))].sort(), [
      `${dbA}.open_t`,
      `${dbA}.users`,
    ]);

    const users = batches.filter((b) => b.table === "users");
    for (const b of users)
      assert.deepEqual(
        b.columns.map((c) => c.name),
        ["id", "name"],
        "password is not a column",
      );
    const events = users.flatMap(decodeChanges);
    assert.deepEqual(
      events.map((e) => `${e.op}${String((e.after ?? e.before)!.id)}`),
      ["c1", "c2", "u1", "u1", "d2"],
    );
    for (const e of events) {
      for (const image of [e.before, e.after])
        if (image) assert.ok(!(PASSWORD_COLUMN in image), "no password key");
    }
    assert.deepEqual(events[3]!.after, { id: 1n, name: "alice2" });

    const ddlTables = all.flatMap((m) => m.ddl?.tables ?? []).map(formatTableRef);
    assert.deepEqual(ddlTables, [`${dbA}.users`, `${dbA}.open_t`], "only DDL of included tables");
    for (const m of all) {
      for (const needle of [pw1, pw2, pw3, secret, inB, dbB]) {
        assert.ok(!bytesContain(m.data, needle), `message ${m.seq} (${m.subject}) contains ${needle}`);
      }
    }
    assert.ok(
      all.some((m) => bytesContain(m.data, "alice2")),
      "control: included values are found in payload bytes",
    );
  } finally {
    await h.close();
  }
});

test("a transaction right after a filtered-out DDL carries its own GTID", {}, async () => {
  const h = await startHarness("ddlgtid", { databases: 2 });
  const [dbA, dbB] = h.dbs as [string, string];
  try {
    await h.conn.query(`CREATE TABLE \`${dbA}\`.t (id INT PRIMARY KEY)`);
    await h.conn.query(`CREATE TABLE \`${dbB}\`.x (id INT PRIMARY KEY); INSERT INTO \`${dbA}\`.t VALUES (1)`);
    const [[{ g }]] = (await h.conn.query("SELECT @@last_gtid AS g")) as unknown as [[{ g: string }]];
    const batch = batchesOf(await waitForRaw(h.nc, h.id, (ms) => batchesOf(ms).length > 0))[0]!;
    assert.equal(batch.position?.gtid, g);
  } finally {
    await h.close();
  }
});

test("a new journal starts with the schema snapshot, which recreates the tables on another server", async () => {
  await ensureStack();
  const id = uniqueId("snap");
  const db = `${id}_db`;
  const conn = await sourceConnection();
  const target = await mysql.createConnection({ host: "127.0.0.1", port: 13307, user: "root" });
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  let capture: CaptureService | null = null;
  try {
    await conn.query(`CREATE DATABASE \`${db}\` CHARACTER SET latin1`);
    await conn.query(
      `CREATE TABLE \`${db}\`.parent (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'x', UNIQUE KEY uq (name)) ENGINE=InnoDB`,
    );
    await conn.query(
      `CREATE TABLE \`${db}\`.child (id INT AUTO_INCREMENT PRIMARY KEY, pid BIGINT UNSIGNED, note TEXT CHARACTER SET utf8mb4, KEY k (pid), CONSTRAINT fk FOREIGN KEY (pid) REFERENCES parent (id))`,
    );
    capture = await startCapture(testConfig(id, db));
    await conn.query(`INSERT INTO \`${db}\`.parent VALUES (1, 'a')`);
    const messages = await waitForRaw(nc, id, (ms) => ms.some((m) => m.kind === "batch"));
    const snapshot = messages.filter((m) => m.msgId.includes(":schema:"));
    assert.deepEqual(
      snapshot.map((m) => m.ddl!.tables.map(formatTableRef).join(",")),
      ["", `${db}.child`, `${db}.parent`],
      "the database first, then its tables",
    );
    assert.ok(
      messages.indexOf(snapshot.at(-1)!) < messages.findIndex((m) => m.kind === "batch"),
      "before any row",
    );
    assert.match(snapshot[0]!.ddl!.statement, /^CREATE DATABASE IF NOT EXISTS/);
    for (const m of snapshot.slice(1)) assert.match(m.ddl!.statement, /^CREATE TABLE IF NOT EXISTS/);
    // Replayed on the target (parent before child is not guaranteed: FK checks off, as a replica would),
    // the statements give the source's definitions exactly.
    await target.query("SET SESSION foreign_key_checks = 0");
    for (const m of snapshot) {
      await target.query(`CREATE DATABASE IF NOT EXISTS \`${db}\``);
      await target.query(`USE \`${m.ddl!.db}\``);
      await target.query(m.ddl!.statement);
    }
    for (const t of ["parent", "child"]) {
      const [[src]] = (await conn.query(`SHOW CREATE TABLE \`${db}\`.${t}`)) as unknown as [
        Record<string, string>[],
      ];
      const [[dst]] = (await target.query(`SHOW CREATE TABLE \`${db}\`.${t}`)) as unknown as [
        Record<string, string>[],
      ];
      assert.equal(dst!["Create Table"], src!["Create Table"], `${t} recreated exactly`);
    }
  } finally {
    await capture?.stop().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc.close();
    await conn.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await target.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await conn.end();
    await target.end();
  }
});
