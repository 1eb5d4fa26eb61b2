// The pipeline use at its edges: a child whose parent is not in the target waits, then goes to the
// dead letters with the reason (never written with a source id); a TypeScript hooks module changes
// and drops rows, and one that throws dead-letters the change naming the module; bad mappings stop
// the DPU at start-up with every problem named by its config path.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError, waitFor } from "@dfs/common";
import { pipelineSchema } from "@dfs/config";
import { tempDir } from "@dfs/testkit";
import { listDeadLetters } from "../../dist/dlq.js";
import { openPipeline, q } from "../support/pipeline.js";
import { shopPipeline, sourceSchema, targetSchema } from "../support/shop.js";

test("pipeline: an orphan child is dead-lettered with its reason after the wait; a TypeScript hook changes, drops and refuses rows", async () => {
  const p = await openPipeline("pipeedge");
  const { db, targetDb: tdb } = p;
  const hook = join(tempDir(), "hooks.ts");
  writeFileSync(
    hook,
    `interface Row { [k: string]: unknown }
export function map(row: Row, ctx: { sourceRow: Row }): Row | null {
  const name = String(ctx.sourceRow.first_name);
  if (name === "Hidden") return null;
  if (name === "Boom") throw new Error("no booms allowed");
  return { ...row, full_name: (row.full_name as string).toUpperCase() };
}
`,
  );
  try {
    for (const sql of sourceSchema(db)) await p.src.query(sql);
    for (const sql of targetSchema(tdb)) await p.dst.query(sql);
    const cfg = shopPipeline(db, tdb) as { mappings: Record<string, unknown>[] };
    cfg.mappings[0]!.hooks = hook;
    p.cfg.pipeline = pipelineSchema.parse({ ...cfg, orphanWaitMs: "500ms" });
    await p.startCapture();
    await p.startDpu();
    const s = (t: string) => `${q(db)}.${t}`;
    await p.src.query(
      `INSERT INTO ${s("customers")} (id, first_name, last_name, email, created_at) VALUES (1, 'Ann', 'Lee', 'A@X.org', '2024-01-02 03:04:05.123456'), (2, 'Hidden', 'X', NULL, NOW(6)), (3, 'Boom', 'Y', NULL, NOW(6))`,
    );
    // Order 10 belongs to the hidden customer: its parent has no target row.
    await p.src.query(
      `INSERT INTO ${s("orders")} VALUES (10, 2, NOW(6), 5.00, NULL), (11, 1, '2024-05-06 07:08:09.000001', 12.34, 'x')`,
    );
    await p.src.query(
      `INSERT INTO ${s("order_items")} VALUES (100, 11, 'a', 2, 1.25), (101, 11, 'b', 0, 9.99)`,
    );

    await waitFor(async () => (await listDeadLetters(p.nc, p.id)).length >= 2, {
      timeoutMs: 30_000,
      what: "the orphan order and the hook's refusal in the dead letters",
    });
    const dead = await listDeadLetters(p.nc, p.id);
    const orphan = dead.find((d) => d.table === "orders");
    assert.match(
      orphan?.error ?? "",
      /column client_id references .*customers key \["2"\], which has no row in .*clients \(not mapped after 500 ms\)/,
    );
    const boom = dead.find((d) => d.table === "customers");
    assert.match(
      boom?.error ?? "",
      /hooks module .*hooks\.ts map\(\) threw for pipeline\.mappings\[0\]: no booms allowed/,
    );

    const rows = async (sql: string) => (await p.dst.query(sql))[0] as Record<string, string>[];
    await waitFor(async () => (await rows(`SELECT * FROM ${q(tdb)}.sale_lines`)).length === 1, {
      timeoutMs: 30_000,
      what: "the sale line",
    });
    const clients = await rows(`SELECT client_id, full_name, email, since FROM ${q(tdb)}.clients`);
    assert.deepEqual(
      clients.map((c) => [c.full_name, c.email, c.since]),
      [["ANN LEE", "a@x.org", "2024-01-02 03:04:05.123456"]],
    );
    const sales = await rows(`SELECT sale_id, client_id, placed, amount FROM ${q(tdb)}.sales`);
    assert.deepEqual(
      sales.map((x) => [x.client_id, x.placed, x.amount]),
      [[clients[0]!.client_id, "2024-05-06 07:08:09.000001", "12.34"]],
      "only the order whose parent is mapped, pointing at the parent's target key",
    );
    const lines = await rows(`SELECT line_id, sale_id, line_total FROM ${q(tdb)}.sale_lines`);
    assert.deepEqual(
      lines.map((l) => [String(l.line_id), l.sale_id, l.line_total]),
      [["100", sales[0]!.sale_id, "2.50"]],
    );

    // A parent removed before its children in one transaction: the children's removals need no
    // parent key (they are found by their own), so they neither wait nor go to the dead letters.
    await p.src.query(
      `START TRANSACTION; DELETE FROM ${s("orders")} WHERE id = 11; DELETE FROM ${s("order_items")} WHERE order_id = 11; COMMIT`,
    );
    await waitFor(
      async () =>
        (await rows(`SELECT 1 FROM ${q(tdb)}.sales`)).length === 0 &&
        (await rows(`SELECT 1 FROM ${q(tdb)}.sale_lines`)).length === 0,
      { timeoutMs: 30_000, what: "the sale and its line removed" },
    );
    assert.equal((await listDeadLetters(p.nc, p.id)).length, 2, "no new dead letter");
  } finally {
    await p.close();
  }
});

test("pipeline: bad mappings stop the DPU at start-up naming every problem's path", async () => {
  const p = await openPipeline("pipebad");
  const { db, targetDb: tdb } = p;
  try {
    for (const sql of sourceSchema(db)) await p.src.query(sql);
    for (const sql of targetSchema(tdb)) await p.dst.query(sql);
    p.cfg.pipeline = pipelineSchema.parse({
      mappings: [
        {
          source: `${db}.customers`,
          target: `${tdb}.clients`,
          key: "generated",
          columns: { full_name: "nmae" },
        },
        { source: `${db}.orders`, target: `${tdb}.nope` },
        {
          source: `${db}.order_items`,
          target: `${tdb}.sale_lines`,
          columns: { line_total: { expr: "qty ** price" } },
        },
      ],
    });
    const err = await p.startDpu().then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    const text = err.problems.join("\n");
    assert.match(text, /pipeline\.mappings\[0\]\.columns\.full_name: source column "nmae" does not exist/);
    assert.match(
      text,
      /pipeline\.mappings\[0\]\.columns: target column "origin" is NOT NULL without a default/,
    );
    assert.match(text, /pipeline\.mappings\[1\]\.target: table .*\.nope does not exist on the target/);
    assert.match(text, /pipeline\.mappings\[2\]\.columns\.line_total: /);
    assert.match(text, /pipeline\.mappings\[2\]\.columns: key column "line_id" of .* is not written/);
  } finally {
    await p.close();
  }
});
