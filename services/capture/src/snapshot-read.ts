import { ValueKind } from "@dfs/codec";
import { DataError, ErrorCode } from "@dfs/common";
import type { Connection } from "mysql2/promise";
import type { TableFilter } from "./filter.js";
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

const q = (name: string) => `\`${name.replace(/`/g, "``")}\``;

/** A table as a snapshot reads it. */
export interface SnapshotTable {
  info: TableInfo;
  /** Columns that order and page the chunks: the primary key, else a unique key of NOT NULL columns. */
  chunkKey: string[];
  /** The server's estimate of the row count (for progress only). */
  estimatedRows: number;
  /** SELECT list: every column as the binlog path would decode it (FLOAT read exactly). */
  selectList: string;
}

interface ColumnRow {
  name: string;
  dataType: string;
  columnType: string;
  charset: string | null;
  nullable: string;
}

/**
 * Describes a table for a snapshot from INFORMATION_SCHEMA, through the same function as the
 * binlog path (tableInfoFromMap), so rows get the same kinds and column set.
 */
export async function describeTable(
  conn: Connection,
  db: string,
  table: string,
  filter: TableFilter,
  subjectFor: (db: string, table: string) => string,
): Promise<SnapshotTable> {
  const [cols] = await conn.query(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType,
            CHARACTER_SET_NAME AS charset, IS_NULLABLE AS nullable
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [db, table],
  );
  const columns = cols as ColumnRow[];
  if (columns.length === 0)
    throw new DataError(ErrorCode.DATA_INVALID, `table ${db}.${table} does not exist`);
  const [idx] = await conn.query(
    `SELECT INDEX_NAME AS name, COLUMN_NAME AS col, NON_UNIQUE AS nonUnique
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    [db, table],
  );
  const indexes = new Map<string, string[]>();
  for (const r of idx as { name: string; col: string; nonUnique: number | string }[]) {
    if (Number(r.nonUnique) !== 0) continue;
    indexes.set(r.name, [...(indexes.get(r.name) ?? []), r.col]);
  }
  const names = columns.map((c) => c.name);
  const primary = indexes.get("PRIMARY") ?? [];
  const notNull = new Set(columns.filter((c) => c.nullable === "NO").map((c) => c.name));
  const unique = [...indexes.entries()].find(([n, cs]) => n !== "PRIMARY" && cs.every((c) => notNull.has(c)));
  const chunkKey = primary.length > 0 ? primary : (unique?.[1] ?? []);
  const ev: TableMapEvent = {
    tableId: 0,
    schemaName: db,
    tableName: table,
    primaryKey: primary.map((c) => names.indexOf(c)),
    tableMap: {
      0: {
        columnSchemas: columns.map((c) => ({
          COLUMN_NAME: c.name,
          COLUMN_TYPE: c.columnType,
          UNSIGNED: /\bunsigned\b/.test(c.columnType),
          CHARACTER_SET_NAME: c.charset,
        })),
        columns: columns.map((c) => ({
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
      const c = columns.find((x) => x.name === k)!;
      // FLOAT prints with 6 digits; as DOUBLE it is exact, and float32 of that is the stored value.
      return c.dataType === "float" ? `CAST(${q(k)} AS DOUBLE) AS ${q(k)}` : q(k);
    })
    .join(", ");
  const [est] = await conn.query(
    "SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
    [db, table],
  );
  const estimatedRows = Number((est as { n: number | null }[])[0]?.n ?? 0);
  return { info, chunkKey, estimatedRows, selectList };
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
  conn: Connection,
  t: SnapshotTable,
  after: unknown[] | null,
  limit: number,
): Promise<{ rows: Record<string, unknown>[]; last: unknown[] | null }> {
  const { info, chunkKey } = t;
  const order = chunkKey.map(q).join(", ");
  let where = "";
  const params: unknown[] = [];
  if (after) {
    // (a > ?) OR (a = ? AND b > ?) ...: a form every optimizer turns into an index range.
    const ors: string[] = [];
    for (let i = 0; i < chunkKey.length; i++) {
      const ands = chunkKey.slice(0, i).map((k) => `${q(k)} = ?`);
      ands.push(`${q(chunkKey[i]!)} > ?`);
      ors.push(`(${ands.join(" AND ")})`);
      params.push(...after.slice(0, i), after[i]);
    }
    where = `WHERE ${ors.join(" OR ")}`;
  }
  const sql = `SELECT ${t.selectList} FROM ${q(info.db)}.${q(info.table)} ${where} ORDER BY ${order} LIMIT ${Math.floor(limit)}`;
  const [raw] = await conn.query({ sql, values: params, typeCast: rawTypeCast as never, rowsAsArray: true });
  const binary = info.columns.map((c) => c.charset === "");
  const n = info.keys.length;
  const rows = (raw as (Buffer | null)[][]).map((r) => {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) row[info.keys[i]!] = toBinlogValue(r[i] ?? null, info.kinds[i]!, binary[i]!);
    return row;
  });
  const lastRow = rows[rows.length - 1];
  return { rows, last: lastRow ? chunkKey.map((k) => lastRow[k]) : null };
}
