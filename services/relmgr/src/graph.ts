/**
 * The relationship graph of the captured tables: FOREIGN KEYs discovered on the source, plus the
 * relationships the config declares (schemas without constraints are common). Rebuilt when the
 * stream carries a schema change.
 */
import { formatTableRef, type TableRef } from "@dfs/codec";
import { captureFilter, type DfsConfig, type TableFilter } from "@dfs/config";
import { parentsFirst } from "@dfs/mapping";
import { foreignKeys, type MysqlSession } from "@dfs/mysql";

export interface Relationship {
  child: TableRef;
  columns: string[];
  parent: TableRef;
  parentColumns: string[];
  declared: boolean;
}

export interface Graph {
  /** Captured tables, parents before children. */
  tables: TableRef[];
  relationships: Relationship[];
}

export function describeRelationship(r: Relationship): string {
  return `${formatTableRef(r.child)}(${r.columns.join(", ")}) -> ${formatTableRef(r.parent)}(${r.parentColumns.join(", ")})${r.declared ? " [declared]" : ""}`;
}

/** Reads the captured tables and their foreign keys from the source. */
export async function discoverGraph(cfg: DfsConfig, s: MysqlSession): Promise<Graph> {
  const filter: TableFilter = captureFilter(cfg);
  const rows = await s.query<{ db: string; t: string }[]>(
    "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY 1, 2",
  );
  const tables = rows.filter((r) => filter.includesTable(r.db, r.t)).map((r) => ({ db: r.db, table: r.t }));
  const captured = new Set(tables.map(formatTableRef));
  const fks = await foreignKeys(s, [...new Set(tables.map((t) => t.db))]);
  const relationships: Relationship[] = fks
    .filter((f) => captured.has(formatTableRef(f.child)) && captured.has(formatTableRef(f.parent)))
    .map((f) => ({
      child: f.child,
      columns: f.columns,
      parent: f.parent,
      parentColumns: f.parentColumns,
      declared: false,
    }));
  for (const r of cfg.pipeline?.relationships ?? [])
    relationships.push({
      child: { db: r.child.db, table: r.child.table },
      columns: r.child.columns,
      parent: { db: r.parent.db, table: r.parent.table },
      parentColumns: r.parent.columns,
      declared: true,
    });
  return { tables: parentsFirst(tables, relationships), relationships };
}
