import type { Connection } from "mysql2/promise";
import type { SchemaStatement } from "./assembler.js";
import type { TableFilter } from "./filter.js";

function quote(id: string): string {
  return `\`${id.replace(/`/g, "``")}\``;
}

/**
 * CREATE DATABASE / CREATE TABLE IF NOT EXISTS statements for every captured database and base
 * table, as the source defines them now (SHOW CREATE). Taken when a journal starts, so that a
 * consumer can create what it lacks with the definitions in force at the start position; DDL in
 * the binlog carries the history on from there.
 */
export async function schemaSnapshot(conn: Connection, filter: TableFilter): Promise<SchemaStatement[]> {
  const out: SchemaStatement[] = [];
  const [dbRows] = await conn.query(
    "SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
  );
  for (const { name: db } of dbRows as { name: string }[]) {
    if (!filter.includesDatabase(db)) continue;
    const [tableRows] = await conn.query(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
      [db],
    );
    const tables = (tableRows as { name: string }[])
      .map((r) => r.name)
      .filter((t) => filter.includesTable(db, t));
    const [createDb] = await conn.query(`SHOW CREATE DATABASE ${quote(db)}`);
    const dbStatement = String(Object.values((createDb as Record<string, unknown>[])[0]!)[1]);
    out.push({
      statement: dbStatement.replace(/^CREATE DATABASE /i, "CREATE DATABASE IF NOT EXISTS "),
      db,
      tables: [],
    });
    for (const table of tables) {
      const [createTable] = await conn.query(`SHOW CREATE TABLE ${quote(db)}.${quote(table)}`);
      const statement = String(Object.values((createTable as Record<string, unknown>[])[0]!)[1]);
      out.push({
        statement: statement.replace(/^CREATE TABLE /i, "CREATE TABLE IF NOT EXISTS "),
        db,
        tables: [`${db}.${table}`],
      });
    }
  }
  return out;
}
