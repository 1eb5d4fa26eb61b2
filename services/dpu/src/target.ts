import type { Logger } from "@dfs/common";
import type { Connection } from "mysql2/promise";
import { quoteId, type TargetTable } from "./plan.js";

/**
 * Session settings of every target connection: TIMESTAMP values travel in UTC; strict mode so a
 * value the column cannot hold is an error (dead-lettered), never silently truncated; zero dates
 * and explicit 0 in AUTO_INCREMENT columns kept as the source had them; FK checks off, as a
 * replica applies (the stream is already in the source's order).
 */
export const SESSION_SETUP = [
  "SET SESSION time_zone = '+00:00'",
  "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
  "SET SESSION foreign_key_checks = 0",
  "SET NAMES utf8mb4",
];

/**
 * MySQL error numbers that mean a DDL statement's effect is already there (the DPU re-applies DDL
 * after a restart, and a target table created from a later definition already has later columns).
 */
export const DDL_ALREADY_APPLIED = new Set([
  1007, // ER_DB_CREATE_EXISTS
  1008, // ER_DB_DROP_EXISTS
  1050, // ER_TABLE_EXISTS_ERROR
  1051, // ER_BAD_TABLE_ERROR (drop of a missing table)
  1060, // ER_DUP_FIELDNAME
  1061, // ER_DUP_KEYNAME
  1091, // ER_CANT_DROP_FIELD_OR_KEY
  1146, // ER_NO_SUCH_TABLE (alter/truncate of a table dropped later)
  1054, // ER_BAD_FIELD_ERROR (alter of a column dropped or renamed later)
]);

export interface CatalogOptions {
  /** Target database for a source database. */
  mapDb(db: string): string;
  /** SHOW CREATE TABLE on the source, for a table missing in the target (sync mode). */
  sourceDefinition?: (db: string, table: string) => Promise<string | null>;
  log: Logger;
}

/** The target's tables as the DPU needs them, cached until DDL touches them. */
export class TargetCatalog {
  private readonly cache = new Map<string, TargetTable | null>();
  constructor(private readonly o: CatalogOptions) {}

  mapDb(db: string): string {
    return this.o.mapDb(db);
  }

  invalidate(): void {
    this.cache.clear();
  }

  /** The target table for a source table; created from the source's definition when missing. */
  async table(conn: Connection, srcDb: string, srcTable: string): Promise<TargetTable | null> {
    const key = `${srcDb}\u0000${srcTable}`;
    if (this.cache.has(key)) return this.cache.get(key)!;
    const db = this.o.mapDb(srcDb);
    let found = await describe(conn, db, srcTable);
    if (!found && this.o.sourceDefinition) {
      const ddl = await this.o.sourceDefinition(srcDb, srcTable);
      if (ddl) {
        this.o.log.info(
          { db, table: srcTable },
          "creating missing target table from the source's definition",
        );
        await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(db)}`);
        await conn.query(`USE ${quoteId(db)}`);
        await conn.query(ddl.replace(/^CREATE TABLE /i, "CREATE TABLE IF NOT EXISTS "));
        found = await describe(conn, db, srcTable);
      }
    }
    this.cache.set(key, found);
    return found;
  }
}

async function describe(conn: Connection, db: string, table: string): Promise<TargetTable | null> {
  const [cols] = await conn.query(
    "SELECT COLUMN_NAME AS name, IS_NULLABLE AS nullable FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    [db, table],
  );
  const columns = cols as { name: string; nullable: string }[];
  if (columns.length === 0) return null;
  const notNull = new Set(columns.filter((c) => c.nullable === "NO").map((c) => c.name));
  const [idx] = await conn.query(
    "SELECT INDEX_NAME AS idx, COLUMN_NAME AS col FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
    [db, table],
  );
  const indexes = new Map<string, string[]>();
  for (const r of idx as { idx: string; col: string }[]) {
    const list = indexes.get(r.idx) ?? [];
    list.push(r.col);
    indexes.set(r.idx, list);
  }
  const primary = indexes.get("PRIMARY");
  // A unique key identifies a row only if none of its columns can be NULL.
  const unique = [...indexes.entries()].find(
    ([name, c]) => name !== "PRIMARY" && c.every((x) => notNull.has(x)),
  )?.[1];
  const key = primary ?? unique ?? [];
  return {
    db,
    table,
    columns: new Set(columns.map((c) => c.name)),
    key,
    keyKind: primary ? "primary" : unique ? "unique" : "none",
  };
}

/** Rewrites references to a source database in a DDL statement to the target database. */
export function mapDdl(statement: string, srcDb: string, dstDb: string): string {
  if (srcDb === dstDb || !srcDb) return statement;
  const escaped = srcDb.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return statement
    .replace(new RegExp(`\`${escaped.replace(/`/g, "``")}\`\\s*\\.`, "g"), `${quoteId(dstDb)}.`)
    .replace(new RegExp(`(?<![\\w\`$])${escaped}\\s*\\.(?=\\s*[\`\\w])`, "g"), `${quoteId(dstDb)}.`)
    .replace(
      new RegExp(
        `^(\\s*(?:CREATE|DROP|ALTER)\\s+(?:DATABASE|SCHEMA)\\s+(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?)(\`${escaped}\`|${escaped})(?=\\s|$)`,
        "i",
      ),
      `$1${quoteId(dstDb)}`,
    );
}
