/**
 * `dfs bench e2e --use pipeline`: the pipeline use's catch-up beside the sync use's, in one run,
 * on the three-level schema (customers -> orders -> order_items). The same binlog backlog is
 * applied twice by `dfs run`: once synced (same structure), once through the mappings into
 * clients -> sales -> sale_lines, whose keys the target generates (key maps, foreign keys
 * rewritten, a computed column, a filter). Both results are checked.
 */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { parseMysqlUrl } from "@dfs/mysql";
import { connectNats } from "@dfs/nats";
import { stackUrls } from "@dfs/stack";
import mysql from "mysql2/promise";
import { type CaughtUp, type Conn, cleanUp, q, startDfsRun, stopChild, waitCaughtUp } from "./run.js";
import { binlogEnd } from "./workload.js";

export interface PipelineBenchOptions {
  rows: number;
  /** Extra lines for both runs' config (e.g. "dpu: { batch: { maxRows: 5000 } }"). */
  extraConfig?: string[];
  log: (s: string) => void;
}

export interface PipelineBenchResult {
  rows: number;
  writeSeconds: number;
  counts: { customers: number; orders: number; items: number; lines: number };
  sync: CaughtUp;
  pipeline: CaughtUp;
}

const SOURCE = (db: string) => [
  `CREATE TABLE ${q(db)}.customers (id INT PRIMARY KEY, first_name VARCHAR(40) NOT NULL, last_name VARCHAR(40) NOT NULL, email VARCHAR(80), created_at DATETIME(6) NOT NULL)`,
  `CREATE TABLE ${q(db)}.orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, placed_at DATETIME(6) NOT NULL, total DECIMAL(14,2) NOT NULL, note VARCHAR(50), KEY (customer_id))`,
  `CREATE TABLE ${q(db)}.order_items (id INT PRIMARY KEY, order_id BIGINT UNSIGNED NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, KEY (order_id))`,
  "CREATE TABLE bench_done (id INT PRIMARY KEY)",
];

const TARGET = (tdb: string) => [
  `CREATE DATABASE ${q(tdb)}`,
  `CREATE TABLE ${q(tdb)}.clients (client_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, full_name VARCHAR(90) NOT NULL, email VARCHAR(80), since DATETIME(6))`,
  `CREATE TABLE ${q(tdb)}.sales (sale_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, client_id BIGINT UNSIGNED NOT NULL, placed DATETIME(6) NOT NULL, amount DECIMAL(14,2) NOT NULL, KEY (client_id))`,
  `CREATE TABLE ${q(tdb)}.sale_lines (line_id INT PRIMARY KEY, sale_id BIGINT UNSIGNED NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, unit_price DECIMAL(10,2) NOT NULL, line_total DECIMAL(20,2) NOT NULL, KEY (sale_id))`,
];

/** The pipeline section, as one YAML flow line (JSON is YAML). */
function pipelineConfig(db: string, tdb: string): string {
  return `pipeline: ${JSON.stringify({
    relationships: [
      { child: `${db}.orders(customer_id)`, parent: `${db}.customers(id)` },
      { child: `${db}.order_items(order_id)`, parent: `${db}.orders(id)` },
    ],
    mappings: [
      {
        source: `${db}.customers`,
        target: `${tdb}.clients`,
        key: "generated",
        columns: { full_name: { expr: 'concat(first_name, " ", last_name)' }, since: "created_at" },
      },
      {
        source: `${db}.orders`,
        target: `${tdb}.sales`,
        key: "generated",
        columns: { client_id: "customer_id", placed: "placed_at", amount: "total" },
      },
      {
        source: `${db}.order_items`,
        target: `${tdb}.sale_lines`,
        columns: {
          line_id: "id",
          sale_id: "order_id",
          unit_price: "price",
          line_total: { expr: "qty * price" },
        },
        filter: "qty > 0",
      },
    ],
  })}`;
}

/**
 * Transactions of about 1,000 row changes: 40 customers, 120 orders (3 each), 480 items (4 each),
 * then about 200 item updates (qty moves rows into and out of the filter), 80 order updates and up
 * to 80 item deletes among the rows written lately. Row changes are counted as the server reports them.
 */
async function writeShop(src: Conn, db: string, rows: number): Promise<{ seconds: number; changes: number }> {
  const t0 = performance.now();
  let changes = 0;
  let c = 0;
  let o = 0;
  let i = 0;
  const iso = "2024-05-06 07:08:09.123456";
  while (changes < rows) {
    await src.query("BEGIN");
    const cs: unknown[][] = [];
    const os: unknown[][] = [];
    const is: unknown[][] = [];
    for (let k = 0; k < 40; k++) {
      c++;
      cs.push([c, `First${c}`, `Last${c % 97}`, `c${c}@example.com`, iso]);
      for (let m = 0; m < 3; m++) {
        o++;
        os.push([String(9_000_000_000_000_000_000n + BigInt(o)), c, iso, ((o * 37) % 9000) + 0.5, "n"]);
        for (let n = 0; n < 4; n++) {
          i++;
          is.push([
            i,
            String(9_000_000_000_000_000_000n + BigInt(o)),
            `sku-${i % 500}`,
            i % 5,
            ((i * 7) % 300) + 0.25,
          ]);
        }
      }
    }
    const run = async (sql: string, params: unknown[]) => {
      const [res] = await src.query(sql, params);
      changes += (res as { affectedRows: number }).affectedRows;
    };
    await run(`INSERT INTO ${q(db)}.customers VALUES ?`, [cs]);
    await run(`INSERT INTO ${q(db)}.orders VALUES ?`, [os]);
    await run(`INSERT INTO ${q(db)}.order_items VALUES ?`, [is]);
    const lo = Math.max(1, i - 4000);
    await run(
      `UPDATE ${q(db)}.order_items SET qty = (qty + 1) % 5 WHERE id BETWEEN ? AND ? AND id % 20 = 0`,
      [lo, i],
    );
    await run(`UPDATE ${q(db)}.orders SET total = total + 1 WHERE id > ? ORDER BY id LIMIT 80`, [
      String(9_000_000_000_000_000_000n + BigInt(Math.max(0, o - 1000))),
    ]);
    await run(`DELETE FROM ${q(db)}.order_items WHERE id BETWEEN ? AND ? AND id % 50 = 1`, [lo, i]);
    await src.query("COMMIT");
  }
  return { seconds: (performance.now() - t0) / 1000, changes };
}

export async function benchPipeline(o: PipelineBenchOptions): Promise<PipelineBenchResult> {
  const { log } = o;
  const urls = stackUrls();
  const s = parseMysqlUrl(urls.sourceUrl);
  const t = parseMysqlUrl(urls.targetUrl);
  const stamp = Date.now().toString(36);
  const db = `dfs_bench_pipe${stamp}`;
  const tdb = `${db}_crm`;
  const opts = (u: typeof s) => ({ host: u.host, port: u.port, user: u.user, password: u.password });
  const src = await mysql.createConnection(opts(s));
  const tgt = await mysql.createConnection(opts(t));
  const nc = await connectNats({ url: urls.natsUrl, name: "dfs-bench-pipeline" });
  const ids = [`ps${stamp}`, `pp${stamp}`];
  let child: ChildProcess | null = null;
  const dirs: string[] = [];
  try {
    await src.query(`CREATE DATABASE ${q(db)}`);
    await src.query(`USE ${q(db)}`);
    for (const sql of SOURCE(db)) await src.query(sql);
    for (const sql of TARGET(tdb)) await tgt.query(sql);
    const start = await binlogEnd(src);
    log(
      `pipeline: writing ${o.rows.toLocaleString("en")} row changes to customers -> orders -> order_items...`,
    );
    const w = await writeShop(src, db, o.rows);
    const sentinelAt = await binlogEnd(src);
    await src.query("INSERT INTO bench_done VALUES (1)");
    const end = await binlogEnd(src);
    const one = async (c: Conn, sql: string) => Number(((await c.query(sql))[0] as { n: number }[])[0]!.n);
    const counts = {
      customers: await one(src, `SELECT COUNT(*) AS n FROM ${q(db)}.customers`),
      orders: await one(src, `SELECT COUNT(*) AS n FROM ${q(db)}.orders`),
      items: await one(src, `SELECT COUNT(*) AS n FROM ${q(db)}.order_items`),
      lines: await one(src, `SELECT COUNT(*) AS n FROM ${q(db)}.order_items WHERE qty > 0`),
    };
    log(
      `pipeline: ${w.seconds.toFixed(1)} s to write ${w.changes.toLocaleString("en")} changes; ${JSON.stringify(counts)}`,
    );

    const catchUp = async (id: string, extra: string[]) => {
      const run = startDfsRun(urls, id, db, start, extra);
      child = run.child;
      dirs.push(run.dir);
      const caught = await waitCaughtUp(
        run,
        nc,
        tgt,
        { db, table: "bench_done" },
        sentinelAt.sortable,
        end.sortable,
      );
      await stopChild(child, 15_000);
      child = null;
      return caught;
    };
    // 1. The sync use: the same tables into the target database of the same name.
    const sync = await catchUp(ids[0]!, o.extraConfig ?? []);
    const synced = await one(tgt, `SELECT COUNT(*) AS n FROM ${q(db)}.order_items`);
    if (synced !== counts.items)
      throw new Error(`sync: ${synced} order_items in the target, ${counts.items} in the source`);
    log(
      `sync: ${sync.seconds.toFixed(2)} s, ${Math.round(w.changes / sync.seconds).toLocaleString("en")} rows/s`,
    );
    await tgt.query(`DROP DATABASE ${q(db)}`);
    // 2. The pipeline use, from the same start.
    const pipeline = await catchUp(ids[1]!, [...(o.extraConfig ?? []), pipelineConfig(db, tdb)]);
    const got = {
      customers: await one(tgt, `SELECT COUNT(*) AS n FROM ${q(tdb)}.clients`),
      orders: await one(tgt, `SELECT COUNT(*) AS n FROM ${q(tdb)}.sales`),
      lines: await one(tgt, `SELECT COUNT(*) AS n FROM ${q(tdb)}.sale_lines`),
      dangling: await one(
        tgt,
        `SELECT (SELECT COUNT(*) FROM ${q(tdb)}.sale_lines l LEFT JOIN ${q(tdb)}.sales s USING (sale_id) WHERE s.sale_id IS NULL) + (SELECT COUNT(*) FROM ${q(tdb)}.sales s LEFT JOIN ${q(tdb)}.clients c USING (client_id) WHERE c.client_id IS NULL) AS n`,
      ),
    };
    if (
      got.customers !== counts.customers ||
      got.orders !== counts.orders ||
      got.lines !== counts.lines ||
      got.dangling !== 0
    )
      throw new Error(
        `pipeline: target ${JSON.stringify(got)} does not match the source ${JSON.stringify(counts)}`,
      );
    log(
      `pipeline: ${pipeline.seconds.toFixed(2)} s, ${Math.round(w.changes / pipeline.seconds).toLocaleString("en")} rows/s; every row mapped, no line or sale without its parent`,
    );
    return { rows: w.changes, writeSeconds: w.seconds, counts, sync, pipeline };
  } finally {
    await stopChild(child, 5_000).catch(() => {});
    await src.end().catch(() => {});
    await tgt.end().catch(() => {});
    for (const id of ids) await cleanUp({ source: opts(s), target: opts(t) }, nc, id, db, log);
    const c = await mysql.createConnection(opts(t)).catch(() => null);
    await c?.query(`DROP DATABASE IF EXISTS ${q(tdb)}`).catch(() => {});
    await c
      ?.query("DELETE FROM `_dfs`.`_dfs_keymap` WHERE target_table LIKE ?", [`${tdb}.%`])
      .catch(() => {});
    await c?.end().catch(() => {});
    await nc.close().catch(() => {});
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
