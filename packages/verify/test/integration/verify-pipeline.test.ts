import assert from "node:assert/strict";
import { test } from "node:test";
import { runVerify } from "../../dist/index.js";
import { openHarness, q, quietLog } from "../support/harness.js";

test("pipeline: an invertible mapping (key source, renamed columns) is verified and repaired through it; others are refused with the reason", async () => {
  const h = await openHarness("vfypipe", {});
  const s = (t: string) => `${q(h.db)}.${q(t)}`;
  const d = (t: string) => `${q(h.targetDb)}.${q(t)}`;
  try {
    await h.src.query(
      `CREATE TABLE ${s("customers")} (id INT PRIMARY KEY, first_name VARCHAR(40) NOT NULL, email VARCHAR(80) NULL,
         created_at DATETIME(6) NOT NULL, internal VARCHAR(10) NULL)`,
    );
    await h.src.query(
      `CREATE TABLE ${s("orders")} (id INT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2) NOT NULL)`,
    );
    await h.src.query(`CREATE TABLE ${s("notes")} (id INT PRIMARY KEY, body VARCHAR(40) NOT NULL)`);
    await h.dst.query(`CREATE DATABASE ${q(h.targetDb)}`);
    // The target's own structure: other names, a column of its own, no "internal".
    await h.dst.query(
      `CREATE TABLE ${d("clients")} (client_no INT PRIMARY KEY, name VARCHAR(40) NOT NULL, mail VARCHAR(80) NULL,
         since DATETIME(6) NOT NULL, local_flag TINYINT NOT NULL DEFAULT 0)`,
    );
    await h.dst.query(
      `CREATE TABLE ${d("sales")} (sale_id BIGINT AUTO_INCREMENT PRIMARY KEY, client INT NOT NULL, amount DECIMAL(10,2) NOT NULL)`,
    );
    await h.dst.query(`CREATE TABLE ${d("memos")} (id INT PRIMARY KEY, body VARCHAR(40) NOT NULL)`);
    const { pipelineSchema } = await import("@dfs/config");
    h.cfg.pipeline = pipelineSchema.parse({
      mappings: [
        {
          source: `${h.db}.customers`,
          target: `${h.targetDb}.clients`,
          key: "source",
          columns: { client_no: "id", name: "first_name", mail: "email", since: "created_at" },
        },
        {
          source: `${h.db}.orders`,
          target: `${h.targetDb}.sales`,
          key: "generated",
          columns: { client: "customer_id", amount: "total" },
        },
        {
          source: `${h.db}.notes`,
          target: `${h.targetDb}.memos`,
          key: "source",
          columns: { body: { expr: "upper(body)" } },
        },
      ],
    });
    await h.start();
    await h.src.query(
      `INSERT INTO ${s("customers")} SELECT seq, CONCAT('c', seq), IF(seq % 4 = 0, NULL, CONCAT('c', seq, '@x.org')),
         '2024-01-02 03:04:05.000001' + INTERVAL seq SECOND, 'secret' FROM ${q(h.db)}.seq_1_to_3000`,
    );
    await h.src.query(`INSERT INTO ${s("orders")} VALUES (1, 1, 9.99), (2, 2, 1.50)`);
    await h.src.query(`INSERT INTO ${s("notes")} VALUES (1, 'hello')`);
    const { waitFor } = await import("@dfs/common");
    await waitFor(
      async () => {
        const [r] = await h.dst.query(
          `SELECT (SELECT COUNT(*) FROM ${d("clients")}) + (SELECT COUNT(*) FROM ${d("memos")}) AS n`,
        );
        return Number((r as { n: string }[])[0]!.n) === 3001;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "the mapped rows on the target" },
    );
    const tables = ["customers", "orders", "notes"].map((table) => ({ db: h.db, table }));

    const clean = await runVerify(h.cfg, { log: quietLog, chunkRows: 500, tables });
    const byName = Object.fromEntries(clean.tables.map((r) => [r.name, r]));
    const clients = byName[`${h.db}.customers -> ${h.targetDb}.clients`];
    assert.ok(clients, Object.keys(byName).join(", "));
    assert.equal(clients.status, "ok", JSON.stringify(clients));
    assert.equal(clients.sourceRows, 3000);
    const sales = byName[`${h.db}.orders -> ${h.targetDb}.sales`]!;
    assert.equal(sales.status, "unverifiable");
    assert.match(
      sales.reason!,
      /pipeline\.mappings\[1\] cannot be verified: the target generates its keys \(key: generated\)/,
    );
    const memos = byName[`${h.db}.notes -> ${h.targetDb}.memos`]!;
    assert.equal(memos.status, "unverifiable");
    assert.match(
      memos.reason!,
      /pipeline\.mappings\[2\] cannot be verified: column body is a constant or an expression/,
    );
    assert.equal(clean.drift, false);

    // Behind the pipeline's back; the target's own column changing is not drift (the mapping does not write it).
    await h.dst.query(`UPDATE ${d("clients")} SET local_flag = 1 WHERE client_no < 100`);
    await h.dst.query(`UPDATE ${d("clients")} SET mail = NULL WHERE client_no = 5`);
    await h.dst.query(`DELETE FROM ${d("clients")} WHERE client_no = 6`);
    await h.dst.query(`INSERT INTO ${d("clients")} (client_no, name, since) VALUES (9000, 'extra', NOW())`);

    const found = await runVerify(h.cfg, {
      log: quietLog,
      chunkRows: 500,
      tables: [tables[0]!],
      repair: true,
    });
    const r = found.tables[0]!;
    assert.deepEqual(
      Object.fromEntries(r.drift.map((x) => [x.key.id, x.kind])),
      { "5": "different", "6": "missing", "9000": "extra" },
      JSON.stringify(r),
    );
    assert.equal(r.status, "repaired", JSON.stringify(r));
    assert.deepEqual(r.repair, { upserted: 2, deleted: 1, remaining: [] });
    const [rows] = await h.dst.query(
      `SELECT client_no, name, mail, since FROM ${d("clients")} WHERE client_no IN (5, 6, 9000) ORDER BY client_no`,
    );
    assert.deepEqual(rows, [
      { client_no: 5, name: "c5", mail: "c5@x.org", since: "2024-01-02 03:04:10.000001" },
      { client_no: 6, name: "c6", mail: "c6@x.org", since: "2024-01-02 03:04:11.000001" },
    ]);
    const again = await runVerify(h.cfg, { log: quietLog, chunkRows: 500, tables: [tables[0]!] });
    assert.equal(again.tables[0]!.status, "ok");
  } finally {
    await h.close();
  }
});
