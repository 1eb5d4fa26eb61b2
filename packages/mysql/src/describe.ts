import type { TableRef } from "@dfs/codec";
import { DataError, ErrorCode } from "@dfs/common";
import { quoteId, quoteTable } from "./quote.js";
import type { MysqlSession } from "./session.js";

/** A column as INFORMATION_SCHEMA describes it. */
export interface ColumnInfo {
  name: string;
  /** "int", "varchar", "decimal", ... */
  dataType: string;
  /** "int(10) unsigned", "enum('a','b')", ... */
  columnType: string;
  charset: string | null;
  nullable: boolean;
  /** A VIRTUAL or STORED generated column: its value is computed, never written. */
  generated: boolean;
  /** An AUTO_INCREMENT column: the server makes its value when an insert leaves it out. */
  autoIncrement: boolean;
  /** Whether an insert may leave it out (it is NULL-able, has a default, or is generated). */
  optional: boolean;
}

/** A table's columns and keys: the one key discovery of the project. */
export interface TableDescription {
  ref: TableRef;
  columns: ColumnInfo[];
  primaryKey: string[];
  /** Unique keys other than the primary key, by name, in name order. */
  uniqueKeys: { name: string; columns: string[] }[];
  /**
   * The columns that identify a row: the primary key, else the first unique key whose columns are
   * all NOT NULL (a unique key with a NULL column can hold many rows with NULL), else none.
   */
  identity: { kind: "primary" | "unique" | "none"; columns: string[] };
  /** The server's estimate of the row count (for progress only). */
  estimatedRows: number;
}

/** The table's description, or null when the table does not exist. Other failures are thrown. */
export async function describeTable(s: MysqlSession, ref: TableRef): Promise<TableDescription | null> {
  const cols = await s.query<
    {
      name: string;
      dataType: string;
      columnType: string;
      charset: string | null;
      nullable: string;
      extra: string;
      hasDefault: number | string;
    }[]
  >(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType,
            CHARACTER_SET_NAME AS charset, IS_NULLABLE AS nullable, EXTRA AS extra,
            COLUMN_DEFAULT IS NOT NULL AS hasDefault
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [ref.db, ref.table],
  );
  if (cols.length === 0) return null;
  const columns: ColumnInfo[] = cols.map((c) => {
    const generated = /\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b/i.test(c.extra ?? "");
    const autoIncrement = /\bauto_increment\b/i.test(c.extra ?? "");
    const nullable = c.nullable === "YES";
    return {
      name: c.name,
      dataType: c.dataType.toLowerCase(),
      columnType: c.columnType,
      charset: c.charset,
      nullable,
      generated,
      autoIncrement,
      optional: nullable || generated || autoIncrement || Number(c.hasDefault) === 1,
    };
  });
  const idx = await s.query<{ name: string; col: string }[]>(
    `SELECT INDEX_NAME AS name, COLUMN_NAME AS col FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    [ref.db, ref.table],
  );
  const keys = new Map<string, string[]>();
  for (const r of idx) keys.set(r.name, [...(keys.get(r.name) ?? []), r.col]);
  const primaryKey = keys.get("PRIMARY") ?? [];
  keys.delete("PRIMARY");
  const uniqueKeys = [...keys.entries()].map(([name, columns]) => ({ name, columns }));
  const notNull = new Set(columns.filter((c) => !c.nullable).map((c) => c.name));
  const unique = uniqueKeys.find((k) => k.columns.every((c) => notNull.has(c)));
  const identity: TableDescription["identity"] =
    primaryKey.length > 0
      ? { kind: "primary", columns: primaryKey }
      : unique
        ? { kind: "unique", columns: unique.columns }
        : { kind: "none", columns: [] };
  const est = await s.query<{ n: number | string | null }[]>(
    "SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
    [ref.db, ref.table],
  );
  return { ref, columns, primaryKey, uniqueKeys, identity, estimatedRows: Number(est[0]?.n ?? 0) };
}

/**
 * The table's CREATE TABLE statement, or null when the table (or its database) does not exist.
 * Any other failure (the server went away, a missing privilege) is thrown, never taken for
 * "absent": a caller that cached "absent" would refuse every later row of the table.
 */
export async function showCreateTable(s: MysqlSession, ref: TableRef): Promise<string | null> {
  try {
    const rows = await s.query<Record<string, string>[]>(`SHOW CREATE TABLE ${quoteTable(ref)}`);
    return rows[0]?.["Create Table"] ?? null;
  } catch (err) {
    if (err instanceof DataError && err.code === ErrorCode.OBJECT_MISSING) return null;
    throw err;
  }
}

/** CREATE DATABASE statement of a database as the server shows it. */
export async function showCreateDatabase(s: MysqlSession, db: string): Promise<string> {
  const rows = await s.query<Record<string, string>[]>(`SHOW CREATE DATABASE ${quoteId(db)}`);
  return String(Object.values(rows[0] ?? {})[1] ?? "");
}

/** A FOREIGN KEY constraint: `columns` of `child` reference `parentColumns` of `parent`. */
export interface ForeignKey {
  name: string;
  child: TableRef;
  columns: string[];
  parent: TableRef;
  parentColumns: string[];
}

/** The foreign keys declared in the databases `dbs` (InnoDB's constraints, from information_schema). */
export async function foreignKeys(s: MysqlSession, dbs: readonly string[]): Promise<ForeignKey[]> {
  if (dbs.length === 0) return [];
  const rows = await s.query<
    { db: string; tbl: string; name: string; col: string; pdb: string; ptbl: string; pcol: string }[]
  >(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, CONSTRAINT_NAME AS name, COLUMN_NAME AS col,
            REFERENCED_TABLE_SCHEMA AS pdb, REFERENCED_TABLE_NAME AS ptbl, REFERENCED_COLUMN_NAME AS pcol
       FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA IN (${dbs.map(() => "?").join(",")}) AND REFERENCED_TABLE_NAME IS NOT NULL
      ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`,
    [...dbs],
  );
  const out = new Map<string, ForeignKey>();
  for (const r of rows) {
    const id = `${r.db}\u0000${r.tbl}\u0000${r.name}`;
    let fk = out.get(id);
    if (!fk) {
      fk = {
        name: r.name,
        child: { db: r.db, table: r.tbl },
        columns: [],
        parent: { db: r.pdb, table: r.ptbl },
        parentColumns: [],
      };
      out.set(id, fk);
    }
    fk.columns.push(r.col);
    fk.parentColumns.push(r.pcol);
  }
  return [...out.values()];
}
