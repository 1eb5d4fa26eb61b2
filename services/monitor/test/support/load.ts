// The write load of the fuzz-under-load test: a parent table, a child with a FOREIGN KEY to it and
// a key-value table, and a steady small load on rows a seeded model knows. Not part of the service's API.
import { setTimeout as delay } from "node:timers/promises";
import type { Random } from "@dfs/common";
import type mysql from "mysql2/promise";
import { q } from "./fuzz.js";

/** A source transaction about this often. */
const LOAD_PACE_MS = 30;

/** The source's tables: a parent, a child with a FOREIGN KEY to it (relmgr groups them), and a key-value table. */
export function schemaSql(db: string): string {
  return [
    `CREATE DATABASE ${q(db)}`,
    `CREATE TABLE ${q(db)}.acct (id INT PRIMARY KEY, c INT NOT NULL, name VARCHAR(40) CHARACTER SET utf8mb4, amount DECIMAL(12,2), ts DATETIME(6), payload VARBINARY(64))`,
    `CREATE TABLE ${q(db)}.line (id INT PRIMARY KEY, acct_id INT NOT NULL, qty INT, note TEXT, FOREIGN KEY (acct_id) REFERENCES ${q(db)}.acct (id))`,
    `CREATE TABLE ${q(db)}.kv (k VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY, v VARCHAR(200) CHARACTER SET utf8mb4, n BIGINT)`,
  ].join(";\n");
}

/**
 * A steady small write load: one transaction of 1 to 3 statements every LOAD_PACE_MS, on rows a
 * seeded model knows (inserts, updates, deletes of parents with their children first, upserts).
 */
export function startLoad(conn: mysql.Connection, db: string, r: Random) {
  const accts = new Map<number, number[]>();
  const kv = new Set<string>();
  let next = 1;
  let running = true;
  let txns = 0;
  const text = () =>
    r.pick(["", "plain", "ünïcödé", "emoji 🙂", "quote ' \" \\", r.bytes(8).toString("hex")]);
  const step = async () => {
    const ids = [...accts.keys()];
    const op = ids.length < 5 ? 0 : r.int(7);
    const id = ids.length > 0 ? r.pick(ids) : 0;
    if (op === 0) {
      const a = next++;
      accts.set(a, []);
      await conn.query(`INSERT INTO ${q(db)}.acct VALUES (?, 0, ?, ?, ?, ?)`, [
        a,
        r.chance(0.2) ? null : text(),
        (r.int(10_000_000) / 100).toFixed(2),
        `2024-0${1 + r.int(9)}-1${r.int(10)} 12:34:56.${String(r.int(999_999)).padStart(6, "0")}`,
        r.chance(0.3) ? null : r.bytes(r.int(64)),
      ]);
    } else if (op === 1)
      await conn.query(`UPDATE ${q(db)}.acct SET c = c + 1, name = ? WHERE id = ?`, [text(), id]);
    else if (op === 2) {
      const l = next++;
      accts.get(id)!.push(l);
      await conn.query(`INSERT INTO ${q(db)}.line VALUES (?, ?, ?, ?)`, [
        l,
        id,
        r.int(100),
        r.chance(0.3) ? null : text(),
      ]);
    } else if (op === 3 && accts.get(id)!.length > 0)
      await conn.query(`UPDATE ${q(db)}.line SET qty = qty + 1 WHERE id = ?`, [r.pick(accts.get(id)!)]);
    else if (op === 4) {
      // A parent and its children, children first (the FOREIGN KEY has no cascade).
      await conn.query(`DELETE FROM ${q(db)}.line WHERE acct_id = ?`, [id]);
      await conn.query(`DELETE FROM ${q(db)}.acct WHERE id = ?`, [id]);
      accts.delete(id);
    } else if (op === 5 || kv.size === 0) {
      const k = `k${r.int(50)}${r.pick(["", "é", "É"])}`;
      kv.add(k);
      await conn.query(
        `INSERT INTO ${q(db)}.kv VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v), n = n + 1`,
        [k, text(), r.int(1_000_000)],
      );
    } else {
      const k = r.pick([...kv]);
      kv.delete(k);
      await conn.query(`DELETE FROM ${q(db)}.kv WHERE k = ?`, [k]);
    }
  };
  const loop = (async () => {
    while (running) {
      await conn.beginTransaction();
      for (let n = 1 + r.int(3); n > 0; n--) await step();
      await conn.commit();
      txns++;
      await delay(LOAD_PACE_MS); // pacing: a steady rate, not a wait for a condition
    }
  })();
  loop.catch(() => {});
  return {
    txns: () => txns,
    stop: async () => {
      running = false;
      await loop;
      return txns;
    },
  };
}
