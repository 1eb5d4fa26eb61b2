import assert from "node:assert/strict";
import { test } from "node:test";
import { startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import mysql from "mysql2/promise";
import { startDpu } from "../../dist/index.js";

/** A table's rows as one comparable string: every column as text/hex, ordered. */
async function tableDump(conn: mysql.Connection, db: string, table: string): Promise<string> {
  const [cols] = await conn.query(
    "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    [db, table],
  );
  const names = (cols as { c: string }[]).map((r) => `HEX(\`${r.c}\`)`);
  if (names.length === 0) return "<missing>";
  const [rows] = await conn.query(
    `SELECT CONCAT_WS('|', ${names.join(",")}) AS r FROM \`${db}\`.\`${table}\` ORDER BY r`,
  );
  return (rows as { r: string }[]).map((r) => r.r).join("\n");
}

test("sync: inserts, updates, key changes, deletes, DDL and keyless tables converge into a renamed target database", async () => {
  await ensureStack();
  const id = uniqueId("sync");
  const db = `${id}_src`;
  const targetDb = `${id}_dst`;
  const src = await sourceConnection();
  const dst = await mysql.createConnection({
    host: "127.0.0.1",
    port: 13307,
    user: "root",
    multipleStatements: true,
  });
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  const cfg = testConfig(id, db, {
    target: { url: urls.targetUrl, database: targetDb },
    dpu: { http: { port: 0 }, grpc: { port: 0 } },
  });
  const stopAll: (() => Promise<void>)[] = [];
  try {
    await src.query(`CREATE DATABASE \`${db}\``);
    await src.query(
      `CREATE TABLE \`${db}\`.pk (id INT PRIMARY KEY, name VARCHAR(20), n INT NOT NULL DEFAULT 0)`,
    );
    await src.query(`CREATE TABLE \`${db}\`.uq (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY (code))`);
    await src.query(`CREATE TABLE \`${db}\`.nokey (a INT, b VARCHAR(10))`);
    const capture = await startCapture(cfg);
    stopAll.push(() => capture.stop());
    const dpu = await startDpu(cfg);
    stopAll.push(() => dpu.stop());

    await src.query(`INSERT INTO \`${db}\`.pk VALUES (1,'a',0),(2,'b',0),(3,'c',0)`);
    await src.query(`UPDATE \`${db}\`.pk SET n = n + 1`);
    await src.query(`UPDATE \`${db}\`.pk SET id = 10 WHERE id = 1`); // primary-key change
    await src.query(`DELETE FROM \`${db}\`.pk WHERE id = 2`);
    await src.query(`INSERT INTO \`${db}\`.uq VALUES ('x', 1), ('y', 2)`);
    await src.query(`UPDATE \`${db}\`.uq SET v = 5 WHERE code = 'x'`);
    await src.query(`DELETE FROM \`${db}\`.uq WHERE code = 'y'`);
    await src.query(`INSERT INTO \`${db}\`.nokey VALUES (1,'dup'),(1,'dup'),(2,NULL)`); // twins
    await src.query(`DELETE FROM \`${db}\`.nokey WHERE a = 1 LIMIT 1`);
    await src.query(`UPDATE \`${db}\`.nokey SET b = 'z' WHERE a = 2`);
    await src.query(`ALTER TABLE \`${db}\`.pk ADD COLUMN extra VARCHAR(5) DEFAULT 'd'`);
    await src.query(`INSERT INTO \`${db}\`.pk (id, name, n, extra) VALUES (4, 'd', 7, 'e')`);
    await src.query(`CREATE TABLE \`${db}\`.later (id INT PRIMARY KEY)`);
    await src.query(`INSERT INTO \`${db}\`.later VALUES (1), (2)`);

    for (const table of ["pk", "uq", "nokey", "later"]) {
      const expected = await tableDump(src, db, table);
      await waitFor(async () => (await tableDump(dst, targetDb, table)) === expected, {
        timeoutMs: 30_000,
        what: `${targetDb}.${table} to equal the source`,
      }).catch(async (err: Error) => {
        assert.equal(await tableDump(dst, targetDb, table), expected, `${table}: ${err.message}`);
      });
    }
    const [ck] = await dst.query("SELECT stream_seq FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [
      `${id}:dpu-default`,
    ]);
    assert.ok(
      Number((ck as { stream_seq: string }[])[0]?.stream_seq) > 0,
      "the checkpoint moved with the batches",
    );
    assert.equal(dpu.status().deadLettered, 0);
  } finally {
    for (const s of stopAll.reverse()) await s().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc.close();
    await src.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await dst.query(`DROP DATABASE IF EXISTS \`${targetDb}\``).catch(() => {});
    await src.end();
    await dst.end();
  }
});
