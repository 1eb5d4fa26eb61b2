import { ValueKind } from "@dfs/codec";
import type { TableFilter } from "@dfs/config";
import type { Column } from "@dfs/proto";

/** Binlog column type codes (include/mysql_com.h enum_field_types). */
const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  BLOB_COMPRESSED: 140,
  VARCHAR_COMPRESSED: 141,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

/** The shape of zongji's TABLE_MAP event and its cached table entry that we rely on. */
export interface TableMapEvent {
  tableId: number;
  schemaName: string;
  tableName: string;
  primaryKey?: number[];
  /** The column names the event itself carries (binlog_row_metadata=FULL), as of its writing. */
  columnNames?: string[];
  tableMap: Record<
    number,
    {
      columnSchemas: {
        COLUMN_NAME: string;
        COLUMN_TYPE: string;
        UNSIGNED?: boolean;
        CHARACTER_SET_NAME: string | null;
      }[];
      columns?: { name: string; charset: string | null; type: number }[];
    }
  >;
}

/** Everything capture needs to turn one table's binlog rows into envelope rows. */
export interface TableInfo {
  db: string;
  table: string;
  /** Envelope columns, excluded columns left out. */
  columns: Column[];
  /** Binlog row object key of each envelope column. */
  keys: string[];
  kinds: ValueKind[];
  primaryKey: string[];
  /** FNV-1a hash of the column list: changes exactly when the table's columns change. */
  schemaVersion: number;
  /** Cached subject of this table's messages. */
  subject: string;
}

function kindOf(type: number, unsigned: boolean, charset: string | null): ValueKind {
  switch (type) {
    case T.TINY:
    case T.SHORT:
    case T.INT24:
    case T.LONG:
    case T.LONGLONG:
      return unsigned ? ValueKind.Uint : ValueKind.Int;
    case T.YEAR:
      return ValueKind.Int;
    case T.FLOAT:
      return ValueKind.Float32;
    case T.DOUBLE:
      return ValueKind.Float64;
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return ValueKind.Decimal;
    case T.DATE:
    case T.NEWDATE:
    case T.TIME:
    case T.TIME2:
    case T.DATETIME:
    case T.DATETIME2:
    case T.TIMESTAMP:
    case T.TIMESTAMP2:
      return ValueKind.Temporal;
    case T.JSON:
      return ValueKind.Json;
    case T.BIT:
    case T.GEOMETRY:
      return ValueKind.Bytes;
    case T.ENUM:
    case T.SET:
      return ValueKind.Text;
    default:
      // Strings and blobs: text when the column has a character set, bytes when it is binary.
      return charset ? ValueKind.Text : ValueKind.Bytes;
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * zongji describes some tables from INFORMATION_SCHEMA as it is when it reads the event (MariaDB
 * tables with 5.3-format temporal columns, whose type codes even FULL metadata leaves ambiguous). A
 * column added before others since the event was written would shift every value to the wrong
 * name and type, silently: where the event carries its own column names, they must be the ones
 * zongji put on its values.
 */
function checkColumnsOfEvent(ev: TableMapEvent, all: { name: string }[]): void {
  const own = ev.columnNames;
  if (!own || own.every((name, i) => all[i]?.name === name)) return;
  throw new Error(
    `the columns of ${ev.schemaName}.${ev.tableName} changed after this event was written: it has (${own.join(", ")}), the table now (${all.map((c) => c.name).join(", ")}), so its values cannot be placed`,
  );
}

/** Builds the table's description from a TABLE_MAP event that zongji has resolved. */
export function tableInfoFromMap(
  ev: TableMapEvent,
  filter: TableFilter,
  subjectFor: (db: string, table: string) => string,
): TableInfo {
  const entry = ev.tableMap[ev.tableId];
  if (!entry?.columns) throw new Error(`no column metadata for ${ev.schemaName}.${ev.tableName}`);
  const columns: Column[] = [];
  const keys: string[] = [];
  const kinds: ValueKind[] = [];
  const all = entry.columns;
  checkColumnsOfEvent(ev, all);
  for (let i = 0; i < all.length; i++) {
    const c = all[i]!;
    if (filter.excludesColumn(ev.schemaName, ev.tableName, c.name)) continue;
    const schema = entry.columnSchemas[i];
    const unsigned = schema?.UNSIGNED ?? schema?.COLUMN_TYPE.includes("unsigned") ?? false;
    // zongji's COLUMN_TYPE already says "unsigned" where the type has it (and not for YEAR).
    const type = schema?.COLUMN_TYPE ?? "";
    columns.push({ name: c.name, type, charset: c.charset ?? "" });
    keys.push(c.name);
    kinds.push(kindOf(c.type, unsigned, c.charset));
  }
  const primaryKey = (ev.primaryKey ?? [])
    .map((i) => all[i]?.name)
    // An excluded key column is not in the images, so it cannot be part of the key consumers see.
    .filter((n): n is string => n !== undefined && keys.includes(n));
  const signature = columns.map((c, i) => `${c.name}:${c.type}:${kinds[i]}`).join(",");
  return {
    db: ev.schemaName,
    table: ev.tableName,
    columns,
    keys,
    kinds,
    primaryKey,
    schemaVersion: fnv1a(signature),
    subject: subjectFor(ev.schemaName, ev.tableName),
  };
}
