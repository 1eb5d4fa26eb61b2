/**
 * Table groups from the graph: connected components (a child's changes need its parent's key
 * map, so related tables are applied by one DPU), merged by `relmgr.groups` and split by
 * `relmgr.split`. A group's name is the configured one, or made from its first table.
 */
import { formatTableRef, parseTableRef, type TableRef, tableKey } from "@dfs/codec";
import type { DfsConfig } from "@dfs/config";
import { tableGroups } from "@dfs/mapping";
import type { Plan } from "@dfs/nats";
import { describeRelationship, type Graph } from "./graph.js";

/** A group name from a table: letters, digits, '_' and '-' only, at most 64 characters. */
export function groupNameOf(t: TableRef): string {
  return `${t.db}_${t.table}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
}

export function derivePlan(graph: Graph, cfg: Pick<DfsConfig, "relmgr">): Plan {
  const declared = cfg.relmgr.groups.map((g) => ({ name: g.name, tables: g.tables.map(parseTableRef) }));
  const groups = tableGroups(graph.tables, graph.relationships, {
    merge: declared.map((g) => g.tables),
    split: cfg.relmgr.split.map(parseTableRef),
  });
  const used = new Set<string>();
  const named = groups.map((tables) => {
    const keys = new Set(tables.map(tableKey));
    const byConfig = declared.find((d) => d.tables.some((t) => keys.has(tableKey(t))));
    let name = byConfig?.name ?? groupNameOf(tables[0]!);
    for (let i = 2; used.has(name); i++) name = `${name.slice(0, 60)}_${i}`;
    used.add(name);
    return { name, tables: tables.map(formatTableRef) };
  });
  return {
    groups: named,
    madeAt: new Date().toISOString(),
    relationships: graph.relationships.map(describeRelationship),
  };
}
