// Shared helpers of the DPU convergence and failure tests (converge, dpu-crash, target-down): the
// schema, a seeded mixed load and per-table checksums. Not part of the service's API.
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "@dfs/common";
import type mysql from "mysql2/promise";
import { targetConnection } from "./pipeline.js";

/** A PK table with a counter, a composite-PK table, a unique-key-only table and a utf8mb4_bin PK. */
export const TABLES = ["acct", "line", "tagged", "kv"] as const;
export type TableName = (typeof TABLES)[number];

export function schemaSql(db: string): string {
  return [
    `CREATE DATABASE \`${db}\``,
    `CREATE TABLE \`${db}\`.acct (id INT PRIMARY KEY, c INT NOT NULL DEFAULT 0, name VARCHAR(40) CHARACTER SET utf8mb4, amount DECIMAL(12,2), ts DATETIME(6), flag TINYINT(1) NOT NULL DEFAULT 0)`,
    `CREATE TABLE \`${db}\`.line (order_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, price DOUBLE, note TEXT, PRIMARY KEY (order_id, line_no))`,
    `CREATE TABLE \`${db}\`.tagged (code VARCHAR(32) NOT NULL, val BIGINT, payload VARBINARY(64), UNIQUE KEY uk_code (code))`,
    `CREATE TABLE \`${db}\`.kv (k VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY, v VARCHAR(200) CHARACTER SET utf8mb4, c INT NOT NULL, d DATE)`,
  ].join(";\n");
}

export interface Queryable {
  query(sql: string, params?: unknown): Promise<[unknown, unknown]>;
}

export { targetConnection };

/** A target connection that reconnects on the next query after an error (the target may restart). */
export class ReconnectingTarget implements Queryable {
  private conn: mysql.Connection | null = null;
  async query(sql: string, params?: unknown): Promise<[unknown, unknown]> {
    try {
      if (!this.conn) {
        this.conn = await targetConnection();
        this.conn.on("error", () => {}); // a lost connection is replaced on the next query
      }
      return (await this.conn.query(sql, params as unknown[])) as [unknown, unknown];
    } catch (err) {
      this.conn?.destroy();
      this.conn = null;
      throw err;
    }
  }
  async end(): Promise<void> {
    await this.conn?.end().catch(() => {});
    this.conn = null;
  }
}

/**
 * One table's checksum covering every column exactly: row count, SUM of CRC32 and BIT_XOR of 64
 * bits of MD5 over the row as text (each column as HEX of its binary text form, NULL as 'N').
 */
export async function tableChecksum(conn: Queryable, db: string, table: string): Promise<string> {
  const [cols] = await conn.query(
    "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    [db, table],
  );
  const names = (cols as { c: string }[]).map((r) => r.c);
  if (names.length === 0) return "<missing>";
  const row = `CONCAT_WS('|', ${names.map((c) => `COALESCE(HEX(CAST(\`${c}\` AS BINARY)), 'N')`).join(", ")})`;
  const [rows] = await conn.query(
    `SELECT COUNT(*) AS n, COALESCE(SUM(CRC32(${row})), 0) AS s, COALESCE(BIT_XOR(CONV(LEFT(MD5(${row}), 16), 16, 10)), 0) AS x FROM \`${db}\`.\`${table}\``,
  );
  const r = (rows as { n: string; s: string; x: string }[])[0]!;
  return `${names.join(",")} n=${r.n} crc=${r.s} md5x=${r.x}`;
}

export async function checksums(conn: Queryable, db: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) out[t] = await tableChecksum(conn, db, t);
  return out;
}

/**
 * Polls until every table of the target equals the source by checksum; on timeout asserts per
 * table (so the failure names the tables that differ). Returns how long it took.
 */
export async function waitConverged(
  src: Queryable,
  srcDb: string,
  dst: Queryable,
  dstDb: string,
  timeoutMs: number,
  diag: () => string = () => "",
): Promise<{ ms: number; sums: Record<string, string> }> {
  const start = Date.now();
  let want: Record<string, string> = {};
  let got: Record<string, string> = {};
  try {
    await waitFor(
      async () => {
        want = await checksums(src, srcDb);
        got = await checksums(dst, dstDb);
        return TABLES.every((t) => want[t] === got[t]);
      },
      { timeoutMs, intervalMs: 1000, what: `${dstDb} to equal ${srcDb} by per-table checksums` },
    );
  } catch (err) {
    const differ = TABLES.filter((t) => want[t] !== got[t]).map(
      (t) => `${t}: source ${want[t]} / target ${got[t]}`,
    );
    throw new Error(`${(err as Error).message}\n${differ.join("\n")}\n${diag()}`);
  }
  return { ms: Date.now() - start, sums: want };
}

/** Rows of acct whose c (or presence) differs between source and target: proves no double or lost apply. */
export async function counterDiffs(src: Queryable, srcDb: string, dst: Queryable, dstDb: string) {
  const read = async (conn: Queryable, db: string) => {
    const [rows] = await conn.query(`SELECT id, c FROM \`${db}\`.acct`);
    return new Map((rows as { id: number; c: number }[]).map((r) => [Number(r.id), Number(r.c)]));
  };
  const a = await read(src, srcDb);
  const b = await read(dst, dstDb);
  const diffs: string[] = [];
  for (const [id, c] of a) if (b.get(id) !== c) diffs.push(`id ${id}: source c=${c}, target c=${b.get(id)}`);
  for (const id of b.keys()) if (!a.has(id)) diffs.push(`id ${id}: only in the target`);
  return { rows: a.size, diffs, maxC: Math.max(0, ...a.values()) };
}

export async function readCheckpoint(conn: Queryable, consumer: string): Promise<number> {
  const [rows] = await conn.query("SELECT stream_seq AS s FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [
    consumer,
  ]);
  return Number((rows as { s: string }[])[0]?.s ?? 0);
}

// --- the load: a seeded model of the source's keys, so every statement touches known rows ---

export type Rand = () => number;

/** mulberry32: a small seeded generator, so a failing run can be repeated with its seed. */
export function seededRandom(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Live keys of one table: O(1) add, remove and random pick. */
class Pool<K> {
  private items: K[] = [];
  private index = new Map<string, number>();
  /** While a transaction runs: how to take back each change to the pool, should it roll back. */
  undo: (() => void)[] | null = null;
  constructor(private readonly keyOf: (k: K) => string) {}
  get size(): number {
    return this.items.length;
  }
  add(k: K): void {
    this.undo?.push(() => this.remove(k));
    this.index.set(this.keyOf(k), this.items.length);
    this.items.push(k);
  }
  remove(k: K): void {
    const s = this.keyOf(k);
    const i = this.index.get(s);
    if (i === undefined) throw new Error(`load model: ${s} is not live`);
    this.undo?.push(() => this.add(k));
    const last = this.items.pop()!;
    this.index.delete(s);
    if (i < this.items.length) {
      this.items[i] = last;
      this.index.set(this.keyOf(last), i);
    }
  }
  /** n distinct live keys (a random window of the pool). */
  pick(r: Rand, n: number): K[] {
    const start = Math.floor(r() * this.items.length);
    const out: K[] = [];
    for (let i = 0; i < Math.min(n, this.items.length); i++)
      out.push(this.items[(start + i) % this.items.length]!);
    return out;
  }
}

type LineKey = [number, number];
const WORDS = "alpha|βeta|gämma|δέλτα|日本語|emoji 🎉||tab\there|quote'\"|back\\slash".split("|");

/**
 * Mixed inserts, updates (values, counters `c = c + 1`, primary/unique key changes, key swaps,
 * reuse of a key deleted in the same transaction) and deletes over the four tables, in
 * transactions of 1 to `maxTxn` row changes touching one, two or all tables.
 */
export class LoadGen {
  changes = 0;
  txns = 0;
  /** Transactions the source rolled back (deadlock, lock wait timeout) and the model with them. */
  rolledBack = 0;
  private nextId: number;
  private nextOrder: number;
  private readonly acct = new Pool<number>(String);
  private readonly line = new Pool<LineKey>((k) => `${k[0]}:${k[1]}`);
  private readonly tagged = new Pool<string>((k) => k);
  private readonly kv = new Pool<string>((k) => k);
  constructor(
    private readonly conn: Queryable,
    private readonly db: string,
    readonly r: Rand,
    /** Above this many rows a table shrinks: a small table gets each row updated more often. */
    private readonly maxRows = 12_000,
    /** First key made: several generators on one database each take their own range of keys. */
    firstId = 1,
  ) {
    this.nextId = firstId;
    this.nextOrder = firstId;
  }

  /** The rows `bump` keeps incrementing (never deleted or re-keyed). */
  hotIds(): readonly number[] {
    return this.hot;
  }

  private q(t: string): string {
    return `\`${this.db}\`.${t}`;
  }
  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  private text(): string | null {
    return this.r() < 0.1 ? null : `${WORDS[this.int(0, WORDS.length - 1)]} ${this.int(0, 1e6)}`;
  }
  private fresh(): number {
    return this.nextId++;
  }

  /** Size of the next transaction: mostly small, some up to maxTxn. */
  size(maxTxn: number): number {
    const u = this.r();
    if (u < 0.4) return this.int(1, Math.min(10, maxTxn));
    if (u < 0.8) return this.int(1, Math.min(200, maxTxn));
    return this.int(1, maxTxn);
  }

  async transaction(size: number): Promise<void> {
    const u = this.r();
    const tables: TableName[] =
      u < 0.6 ? [TABLES[this.int(0, 3)]!] : u < 0.85 ? ["acct", "line"] : [...TABLES];
    const pools = [this.acct, this.line, this.tagged, this.kv] as Pool<unknown>[];
    const undo: (() => void)[] = [];
    for (const p of pools) p.undo = undo;
    await this.conn.query("BEGIN");
    try {
      let left = size;
      while (left > 0) left -= await this.op(tables[this.int(0, tables.length - 1)]!, left);
      await this.conn.query("COMMIT");
    } catch (err) {
      await this.conn.query("ROLLBACK").catch(() => {});
      for (const p of pools) p.undo = null;
      // Several generators on one database may deadlock: the server rolled the whole transaction
      // back, so the model takes back its changes too and the load goes on.
      const errno = (err as { errno?: number }).errno;
      if (errno === 1213 || errno === 1205) {
        for (const f of undo.reverse()) f();
        this.rolledBack++;
        return;
      }
      throw err; // the model no longer matches the source: the test fails here
    }
    for (const p of pools) p.undo = null;
    this.changes += size;
    this.txns++;
  }

  /** One statement or a few; returns the row changes made (1..left). */
  private async op(t: TableName, left: number): Promise<number> {
    const pool = this[t] as Pool<unknown>;
    const n = Math.max(1, Math.min(left, 1 + Math.floor(this.r() ** 2 * 200)));
    const u = this.r();
    if (pool.size < 20 || u < (pool.size > this.maxRows ? 0.2 : 0.38)) return this.insert(t, n);
    if (u < 0.55) return this.update(t, pool.pick(this.r, n));
    if (u < 0.75)
      return t === "acct" ? this.bump(this.acct.pick(this.r, n)) : this.update(t, pool.pick(this.r, n));
    if (u < 0.82 && left >= 3) return this.keyMoves(t);
    return this.remove(t, pool.pick(this.r, Math.min(n, Math.floor(pool.size / 3))));
  }

  private async insert(t: TableName, n: number): Promise<number> {
    const rows: unknown[][] = [];
    const nullOr = <T>(p: number, v: T): T | null => (this.r() < p ? null : v);
    for (let i = 1; i <= n; i++) {
      if (t === "acct") {
        const id = this.fresh();
        this.acct.add(id);
        const ts = new Date(Date.UTC(2020, 0, 1) + this.int(0, 1e12)).toISOString().slice(0, 23);
        const amount = this.int(-1e6, 1e6) / 100;
        rows.push([id, this.int(0, 3), this.text(), amount, ts.replace("T", " "), this.int(0, 1)]);
      } else if (t === "line") {
        const order = i === 1 ? this.nextOrder++ : this.nextOrder - 1; // one new order of n lines
        this.line.add([order, i]);
        const price = nullOr(0.1, this.r() * 1000);
        rows.push([order, i, `sku-${this.int(1, 9999)}`, this.int(1, 50), price, this.text()]);
      } else if (t === "tagged") {
        const code = `c${this.fresh().toString(36)}`;
        this.tagged.add(code);
        rows.push([code, nullOr(0.1, this.int(-1e9, 1e9)), Buffer.from([0, this.int(0, 255), 10, 39, 92])]);
      } else {
        const k = `${["k", "К", "ǩ", "🔑"][this.int(0, 3)]}-${this.fresh()}`;
        this.kv.add(k);
        const d = `20${this.int(10, 29)}-0${this.int(1, 9)}-1${this.int(0, 9)}`;
        rows.push([k, this.text(), 0, nullOr(0.2, d)]);
      }
    }
    const cols = {
      acct: "id, c, name, amount, ts, flag",
      line: "order_id, line_no, sku, qty, price, note",
      tagged: "code, val, payload",
      kv: "k, v, c, d",
    }[t];
    await this.conn.query(`INSERT INTO ${this.q(t)} (${cols}) VALUES ?`, [rows]);
    return n;
  }

  private async update(t: TableName, keys: unknown[]): Promise<number> {
    const sql = {
      acct: "UPDATE %t SET c = c + 1, name = ?, amount = amount + 0.01 WHERE id IN (?)",
      line: "UPDATE %t SET qty = qty + 1, note = ?, price = price * 1.5 WHERE (order_id, line_no) IN (?)",
      tagged: "UPDATE %t SET val = COALESCE(val + 1, 0), payload = ? WHERE code IN (?)",
      kv: "UPDATE %t SET c = c + 1, v = ? WHERE k IN (?)",
    }[t].replace("%t", this.q(t));
    const value = t === "tagged" ? Buffer.from(this.text() ?? "") : this.text();
    await this.conn.query(sql, [value, keys]);
    return keys.length;
  }

  /** Rows of acct never deleted or re-keyed: `bump` increments them over and over. */
  private hot: number[] = [];
  async createHot(count: number): Promise<void> {
    const rows: number[][] = [];
    for (let i = 0; i < count; i++) {
      const id = this.fresh();
      this.hot.push(id);
      rows.push([id, 0]);
    }
    await this.conn.query(`INSERT INTO ${this.q("acct")} (id, c) VALUES ?`, [rows]);
    this.changes += count;
    this.txns++;
  }

  /** The counter alone: `UPDATE acct SET c = c + 1 WHERE ...`, part of the rows hot ones. */
  private async bump(ids: number[]): Promise<number> {
    const h = Math.min(this.hot.length, Math.ceil(ids.length / 2));
    const start = this.int(0, this.hot.length);
    const hot = Array.from({ length: h }, (_, i) => this.hot[(start + i) % this.hot.length]!);
    const all = [...ids.slice(0, ids.length - h), ...hot];
    await this.conn.query(`UPDATE ${this.q("acct")} SET c = c + 1 WHERE id IN (?)`, [all]);
    return all.length;
  }

  /** Three key changes: a key moved to a fresh key, a swap of two keys, or a deleted key reused. */
  private async keyMoves(t: TableName): Promise<number> {
    const kind = this.int(0, 2);
    if (t === "line") {
      const [a, b] = this.line.pick(this.r, 2) as [LineKey, LineKey];
      if (!b || kind === 0) {
        const to: LineKey = [a[0], 1_000_000 + this.fresh()];
        await this.conn.query(`UPDATE ${this.q("line")} SET line_no = ? WHERE order_id = ? AND line_no = ?`, [
          to[1],
          a[0],
          a[1],
        ]);
        this.line.remove(a);
        this.line.add(to);
        return 1;
      }
      // Delete a, move b onto a's key (order_id and line_no both change).
      await this.conn.query(`DELETE FROM ${this.q("line")} WHERE order_id = ? AND line_no = ?`, a);
      await this.conn.query(
        `UPDATE ${this.q("line")} SET order_id = ?, line_no = ? WHERE order_id = ? AND line_no = ?`,
        [...a, ...b],
      );
      this.line.remove(b);
      return 2;
    }
    const col = { acct: "id", tagged: "code", kv: "k" }[t];
    const pool = this[t] as Pool<number | string>;
    const [a, b] = pool.pick(this.r, 2);
    // The same shapes as inserted keys, from the same counter: never equal to another key.
    const freshKey = (): number | string =>
      t === "acct" ? this.fresh() : t === "kv" ? `k-${this.fresh()}` : `c${this.fresh().toString(36)}`;
    const move = (from: unknown, to: unknown) =>
      this.conn.query(`UPDATE ${this.q(t)} SET ${col} = ? WHERE ${col} = ?`, [to, from]);
    if (b === undefined || kind === 0) {
      const to = freshKey();
      await move(a, to);
      pool.remove(a!);
      pool.add(to);
      return 1;
    }
    if (kind === 1) {
      const tmp = freshKey(); // swap a and b through a temporary key
      await move(a, tmp);
      await move(b, a);
      await move(tmp, b);
      return 3;
    }
    await this.conn.query(`DELETE FROM ${this.q(t)} WHERE ${col} = ?`, [a]); // b takes a's key
    await move(b, a);
    pool.remove(b);
    return 2;
  }

  private async remove(t: TableName, keys: unknown[]): Promise<number> {
    if (keys.length === 0) return this.insert(t, 1);
    const where = {
      acct: "id IN (?)",
      line: "(order_id, line_no) IN (?)",
      tagged: "code IN (?)",
      kv: "k IN (?)",
    }[t];
    await this.conn.query(`DELETE FROM ${this.q(t)} WHERE ${where}`, [keys]);
    for (const k of keys) (this[t] as Pool<unknown>).remove(k);
    return keys.length;
  }
}

/** Runs `changes` row changes; with durationMs, paced evenly over that time. */
export async function runLoad(
  gen: LoadGen,
  opts: { changes: number; maxTxn: number; durationMs?: number },
): Promise<void> {
  const start = Date.now();
  while (gen.changes < opts.changes) {
    if (opts.durationMs) {
      const due = start + (gen.changes / opts.changes) * opts.durationMs - Date.now();
      if (due > 0) await delay(due); // pacing the writer, not waiting for a condition
    }
    await gen.transaction(Math.min(gen.size(opts.maxTxn), opts.changes - gen.changes));
  }
}

/** A seed from the environment (DFS_TEST_SEED, to repeat a run) or a random one. */
export function testSeed(): number {
  return Number(process.env.DFS_TEST_SEED) || Math.floor(Math.random() * 2 ** 31);
}
