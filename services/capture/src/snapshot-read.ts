import { formatTableRef, type TableRef, ValueKind } from "@dfs/codec";
import { DataError, ErrorCode } from "@dfs/common";
import type { TableFilter } from "@dfs/config";
import { describeTable, type MysqlSession, quoteId, quoteTable } from "@dfs/mysql";
import { type TableInfo, type TableMapEvent, tableInfoFromMap } from "./tables.js";

/** Binlog type code of each INFORMATION_SCHEMA data type, so kinds match the binlog path. */
const TYPE_CODE: Record<string, number> = {
  tinyint: 1,
  smallint: 2,
  mediumint: 9,
  int: 3,
  integer: 3,
  bigint: 8,
  year: 13,
  float: 4,
  double: 5,
  real: 5,
  decimal: 246,
  numeric: 246,
  date: 10,
  time: 19,
  datetime: 18,
  timestamp: 17,
  json: 245,
  bit: 16,
  enum: 247,
  set: 248,
  char: 254,
  binary: 254,
  varchar: 15,
  varbinary: 15,
};
const GEOMETRY = new Set([
  "geometry",
  "point",
  "linestring",
  "polygon",
  "multipoint",
  "multilinestring",
  "multipolygon",
  "geometrycollection",
]);

/** A table as a snapshot reads it. */
export interface SnapshotTable {
  info: TableInfo;
  /** Columns that order and page the chunks: the table's identity key (primary, else unique NOT NULL). */
  chunkKey: string[];
  /** The server's estimate of the row count (for progress only). */
  estimatedRows: number;
  /** SELECT list: every column as the binlog path would decode it (FLOAT read exactly). */
  selectList: string;
}

/**
 * Describes a table for a snapshot (the adapter's key discovery), through the same function as the
 * binlog path (tableInfoFromMap), so rows get the same kinds and column set.
 */
export async function describeSnapshotTable(
  conn: MysqlSession,
  ref: TableRef,
  filter: TableFilter,
  subjectFor: (db: string, table: string) => string,
): Promise<SnapshotTable> {
  const d = await describeTable(conn, ref);
  if (!d) throw new DataError(ErrorCode.OBJECT_MISSING, `table ${formatTableRef(ref)} does not exist`);
  const names = d.columns.map((c) => c.name);
  const ev: TableMapEvent = {
    tableId: 0,
    schemaName: ref.db,
    tableName: ref.table,
    primaryKey: d.primaryKey.map((c) => names.indexOf(c)),
    tableMap: {
      0: {
        columnSchemas: d.columns.map((c) => ({
          COLUMN_NAME: c.name,
          COLUMN_TYPE: c.columnType,
          UNSIGNED: /\bunsigned\b/.test(c.columnType),
          CHARACTER_SET_NAME: c.charset,
        })),
        columns: d.columns.map((c) => ({
          name: c.name,
          charset: c.charset,
          type: GEOMETRY.has(c.dataType) ? 255 : (TYPE_CODE[c.dataType] ?? 252),
        })),
      },
    },
  };
  const info = tableInfoFromMap(ev, filter, subjectFor);
  const selectList = info.keys
    .map((k) => {
      const c = d.columns.find((x) => x.name === k)!;
      // FLOAT prints with 6 digits; as DOUBLE it is exact, and float32 of that is the stored value.
      return c.dataType === "float" ? `CAST(${quoteId(k)} AS DOUBLE) AS ${quoteId(k)}` : quoteId(k);
    })
    .join(", ");
  return { info, chunkKey: d.identity.columns, estimatedRows: d.estimatedRows, selectList };
}

/** mysql2 hands every column over as its raw text-protocol bytes (no parsing, no rounding). */
function rawTypeCast(field: { buffer(): Buffer | null }): Buffer | null {
  return field.buffer();
}

/**
 * A raw text-protocol value as the binlog decoder gives the same column: bytes for binary data,
 * strings for text (sent as utf8mb4 whatever the column's charset), and the server's own text
 * for numbers, decimals and temporals (the encoder reads exact integers and floats from it).
 */
function toBinlogValue(raw: Buffer | null, kind: ValueKind, binary: boolean): unknown {
  if (raw === null) return null;
  if (kind === ValueKind.Bytes || (kind === ValueKind.Text && binary)) return raw;
  return raw.toString("utf8");
}

/**
 * Reads one chunk: up to `limit` rows after `after` (the chunk key's values), in key order.
 * Returns the rows as binlog-shaped objects and the key of the last one.
 */
export async function readChunk(
  conn: MysqlSession,
  t: SnapshotTable,
  after: unknown[] | null,
  limit: number,
): Promise<{ rows: Record<string, unknown>[]; last: unknown[] | null }> {
  const { info, chunkKey } = t;
  const order = chunkKey.map(quoteId).join(", ");
  let where = "";
  const params: unknown[] = [];
  if (after) {
    // (a > ?) OR (a = ? AND b > ?) ...: a form every optimizer turns into an index range.
    const ors: string[] = [];
    for (let i = 0; i < chunkKey.length; i++) {
      const ands = chunkKey.slice(0, i).map((k) => `${quoteId(k)} = ?`);
      ands.push(`${quoteId(chunkKey[i]!)} > ?`);
      ors.push(`(${ands.join(" AND ")})`);
      params.push(...after.slice(0, i), after[i]);
    }
    where = `WHERE ${ors.join(" OR ")}`;
  }
  // A keyless table is read whole (under a lock): no order to page by.
  const orderBy = order ? ` ORDER BY ${order}` : "";
  const sql = `SELECT ${t.selectList} FROM ${quoteTable(info)} ${where}${orderBy} LIMIT ${Math.floor(limit)}`;
  const raw = await conn.queryOptions<(Buffer | null)[][]>({
    sql,
    values: params,
    typeCast: rawTypeCast as never,
    rowsAsArray: true,
  });
  const binary = info.columns.map((c) => c.charset === "");
  const n = info.keys.length;
  const rows = raw.map((r) => {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) row[info.keys[i]!] = toBinlogValue(r[i] ?? null, info.kinds[i]!, binary[i]!);
    return row;
  });
  const lastRow = rows[rows.length - 1];
  return { rows, last: lastRow ? chunkKey.map((k) => lastRow[k]) : null };
}
