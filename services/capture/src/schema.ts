import type { TableFilter } from "@dfs/config";
import { type MysqlSession, showCreateDatabase, showCreateTable } from "@dfs/mysql";
import type { SchemaStatement } from "./assembler.js";

/**
 * CREATE DATABASE / CREATE TABLE IF NOT EXISTS statements for every captured database and base
 * table, as the source defines them now (SHOW CREATE). Taken when a journal starts, so that a
 * consumer can create what it lacks with the definitions in force at the start position; DDL in
 * the binlog carries the history on from there.
 */
export async function schemaSnapshot(conn: MysqlSession, filter: TableFilter): Promise<SchemaStatement[]> {
  const out: SchemaStatement[] = [];
  const dbRows = await conn.query<{ name: string }[]>(
    "SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
  );
  for (const { name: db } of dbRows) {
    if (!filter.includesDatabase(db)) continue;
    const tableRows = await conn.query<{ name: string }[]>(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
      [db],
    );
    const tables = tableRows.map((r) => r.name).filter((t) => filter.includesTable(db, t));
    const dbStatement = await showCreateDatabase(conn, db);
    out.push({
      statement: dbStatement.replace(/^CREATE DATABASE /i, "CREATE DATABASE IF NOT EXISTS "),
      db,
      tables: [],
    });
    for (const table of tables) {
      const ref = { db, table };
      const statement = await showCreateTable(conn, ref);
      if (statement === null) continue; // dropped since it was listed: its DROP is in the binlog
      out.push({
        statement: statement.replace(/^CREATE TABLE /i, "CREATE TABLE IF NOT EXISTS "),
        db,
        tables: [ref],
      });
    }
  }
  return out;
}
