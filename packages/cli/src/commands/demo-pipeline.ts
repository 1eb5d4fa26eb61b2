/**
 * `dfs demo -c examples/pipeline.yaml`: the pipeline use on the local stack. Creates the demo
 * schemas (examples/pipeline/source.sql and target.sql), runs capture, the DPU and the monitor,
 * writes customers, orders and order items (parents and children in one transaction, updates,
 * re-points, deletes) while the target also takes its own clients, and shows the target following
 * through its own keys.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { waitFor } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { connectionOptions, type MysqlEndpoint } from "@dfs/mysql";
import mysql from "mysql2/promise";
import { ExitCode } from "../exit.js";
import { startDemoServices } from "./demo.js";

const SHOP = "demo_pipe_shop";
const CRM = "demo_pipe_crm";

function connect(endpoint: MysqlEndpoint): Promise<mysql.Connection> {
  return mysql.createConnection({
    ...connectionOptions(endpoint),
    multipleStatements: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  });
}

/** One step of the load: mostly new customers with an order, some updates, re-points and deletes. */
async function step(src: mysql.Connection, n: number): Promise<void> {
  await src.query("BEGIN");
  const [c] = await src.query(
    `INSERT INTO ${SHOP}.customers (first_name, last_name, email) VALUES (?, ?, ?)`,
    [`Ann${n}`, `Lee${n % 13}`, `Ann.${n}@Example.COM`],
  );
  const customer = (c as { insertId: number }).insertId;
  const [o] = await src.query(
    `INSERT INTO ${SHOP}.orders (customer_id, total, internal_note) VALUES (?, ?, 'demo')`,
    [customer, ((n * 37) % 500) + 0.99],
  );
  const order = (o as { insertId: number }).insertId;
  for (let i = 0; i < 1 + (n % 3); i++)
    await src.query(`INSERT INTO ${SHOP}.order_items (order_id, sku, qty, price) VALUES (?, ?, ?, ?)`, [
      order,
      `sku-${(n + i) % 40}`,
      (n + i) % 4, // qty 0: filtered out of the target
      (((n + i) * 3.5) % 90) + 0.25,
    ]);
  await src.query("COMMIT");
  if (n % 3 === 0) await src.query(`UPDATE ${SHOP}.order_items SET qty = qty + 1 ORDER BY id DESC LIMIT 2`);
  if (n % 4 === 0)
    await src.query(`UPDATE ${SHOP}.orders SET customer_id = ? WHERE id = ?`, [
      Math.max(1, customer - 1),
      order,
    ]);
  if (n % 5 === 0) {
    const [rows] = await src.query(`SELECT id FROM ${SHOP}.orders ORDER BY id LIMIT 1`);
    const first = (rows as { id: string }[])[0]?.id;
    if (first) {
      await src.query("BEGIN");
      await src.query(`DELETE FROM ${SHOP}.order_items WHERE order_id = ?`, [first]);
      await src.query(`DELETE FROM ${SHOP}.orders WHERE id = ?`, [first]);
      await src.query("COMMIT");
    }
  }
}

async function counts(src: mysql.Connection, dst: mysql.Connection) {
  const one = async (c: mysql.Connection, sql: string) =>
    Number(((await c.query(sql))[0] as { n: number }[])[0]!.n);
  return {
    source: [
      await one(src, `SELECT COUNT(*) AS n FROM ${SHOP}.customers`),
      await one(src, `SELECT COUNT(*) AS n FROM ${SHOP}.orders`),
      await one(src, `SELECT COUNT(*) AS n FROM ${SHOP}.order_items WHERE qty > 0`),
    ],
    target: [
      await one(dst, `SELECT COUNT(*) AS n FROM ${CRM}.clients WHERE origin = 'shop'`),
      await one(dst, `SELECT COUNT(*) AS n FROM ${CRM}.sales`),
      await one(dst, `SELECT COUNT(*) AS n FROM ${CRM}.sale_lines`),
    ],
  };
}

export async function runPipelineDemo(
  cfg: DfsConfig,
  o: { configPath: string; seconds: number; tokenMade: boolean },
): Promise<number> {
  const src = await connect(cfg.source.endpoint);
  const dst = await connect(cfg.target!.endpoint);
  const dir = join(dirname(o.configPath), "pipeline");
  await src.query(readFileSync(join(dir, "source.sql"), "utf8"));
  await dst.query(readFileSync(join(dir, "target.sql"), "utf8"));
  console.log(`schemas: ${SHOP} on the source, ${CRM} on the target (${dir}/source.sql, target.sql)`);
  const { capture, dpu, monitor } = await startDemoServices(cfg);
  console.log(
    `monitor: http://127.0.0.1:${monitor.port}/  (token: ${o.tokenMade ? `${cfg.control.token}, made for this run` : "control.token"})`,
  );
  console.log(
    `writing customers, orders and items to ${SHOP}${o.seconds > 0 ? ` for ${o.seconds} s` : " (Ctrl-C to stop)"}; the target also takes clients of its own\n`,
  );
  const stop = new AbortController();
  const load = (async () => {
    for (let n = 1; !stop.signal.aborted; n++) {
      await step(src, n);
      if (n % 10 === 0)
        await dst.query(`INSERT INTO ${CRM}.clients (full_name, origin) VALUES (?, 'crm')`, [`walk-in ${n}`]);
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  const show = (c: { source: number[]; target: number[] }) =>
    `source customers/orders/items(qty>0) ${c.source.join("/")} | target clients/sales/lines ${c.target.join("/")}`;
  const follow = setInterval(async () => console.log(`  -- ${show(await counts(src, dst))}`), 2000);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    if (o.seconds > 0) setTimeout(resolve, o.seconds * 1000);
  });
  stop.abort();
  await load;
  clearInterval(follow);
  const same = await waitFor(
    async () => {
      const c = await counts(src, dst);
      return c.source.every((n, i) => n === c.target[i]);
    },
    { timeoutMs: 30_000, what: "the target to catch up" },
  )
    .then(() => true)
    .catch(() => false);
  console.log(`\n${show(await counts(src, dst))}`);
  const [bad] = await dst.query(
    `SELECT (SELECT COUNT(*) FROM ${CRM}.sale_lines l LEFT JOIN ${CRM}.sales s USING (sale_id) WHERE s.sale_id IS NULL)
          + (SELECT COUNT(*) FROM ${CRM}.sales s LEFT JOIN ${CRM}.clients c USING (client_id) WHERE c.client_id IS NULL) AS n`,
  );
  const dangling = Number((bad as { n: number }[])[0]!.n);
  if (dangling > 0) console.log(`${dangling} target rows point at no parent`);
  const [lines] = await dst.query(
    `SELECT c.client_id, c.full_name, s.sale_id, l.qty, l.sku, l.unit_price, l.line_total
       FROM ${CRM}.sale_lines l JOIN ${CRM}.sales s USING (sale_id) JOIN ${CRM}.clients c USING (client_id)
      ORDER BY l.line_id DESC LIMIT 3`,
  );
  for (const l of lines as Record<string, string>[])
    console.log(
      `  client ${l.client_id} ${l.full_name}: sale ${l.sale_id}, ${l.qty} x ${l.sku} at ${l.unit_price} = ${l.line_total}`,
    );
  const dead = dpu?.status().deadLettered ?? 0;
  console.log(
    same && dead === 0 && dangling === 0
      ? "the target equals the source through the mappings (every line points at its sale, every sale at its client)"
      : `the target does NOT equal the source (${dead} dead letters)`,
  );
  await monitor.stop();
  await dpu?.stop();
  await capture.stop();
  await src.end();
  await dst.end();
  return same && dead === 0 && dangling === 0 ? ExitCode.OK : ExitCode.DATAERR;
}
