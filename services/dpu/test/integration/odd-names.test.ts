// A database, a table and columns whose names hold ".", a backtick and non-ASCII letters sync end
// to end: subjects, the envelope, DDL and the target's statements all keep them exact.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startCapture } from "@dfs/capture";
import { formatName, formatTableRef } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import { startDpu } from "../../dist/index.js";
import { q, showCreate, tableDump, targetConnection } from "../support/pipeline.js";

test("names with dots, backticks and non-ASCII letters: rows, updates, deletes and DDL arrive exactly", async () => {
  await ensureStack();
  const id = uniqueId("odd");
  // Both databases hold every awkward character; the target one differs so that mapping is used.
  const db = `dfs.ü\`${id}`;
  const targetDb = `ziel.ö\`${id}`;
  const table = "t.ä`b";
  const src = await sourceConnection();
  const dst = await targetConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  const cfg = testConfig(id, db, {
    source: { include: { databases: [formatName(db)] } },
    target: { url: urls.targetUrl, database: targetDb },
    dpu: { http: { port: 0 }, grpc: { port: 0 } },
  });
  const stop: (() => Promise<void>)[] = [];
  try {
    await src.query(`CREATE DATABASE ${q(db)}`);
    await src.query(
      `CREATE TABLE ${q(db)}.${q(table)} (${q("i.d`")} INT PRIMARY KEY, ${q("wert ä")} VARCHAR(20), ${q("n`")} INT NOT NULL DEFAULT 0)`,
    );
    const capture = await startCapture(cfg);
    stop.push(() => capture.stop());
    const dpu = await startDpu(cfg);
    stop.push(() => dpu.stop());

    await src.query(`INSERT INTO ${q(db)}.${q(table)} VALUES (1, 'eins', 0), (2, 'zwei', 0), (3, 'drei', 0)`);
    await src.query(`UPDATE ${q(db)}.${q(table)} SET ${q("n`")} = ${q("n`")} + 1, ${q("wert ä")} = 'größer'`);
    await src.query(`UPDATE ${q(db)}.${q(table)} SET ${q("i.d`")} = 10 WHERE ${q("i.d`")} = 1`);
    await src.query(`DELETE FROM ${q(db)}.${q(table)} WHERE ${q("i.d`")} = 2`);
    await src.query(`ALTER TABLE ${q(db)}.${q(table)} ADD COLUMN ${q("neu.spalte`")} VARCHAR(5) DEFAULT 'x'`);
    await src.query(`INSERT INTO ${q(db)}.${q(table)} VALUES (4, 'vier', 4, 'y')`);

    const expected = await tableDump(src, db, table);
    await waitFor(async () => (await tableDump(dst, targetDb, table)) === expected, {
      timeoutMs: 30_000,
      what: `${formatTableRef({ db: targetDb, table })} to equal the source`,
    }).catch(async (err: Error) => {
      assert.equal(
        await tableDump(dst, targetDb, table),
        expected,
        `${err.message}; ${JSON.stringify(dpu.status())}`,
      );
    });
    assert.match(
      await showCreate(dst, targetDb, table),
      /`neu\.spalte``` varchar\(5\)/,
      "the ALTER reached the target",
    );
    assert.equal(dpu.status().deadLettered, 0);
    assert.equal(expected.split("\n").length, 3);
  } finally {
    for (const s of stop.reverse()) await s().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc.close();
    await src.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
    await dst.query(`DROP DATABASE IF EXISTS ${q(targetDb)}`).catch(() => {});
    await src.end();
    await dst.end();
  }
});
