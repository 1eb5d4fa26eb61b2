/**
 * The statements of a verify, built the same way for the source and the target side, so that the
 * two servers compute the same text of the same row. Pure: tested without a server.
 */

import type { TableRef } from "@dfs/codec";
import { quoteId, quoteTable } from "@dfs/mysql";

/**
 * How a column's value becomes text for the row hash: `plain` as the server prints it (numbers,
 * temporals, bytes), `binary` a string's bytes in its own charset (the same charset on both
 * sides; also keeps CONCAT_WS from mixing collations), `utf8` a string converted to utf8mb4 first
 * (the two sides' charsets differ).
 */
export type TextForm = "plain" | "binary" | "utf8";

/** One column of a side's row hash, in the order both sides use. */
export interface HashColumn {
  name: string;
  form: TextForm;
}

/** One side of a compared table: its table, key columns and hashed columns (aligned with the other side). */
export interface Side {
  ref: TableRef;
  /** Key columns, in chunk order. */
  key: string[];
  /** Key columns read as DOUBLE (FLOAT prints 6 digits; as DOUBLE it is exact). */
  floatKeys: ReadonlySet<string>;
  columns: HashColumn[];
}

function textOf(c: HashColumn): string {
  const id = quoteId(c.name);
  if (c.form === "binary") return `CAST(${id} AS BINARY)`;
  if (c.form === "utf8") return `CAST(CONVERT(${id} USING utf8mb4) AS BINARY)`;
  return id;
}

/**
 * The row hash: CRC32 of every column's text joined by '#', with a last field of NULL flags so
 * that NULL and '' (which CONCAT_WS both leave empty) differ, as pt-table-checksum does.
 */
export function rowHash(columns: readonly HashColumn[]): string {
  if (columns.length === 0) return "0";
  const values = columns.map(textOf).join(", ");
  const nulls = columns.map((c) => `ISNULL(${quoteId(c.name)})`).join(", ");
  return `CRC32(CONCAT_WS('#', ${values}, CONCAT(${nulls})))`;
}

/** The key columns as a SELECT list (FLOAT keys as DOUBLE). */
export function keyList(side: Side): string {
  return side.key
    .map((k) => (side.floatKeys.has(k) ? `CAST(${quoteId(k)} AS DOUBLE)` : quoteId(k)))
    .join(", ");
}

/** A condition with its parameters. */
export interface Cond {
  sql: string;
  params: unknown[];
}

/**
 * Keys after `lo` (exclusive) and up to `hi` (inclusive); null = open. Composite keys compare as
 * tuples, spelled `(a > ?) OR (a = ? AND b > ?)`, a form every optimizer turns into an index range.
 */
export function keyRange(
  key: readonly string[],
  lo: readonly unknown[] | null,
  hi: readonly unknown[] | null,
): Cond {
  const parts: string[] = [];
  const params: unknown[] = [];
  const tuple = (bound: readonly unknown[], op: ">" | "<", inclusive: boolean) => {
    const ors: string[] = [];
    for (let i = 0; i < key.length; i++) {
      const ands = key.slice(0, i).map((k) => `${quoteId(k)} = ?`);
      ands.push(`${quoteId(key[i]!)} ${op} ?`);
      ors.push(ands.length > 1 ? `(${ands.join(" AND ")})` : ands[0]!);
      params.push(...bound.slice(0, i + 1));
    }
    if (inclusive) {
      ors.push(
        key.length > 1 ? `(${key.map((k) => `${quoteId(k)} = ?`).join(" AND ")})` : `${quoteId(key[0]!)} = ?`,
      );
      params.push(...bound);
    }
    parts.push(ors.length > 1 ? `(${ors.join(" OR ")})` : ors[0]!);
  };
  if (lo) tuple(lo, ">", false);
  if (hi) tuple(hi, "<", true);
  return { sql: parts.length > 0 ? parts.join(" AND ") : "1=1", params };
}

/** Exactly the rows of `keys` (each a tuple of key values). */
export function keyIn(key: readonly string[], keys: readonly (readonly unknown[])[]): Cond {
  if (keys.length === 0) return { sql: "1=0", params: [] };
  if (key.length === 1)
    return {
      sql: `${quoteId(key[0]!)} IN (${keys.map(() => "?").join(", ")})`,
      params: keys.map((k) => k[0]),
    };
  const one = `(${key.map((k) => `${quoteId(k)} = ?`).join(" AND ")})`;
  return { sql: keys.map(() => one).join(" OR "), params: keys.flat() };
}

/** The key of the `rows`-th row after `lo`: the upper bound of the chunk that starts there. */
export function boundarySql(side: Side, lo: readonly unknown[] | null, rows: number): Cond {
  const range = keyRange(side.key, lo, null);
  const order = side.key.map(quoteId).join(", ");
  return {
    sql: `SELECT ${keyList(side)} FROM ${quoteTable(side.ref)} WHERE ${range.sql} ORDER BY ${order} LIMIT 1 OFFSET ${Math.max(0, Math.floor(rows) - 1)}`,
    params: range.params,
  };
}

/** A chunk's row count and the XOR of its row hashes. */
export function chunkSumSql(side: Side, range: Cond): Cond {
  return {
    sql: `SELECT COUNT(*) AS n, COALESCE(BIT_XOR(${rowHash(side.columns)}), 0) AS x FROM ${quoteTable(side.ref)} WHERE ${range.sql}`,
    params: range.params,
  };
}

/** Each row's key and hash, for the rows of a condition (a chunk's range, or some keys). */
export function rowHashesSql(side: Side, where: Cond): Cond {
  return {
    sql: `SELECT ${keyList(side)}, ${rowHash(side.columns)} FROM ${quoteTable(side.ref)} WHERE ${where.sql}`,
    params: where.params,
  };
}

/** Whole rows (every column listed, FLOAT as DOUBLE) for a condition: what a repair writes. */
export function rowsSql(
  ref: TableRef,
  columns: readonly { name: string; float: boolean }[],
  where: Cond,
): Cond {
  const list = columns
    .map((c) => (c.float ? `CAST(${quoteId(c.name)} AS DOUBLE) AS ${quoteId(c.name)}` : quoteId(c.name)))
    .join(", ");
  return { sql: `SELECT ${list} FROM ${quoteTable(ref)} WHERE ${where.sql}`, params: where.params };
}
