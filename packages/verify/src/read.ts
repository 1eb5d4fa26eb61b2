/**
 * Reads of a verify: values come back as the server's own text (strings) or bytes, never parsed,
 * so keys go back into the next statement exactly and rows are repaired exactly.
 */
import type { Row } from "@dfs/codec";
import type { ColumnInfo, MysqlSession } from "@dfs/mysql";
import type { Cond } from "./sql.js";

const BYTES = new Set([
  "binary",
  "varbinary",
  "tinyblob",
  "blob",
  "mediumblob",
  "longblob",
  "bit",
  "geometry",
  "point",
  "linestring",
  "polygon",
  "multipoint",
  "multilinestring",
  "multipolygon",
  "geometrycollection",
]);

/** Whether a column's values are bytes (kept as Buffers) rather than text. */
export function isBytes(c: Pick<ColumnInfo, "dataType" | "charset">): boolean {
  return BYTES.has(c.dataType) || (c.charset === "binary" && c.dataType !== "json");
}

function rawTypeCast(field: { buffer(): Buffer | null }): Buffer | null {
  return field.buffer();
}

/** Rows as arrays of raw values (bytes or null), in SELECT order. */
export function rawRows(s: MysqlSession, q: Cond): Promise<(Buffer | null)[][]> {
  return s.queryOptions<(Buffer | null)[][]>({
    sql: q.sql,
    values: q.params,
    typeCast: rawTypeCast as never,
    rowsAsArray: true,
  });
}

/** A raw value as a statement parameter or a row value: bytes for byte columns, text otherwise. */
export function rawValue(raw: Buffer | null, bytes: boolean): string | Buffer | null {
  if (raw === null) return null;
  return bytes ? raw : raw.toString("utf8");
}

/** A key tuple as one string, for maps: JSON of text, [hex] for bytes, null (never confused). */
export function keyString(values: readonly unknown[]): string {
  return JSON.stringify(
    values.map((v) =>
      v === null || v === undefined ? null : Buffer.isBuffer(v) ? [v.toString("hex")] : String(v),
    ),
  );
}

/** A key tuple as people read it: { id: "5" }, bytes as 0x hex. */
export function printableKey(
  names: readonly string[],
  values: readonly unknown[],
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  names.forEach((n, i) => {
    const v = values[i];
    out[n] = v === null || v === undefined ? null : Buffer.isBuffer(v) ? `0x${v.toString("hex")}` : String(v);
  });
  return out;
}

/** Rows read whole (rowsSql), as Row objects by column name. */
export async function readRows(s: MysqlSession, q: Cond, columns: readonly ColumnInfo[]): Promise<Row[]> {
  const bytes = columns.map(isBytes);
  return (await rawRows(s, q)).map((r) => {
    const row: Row = {};
    columns.forEach((c, i) => {
      row[c.name] = rawValue(r[i] ?? null, bytes[i]!);
    });
    return row;
  });
}
