// The pipeline use's test schema: customers -> orders -> order_items on the source, mapped onto
// clients -> sales -> sale_lines on the target (generated keys, renamed columns, a computed column,
// a filtered table), a random mixed load on it, and the check that joins back through the key maps.

import type mysql from "mysql2/promise";
import type { Rand } from "./failure.js";
import { q } from "./pipeline.js";

export function sourceSchema(db: string): string[] {
  return [
    `CREATE TABLE ${q(db)}.customers (id INT AUTO_INCREMENT PRIMARY KEY, first_name VARCHAR(40) NOT NULL, last_name VARCHAR(40) NOT NULL, email VARCHAR(80), created_at DATETIME(6) NOT NULL)`,
    // A declared foreign key (discovered by the DPU).
    `CREATE TABLE ${q(db)}.orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, placed_at DATETIME(6) NOT NULL, total DECIMAL(20,2) NOT NULL, note VARCHAR(50), FOREIGN KEY (customer_id) REFERENCES customers (id))`,
    // No constraint: the relationship is declared in the config.
    `CREATE TABLE ${q(db)}.order_items (id INT PRIMARY KEY, order_id BIGINT UNSIGNED NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, KEY (order_id))`,
  ];
}

export function targetSchema(db: string): string[] {
  return [
    `CREATE DATABASE IF NOT EXISTS ${q(db)}`,
    `CREATE TABLE ${q(db)}.clients (client_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, full_name VARCHAR(90) NOT NULL, email VARCHAR(80), origin VARCHAR(10) NOT NULL, since DATETIME(6))`,
    `CREATE TABLE ${q(db)}.sales (sale_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, client_id BIGINT UNSIGNED NOT NULL, placed DATETIME(6) NOT NULL, amount DECIMAL(20,2) NOT NULL, origin VARCHAR(10) NOT NULL DEFAULT 'shop', KEY (client_id))`,
    `CREATE TABLE ${q(db)}.sale_lines (line_id INT PRIMARY KEY, sale_id BIGINT UNSIGNED NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, unit_price DECIMAL(10,2) NOT NULL, line_total DECIMAL(20,2) NOT NULL, KEY (sale_id))`,
  ];
}

/** The `pipeline` section for source database `db` and target database `tdb`. */
export function shopPipeline(db: string, tdb: string): Record<string, unknown> {
  return {
    relationships: [{ child: `${db}.order_items(order_id)`, parent: `${db}.orders(id)` }],
    mappings: [
      {
        source: `${db}.customers`,
        target: `${tdb}.clients`,
        key: "generated",
        columns: {
          full_name: { expr: 'concat(first_name, " ", last_name)' },
          email: { expr: "lower(email)" },
          origin: { const: "shop" },
          since: "created_at",
        },
      },
      {
        source: `${db}.orders`,
        target: `${tdb}.sales`,
        key: "generated",
        columns: { client_id: "customer_id", placed: "placed_at", amount: "total" },
        drop: ["note"],
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
  };
}

/** Order ids above 2^63: keys that a double would round. */
const ORDER_BASE = 9_223_372_036_854_775_808n;

interface Worker {
  customers: number[];
  orders: Map<bigint, number>; // order -> customer
  items: Map<number, bigint>; // item -> order
}

/**
 * A random mixed load from `connections.length` writers (each on its own rows, so they never wait
 * for each other): parent and child in one transaction, updates moving rows in and out of the
 * filter, parent re-points, key changes of parents (children follow in the same transaction) and
 * of children, deletes of children, parents and whole families. Stops past `changes` row changes.
 */
export async function shopLoad(
  db: string,
  connections: mysql.Connection[],
  changes: number,
  rand: Rand,
): Promise<number> {
  let done = 0;
  let nextOrder = 1n;
  let nextItem = 1;
  const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(rand() * xs.length)];
  const t = (name: string) => `${q(db)}.${q(name)}`;
  const run = async (conn: mysql.Connection, w: Worker) => {
    while (done < changes) {
      const r = rand();
      await conn.query("BEGIN");
      let n = 0;
      const exec = async (sql: string, params: unknown[]) => {
        const [res] = await conn.query(sql, params);
        n += (res as { affectedRows: number }).affectedRows;
        return res as { insertId: number; affectedRows: number };
      };
      const addOrder = async (customer: number) => {
        const id = ORDER_BASE + nextOrder++;
        await exec(`INSERT INTO ${t("orders")} VALUES (?, ?, NOW(6), ?, ?)`, [
          id.toString(),
          customer,
          (rand() * 1000).toFixed(2),
          "n",
        ]);
        w.orders.set(id, customer);
        const lines = 1 + Math.floor(rand() * 3);
        for (let i = 0; i < lines; i++) {
          const item = nextItem++;
          await exec(`INSERT INTO ${t("order_items")} VALUES (?, ?, ?, ?, ?)`, [
            item,
            id.toString(),
            `sku-${item}`,
            Math.floor(rand() * 4),
            (rand() * 100).toFixed(2),
          ]);
          w.items.set(item, id);
        }
      };
      const order = pick([...w.orders.keys()]);
      const item = pick([...w.items.keys()]);
      if (r < 0.25 || w.customers.length === 0) {
        const res = await exec(
          `INSERT INTO ${t("customers")} (first_name, last_name, email, created_at) VALUES (?, ?, ?, NOW(6))`,
          [`F${nextItem}`, `L${nextItem}`, `Mail${nextItem}@Example.COM`],
        );
        w.customers.push(res.insertId);
        await addOrder(res.insertId);
      } else if (r < 0.4) {
        await addOrder(pick(w.customers)!);
      } else if (r < 0.55 && item !== undefined) {
        await exec(`UPDATE ${t("order_items")} SET qty = ? WHERE id = ?`, [Math.floor(rand() * 4), item]);
      } else if (r < 0.65 && order !== undefined) {
        await exec(`UPDATE ${t("orders")} SET total = ?, note = ? WHERE id = ?`, [
          (rand() * 1000).toFixed(2),
          "u",
          order.toString(),
        ]);
      } else if (r < 0.73 && order !== undefined) {
        const c = pick(w.customers)!;
        await exec(`UPDATE ${t("orders")} SET customer_id = ? WHERE id = ?`, [c, order.toString()]);
        w.orders.set(order, c);
      } else if (r < 0.8 && order !== undefined) {
        const id = ORDER_BASE + nextOrder++;
        await exec(`UPDATE ${t("orders")} SET id = ? WHERE id = ?`, [id.toString(), order.toString()]);
        await exec(`UPDATE ${t("order_items")} SET order_id = ? WHERE order_id = ?`, [
          id.toString(),
          order.toString(),
        ]);
        w.orders.set(id, w.orders.get(order)!);
        w.orders.delete(order);
        for (const [i, o] of w.items) if (o === order) w.items.set(i, id);
      } else if (r < 0.85 && item !== undefined) {
        const id = nextItem++;
        await exec(`UPDATE ${t("order_items")} SET id = ? WHERE id = ?`, [id, item]);
        w.items.set(id, w.items.get(item)!);
        w.items.delete(item);
      } else if (r < 0.92 && item !== undefined) {
        await exec(`DELETE FROM ${t("order_items")} WHERE id = ?`, [item]);
        w.items.delete(item);
      } else if (r < 0.97 && order !== undefined) {
        await exec(`DELETE FROM ${t("order_items")} WHERE order_id = ?`, [order.toString()]);
        await exec(`DELETE FROM ${t("orders")} WHERE id = ?`, [order.toString()]);
        for (const [i, o] of w.items) if (o === order) w.items.delete(i);
        w.orders.delete(order);
      } else if (w.customers.length > 1) {
        const c = w.customers.splice(Math.floor(rand() * w.customers.length), 1)[0]!;
        for (const [o, cust] of w.orders)
          if (cust === c) {
            await exec(`DELETE FROM ${t("order_items")} WHERE order_id = ?`, [o.toString()]);
            await exec(`DELETE FROM ${t("orders")} WHERE id = ?`, [o.toString()]);
            for (const [i, oo] of w.items) if (oo === o) w.items.delete(i);
            w.orders.delete(o);
          }
        await exec(`DELETE FROM ${t("customers")} WHERE id = ?`, [c]);
      }
      await conn.query("COMMIT");
      done += n;
    }
  };
  await Promise.all(connections.map((c) => run(c, { customers: [], orders: new Map(), items: new Map() })));
  return done;
}

type Rows = Record<string, string | null>[];

/**
 * Every difference between what the target should hold (the source through the mapping, parents
 * found through the key maps) and what it holds; empty when they agree.
 */
export async function shopDifferences(
  src: mysql.Connection,
  dst: mysql.Connection,
  db: string,
  tdb: string,
): Promise<string[]> {
  const out: string[] = [];
  const get = async (conn: mysql.Connection, sql: string, params: unknown[] = []) =>
    (await conn.query(sql, params))[0] as Rows;
  const map = async (table: string, source: string) => {
    const rows = await get(
      dst,
      "SELECT CAST(source_key AS CHAR) AS k, CAST(target_key AS CHAR) AS v FROM `_dfs`.`_dfs_keymap` WHERE target_table = ? AND source_table = ?",
      [`${tdb}.${table}`, `${db}.${source}`],
    );
    return new Map(rows.map((r) => [JSON.parse(r.k!)[0] as string, r.v!]));
  };
  const clients = await map("clients", "customers");
  const sales = await map("sales", "orders");
  const customers = await get(
    src,
    `SELECT CAST(id AS CHAR) AS id, CONCAT(first_name, ' ', last_name) AS full_name, LOWER(email) AS email, CAST(created_at AS CHAR) AS since FROM ${q(db)}.customers`,
  );
  const orders = await get(
    src,
    `SELECT CAST(id AS CHAR) AS id, CAST(customer_id AS CHAR) AS customer_id, CAST(placed_at AS CHAR) AS placed, CAST(total AS CHAR) AS amount FROM ${q(db)}.orders`,
  );
  const items = await get(
    src,
    `SELECT id, CAST(order_id AS CHAR) AS order_id, sku, qty, CAST(price AS CHAR) AS unit_price, CAST(qty * price AS DECIMAL(20,2)) AS line_total FROM ${q(db)}.order_items WHERE qty > 0 ORDER BY id`,
  );
  const tClients = new Map(
    (
      await get(
        dst,
        `SELECT CAST(client_id AS CHAR) AS id, full_name, email, CAST(since AS CHAR) AS since FROM ${q(tdb)}.clients WHERE origin = 'shop'`,
      )
    ).map((r) => [r.id!, r]),
  );
  const tSales = new Map(
    (
      await get(
        dst,
        `SELECT CAST(sale_id AS CHAR) AS id, CAST(client_id AS CHAR) AS client_id, CAST(placed AS CHAR) AS placed, CAST(amount AS CHAR) AS amount FROM ${q(tdb)}.sales WHERE origin = 'shop'`,
      )
    ).map((r) => [r.id!, r]),
  );
  const tLines = await get(
    dst,
    `SELECT line_id AS id, CAST(sale_id AS CHAR) AS sale_id, sku, qty, CAST(unit_price AS CHAR) AS unit_price, CAST(line_total AS CHAR) AS line_total FROM ${q(tdb)}.sale_lines ORDER BY line_id`,
  );
  if (clients.size !== customers.length)
    out.push(`key map of clients has ${clients.size} entries for ${customers.length} customers`);
  if (tClients.size !== customers.length)
    out.push(`${tClients.size} clients for ${customers.length} customers`);
  for (const c of customers) {
    const t = tClients.get(clients.get(c.id!) ?? "");
    if (!t) out.push(`customer ${c.id}: no client`);
    else if (t.full_name !== c.full_name || t.email !== c.email || t.since !== c.since)
      out.push(`customer ${c.id}: client ${JSON.stringify(t)} != ${JSON.stringify(c)}`);
  }
  if (sales.size !== orders.length)
    out.push(`key map of sales has ${sales.size} entries for ${orders.length} orders`);
  if (tSales.size !== orders.length) out.push(`${tSales.size} sales for ${orders.length} orders`);
  for (const o of orders) {
    const t = tSales.get(sales.get(o.id!) ?? "");
    if (!t) out.push(`order ${o.id}: no sale`);
    else if (t.client_id !== clients.get(o.customer_id!) || t.placed !== o.placed || t.amount !== o.amount)
      out.push(
        `order ${o.id}: sale ${JSON.stringify(t)} != ${JSON.stringify(o)} (client ${clients.get(o.customer_id!)})`,
      );
  }
  if (tLines.length !== items.length)
    out.push(`${tLines.length} sale lines for ${items.length} items with qty > 0`);
  const lines = new Map(tLines.map((l) => [String(l.id), l]));
  for (const i of items) {
    const l = lines.get(String(i.id));
    const want = { ...i, sale_id: sales.get(i.order_id!) };
    if (!l) out.push(`item ${i.id}: no sale line`);
    else if (
      l.sale_id !== want.sale_id ||
      l.sku !== i.sku ||
      String(l.qty) !== String(i.qty) ||
      l.unit_price !== i.unit_price ||
      l.line_total !== i.line_total
    )
      out.push(`item ${i.id}: line ${JSON.stringify(l)} != ${JSON.stringify(want)}`);
  }
  return out.slice(0, 20);
}
