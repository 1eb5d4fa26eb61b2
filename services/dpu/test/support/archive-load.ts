// The archive test's source tables and load: several tables (one without a key, one with a
// composite key) and the types that must round-trip exactly. Not part of the service's API.
import type { Connection } from "mysql2/promise";
import type { Rand } from "./failure.js";

export const q = (name: string): string => `\`${name.replace(/`/g, "``")}\``;

export const TABLES = ["t_types", "t_orders", "t_keyless", "t_comp", "t_marker"] as const;

export function archiveSchemaSql(db: string): string {
  const d = q(db);
  return `
CREATE TABLE ${d}.t_types (
  id BIGINT UNSIGNED PRIMARY KEY, u BIGINT UNSIGNED NULL, i BIGINT NULL, d DECIMAL(65,30) NULL,
  dt DATETIME(6) NULL, ts TIMESTAMP(6) NULL DEFAULT NULL, j JSON NULL, b BLOB NULL,
  s VARCHAR(100) CHARACTER SET utf8mb4 NULL, l VARCHAR(50) CHARACTER SET latin1 NULL, f DOUBLE NULL,
  e ENUM('a','b,c','d''q') NULL, bits BIT(12) NULL, tm TIME(6) NULL);
CREATE TABLE ${d}.t_orders (id INT AUTO_INCREMENT PRIMARY KEY, cust INT NOT NULL, amount DECIMAL(12,2) NOT NULL, note TEXT NULL);
CREATE TABLE ${d}.t_keyless (a INT NULL, b VARCHAR(20) NULL);
CREATE TABLE ${d}.t_comp (region CHAR(2) NOT NULL, n INT NOT NULL, val BIGINT NULL, PRIMARY KEY (region, n));
CREATE TABLE ${d}.t_marker (id INT PRIMARY KEY, note VARCHAR(50) NOT NULL);`;
}

const DECIMALS = [
  "99999999999999999999999999999999999.999999999999999999999999999999",
  "-12345678901234567890123456789012345.123456789012345678901234567890",
  "0.000000000000000000000000000001",
  "0",
];
const DATES = ["2024-02-29 23:59:59.999999", "1000-01-01 00:00:00.000000", "9999-12-31 23:59:59.000001"];
const JSONS = ['{"a": [1, 2, {"b": "x\\"y"}], "n": null}', "[]", '"text"', '{"big": 18446744073709551615}'];

/**
 * Writes row changes in transactions of a few statements until `changes` rows are touched, keeping
 * track of the rows that exist so updates and deletes find some. Returns the rows touched.
 */
export class ArchiveLoad {
  private nextId = 1;
  private readonly types: number[] = [];
  private orders = 0;
  private readonly comps: [string, number][] = [];
  private keyless = 0;

  constructor(
    private readonly conn: Connection,
    private readonly db: string,
    private readonly rand: Rand,
  ) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  private typeRow(id: number): unknown[] {
    const r = this.rand;
    const maybe = <T>(v: T) => (r() < 0.15 ? null : v);
    const bytes = Buffer.alloc(Math.floor(r() * 40));
    for (let k = 0; k < bytes.length; k++) bytes[k] = Math.floor(r() * 256);
    return [
      id,
      maybe(r() < 0.3 ? "18446744073709551615" : String(Math.floor(r() * 1e15))),
      maybe(r() < 0.2 ? "-9223372036854775808" : String(Math.floor(r() * 1e6) - 5e5)),
      maybe(this.pick(DECIMALS)),
      maybe(this.pick(DATES)),
      maybe("2038-01-19 03:14:07.499999"),
      maybe(this.pick(JSONS)),
      maybe(bytes),
      maybe(`é ☃ 𝄞 ${Math.floor(r() * 1000)} '\\`),
      maybe("café"),
      maybe(r() * 1e10 - 5e9),
      maybe(this.pick(["a", "b,c", "d'q"])),
      maybe(Math.floor(r() * 4096)),
      maybe(r() < 0.5 ? "-838:59:59.000000" : "12:34:56.000001"),
    ];
  }

  /** One source transaction of 1..4 statements; returns the rows it changed. */
  async transaction(): Promise<number> {
    const c = this.conn;
    const d = q(this.db);
    let rows = 0;
    await c.query("BEGIN");
    const statements = 1 + Math.floor(this.rand() * 4);
    for (let s = 0; s < statements; s++) {
      const x = this.rand();
      let res: unknown;
      if (x < 0.3 || this.types.length < 20) {
        const n = 1 + Math.floor(this.rand() * 10);
        const vals: unknown[] = [];
        for (let k = 0; k < n; k++) {
          this.types.push(this.nextId);
          vals.push(...this.typeRow(this.nextId++));
        }
        [res] = await c.query(
          `INSERT INTO ${d}.t_types (id,u,i,d,dt,ts,j,b,s,l,f,e,bits,tm) VALUES ${Array(n).fill("(?,?,?,?,?,?,?,?,?,?,?,?,?,?)").join(",")}`,
          vals,
        );
      } else if (x < 0.5) {
        const id = this.pick(this.types);
        const v = this.typeRow(id).slice(1);
        [res] = await c.query(
          `UPDATE ${d}.t_types SET u=?,i=?,d=?,dt=?,ts=?,j=?,b=?,s=?,l=?,f=?,e=?,bits=?,tm=? WHERE id = ?`,
          [...v, id],
        );
      } else if (x < 0.58) {
        const k = Math.floor(this.rand() * this.types.length);
        const [id] = this.types.splice(k, 1);
        [res] = await c.query(`DELETE FROM ${d}.t_types WHERE id = ?`, [id]);
      } else if (x < 0.72) {
        const n = 1 + Math.floor(this.rand() * 20);
        const vals = Array.from({ length: n }, () => [
          Math.floor(this.rand() * 100),
          (this.rand() * 1e6).toFixed(2),
          this.rand() < 0.5 ? null : "note",
        ]);
        [res] = await c.query(`INSERT INTO ${d}.t_orders (cust, amount, note) VALUES ?`, [vals]);
        this.orders += n;
      } else if (x < 0.8 && this.orders > 0) {
        [res] = await c.query(`UPDATE ${d}.t_orders SET amount = amount + 1.01 WHERE cust = ?`, [
          Math.floor(this.rand() * 100),
        ]);
      } else if (x < 0.84) {
        [res] = await c.query(`DELETE FROM ${d}.t_orders WHERE cust = ? LIMIT 3`, [
          Math.floor(this.rand() * 100),
        ]);
      } else if (x < 0.9) {
        const n = 1 + Math.floor(this.rand() * 5);
        const vals = Array.from({ length: n }, () => [
          Math.floor(this.rand() * 5),
          this.rand() < 0.2 ? null : "twin",
        ]);
        [res] = await c.query(`INSERT INTO ${d}.t_keyless (a, b) VALUES ?`, [vals]);
        this.keyless += n;
      } else if (x < 0.93 && this.keyless > 0) {
        [res] = await c.query(`UPDATE ${d}.t_keyless SET b = ? WHERE a = ? LIMIT 2`, [
          `v${Math.floor(this.rand() * 9)}`,
          Math.floor(this.rand() * 5),
        ]);
      } else if (x < 0.95 && this.keyless > 0) {
        [res] = await c.query(`DELETE FROM ${d}.t_keyless WHERE a = ? LIMIT 1`, [
          Math.floor(this.rand() * 5),
        ]);
      } else if (x < 0.98 || this.comps.length === 0) {
        const key: [string, number] = [this.pick(["eu", "us", "ap"]), this.nextId++];
        this.comps.push(key);
        [res] = await c.query(`INSERT INTO ${d}.t_comp VALUES (?, ?, ?)`, [...key, "-9223372036854775807"]);
      } else {
        // An update that moves the primary key.
        const k = Math.floor(this.rand() * this.comps.length);
        const old = this.comps[k]!;
        const moved: [string, number] = [old[0], this.nextId++];
        this.comps[k] = moved;
        [res] = await c.query(`UPDATE ${d}.t_comp SET n = ?, val = val + 1 WHERE region = ? AND n = ?`, [
          moved[1],
          ...old,
        ]);
      }
      rows += (res as { affectedRows?: number }).affectedRows ?? 0;
    }
    await c.query("COMMIT");
    return rows;
  }
}
