import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runVerify } from "../../dist/index.js";
import { openHarness, q, quietLog } from "../support/harness.js";

const DFS = join(dirname(fileURLToPath(import.meta.url)), "../../../cli/bin/dfs.js");

/**
 * Runs the dfs CLI as a child process without blocking this process's event loop (the pipeline's
 * capture and DPU run in it: the CLI's verify waits for the DPU to apply past each chunk).
 */
function dfs(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DFS, ...args], { encoding: "utf8", timeout: 120_000 }, (e, out, err) => {
      const code = e ? (typeof e.code === "number" ? e.code : -1) : 0;
      resolve({ code, out, err });
    });
  });
}

const ROWS = 20_000;

test("sync: rows changed, deleted and added on the target behind the pipeline's back are found by key, exit 65; --repair fixes exactly them", async () => {
  const h = await openHarness("vfy");
  const t = `${q(h.db)}.${q("items")}`;
  const tt = `${q(h.targetDb)}.${q("items")}`;
  try {
    await h.src.query(
      `CREATE TABLE ${t} (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(12,2), note TEXT NULL,
         b VARBINARY(8) NULL, ts TIMESTAMP(6) NULL, f FLOAT NULL)`,
    );
    await h.start();
    // Rows in several statements so that the chunks span many transactions.
    for (let i = 0; i < ROWS; i += 5000)
      await h.src.query(
        `INSERT INTO ${t} SELECT seq, CONCAT('n', seq), seq / 7, IF(seq % 3 = 0, '', IF(seq % 3 = 1, NULL, 'x#y')),
            IF(seq % 5 = 0, NULL, UNHEX(HEX(seq))), '2024-01-02 03:04:05.123456', seq / 3
           FROM ${q(h.db)}.seq_${i + 1}_to_${i + 5000}`,
      );
    await h.caughtUp(["items"]);

    const clean = await runVerify(h.cfg, { log: quietLog, chunkRows: 1000 });
    const r0 = clean.tables.find((x) => x.name === `${h.db}.items`);
    assert.ok(r0, JSON.stringify(clean.tables.map((x) => x.name)));
    assert.equal(r0.status, "ok", JSON.stringify(r0));
    assert.equal(r0.sourceRows, ROWS);
    assert.equal(r0.targetRows, ROWS);
    assert.equal(r0.chunks, ROWS / 1000 + 1);
    assert.equal(clean.drift, false);

    // Behind the pipeline's back, on the target only.
    await h.dst.query(`UPDATE ${tt} SET name = 'changed' WHERE id = 17`);
    await h.dst.query(`UPDATE ${tt} SET note = NULL WHERE id = 3`); // '' -> NULL
    await h.dst.query(`UPDATE ${tt} SET b = X'00' WHERE id = 9999`);
    await h.dst.query(`DELETE FROM ${tt} WHERE id IN (1, 12345)`);
    await h.dst.query(`INSERT INTO ${tt} (id, name) VALUES (0, 'extra'), (${ROWS + 50}, 'extra')`);

    const cli = await dfs("verify", "-c", h.configFile, "--table", `${h.db}.items`, "--chunk-rows", "2000");
    assert.equal(cli.code, 65, `${cli.out}\n${cli.err}`);
    assert.match(cli.out, /DRIFT/);
    assert.match(cli.out, /missing\s+\{"id":"12345"\}/);

    const found = await runVerify(h.cfg, {
      log: quietLog,
      chunkRows: 1000,
      tables: [{ db: h.db, table: "items" }],
    });
    const r1 = found.tables[0]!;
    assert.equal(r1.status, "drift");
    const kinds = Object.fromEntries(r1.drift.map((d) => [d.key.id, d.kind]));
    assert.deepEqual(kinds, {
      "0": "extra",
      "1": "missing",
      "3": "different",
      "17": "different",
      "9999": "different",
      "12345": "missing",
      [String(ROWS + 50)]: "extra",
    });
    assert.equal(found.drift, true);
    assert.equal(r1.sourceRows, ROWS);
    assert.equal(r1.targetRows, ROWS);

    const repaired = await dfs(
      "verify",
      "-c",
      h.configFile,
      "--table",
      `${h.db}.items`,
      "--repair",
      "--json",
    );
    assert.equal(repaired.code, 0, `${repaired.out}\n${repaired.err}`);
    const report = JSON.parse(repaired.out) as {
      tables: { status: string; repair: Record<string, unknown> }[];
    };
    assert.equal(report.tables[0]!.status, "repaired");
    assert.deepEqual(report.tables[0]!.repair, { upserted: 5, deleted: 2, remaining: [] });

    const after = await dfs("verify", "-c", h.configFile, "--table", `${h.db}.items`);
    assert.equal(after.code, 0, `${after.out}\n${after.err}`);
    assert.match(after.out, /\bok\b/);
    // The repaired rows are exactly the source's (NULL vs '' included).
    const [a] = await h.src.query(
      `SELECT id, name, note IS NULL AS n, HEX(b) AS b FROM ${t} WHERE id IN (1, 3, 17, 9999, 12345) ORDER BY id`,
    );
    const [b] = await h.dst.query(
      `SELECT id, name, note IS NULL AS n, HEX(b) AS b FROM ${tt} WHERE id IN (1, 3, 17, 9999, 12345) ORDER BY id`,
    );
    assert.deepEqual(b, a);
    const [extra] = await h.dst.query(`SELECT COUNT(*) AS n FROM ${tt} WHERE id IN (0, ${ROWS + 50})`);
    assert.equal(Number((extra as { n: string }[])[0]!.n), 0);
    // The last result is kept for the DPU's dfs_verify_* gauges.
    const [kept] = await h.dst.query(
      "SELECT status, drifted_keys FROM `_dfs`.`_dfs_verify` WHERE source_id = ?",
      [h.id],
    );
    assert.deepEqual(kept, [{ status: "ok", drifted_keys: "0" }]);
  } finally {
    await h.close();
  }
});

test("sync: verify while a load runs on the source reports no drift", async (tc) => {
  const h = await openHarness("vfyload");
  const t = `${q(h.db)}.${q("acct")}`;
  try {
    await h.src.query(
      `CREATE TABLE ${t} (id INT PRIMARY KEY, balance BIGINT NOT NULL, flag TINYINT NOT NULL DEFAULT 0)`,
    );
    await h.start();
    await h.src.query(`INSERT INTO ${t} (id, balance) SELECT seq, seq FROM ${q(h.db)}.seq_1_to_30000`);
    await h.caughtUp(["acct"]);
    let stop = false;
    let writes = 0;
    const writer = async (n: number) => {
      const { sourceConnection } = await import("@dfs/testkit");
      const c = await sourceConnection();
      try {
        let next = 40_000 + n * 100_000;
        while (!stop) {
          const id = 1 + Math.floor(Math.random() * 30_000);
          const op = writes % 10;
          // Writer 0 changes ranges of rows (the DPU falls behind a little); the others keep ten rows hot.
          if (n === 0)
            await c.query(`UPDATE ${t} SET balance = balance + 1 WHERE id BETWEEN ? AND ?`, [id, id + 300]);
          else if (op < 3)
            await c.query(`UPDATE ${t} SET balance = balance + 1 WHERE id = ?`, [1 + (writes % 10)]);
          else if (op < 6)
            await c.query(`UPDATE ${t} SET balance = balance + 1, flag = 1 - flag WHERE id = ?`, [id]);
          else if (op < 8) await c.query(`INSERT INTO ${t} (id, balance) VALUES (?, 1)`, [next++]);
          else await c.query(`DELETE FROM ${t} WHERE id = ?`, [id]);
          writes++;
        }
      } finally {
        await c.end();
      }
    };
    const load = Promise.all([0, 1, 2].map(writer));
    try {
      // Twice, while the load runs: every chunk is read while rows change on both sides.
      for (let i = 0; i < 2; i++) {
        const report = await runVerify(h.cfg, {
          log: quietLog,
          chunkRows: 2000,
          tables: [{ db: h.db, table: "acct" }],
        });
        const r = report.tables[0]!;
        assert.deepEqual(r.drift, [], `no drift under load: ${JSON.stringify(r)}`);
        assert.notEqual(r.status, "drift");
        assert.equal(report.drift, false);
        assert.ok(r.sourceRows > 25_000, JSON.stringify(r));
        tc.diagnostic(
          `pass ${i + 1}: ${r.chunks} chunks, ${r.chunksDiffering} differed when first read, ${r.unsettled} keys unsettled, ${writes} writes so far`,
        );
      }
    } finally {
      stop = true;
      await load;
    }
    assert.ok(writes > 500, `the load wrote ${writes} changes`);
  } finally {
    await h.close();
  }
});
