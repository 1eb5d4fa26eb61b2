/**
 * The relationship graph of tables: foreign keys (discovered and declared) as child -> parent
 * edges. Parents-first order (snapshots load parents before children) and table groups
 * (connected components, which relmgr plans and DPUs apply apart).
 */
import { type TableRef, tableKey } from "@dfs/codec";

export interface Edge {
  child: TableRef;
  parent: TableRef;
}

/**
 * `tables` with every parent before its children, otherwise in their given order. Tables in a
 * cycle (or that reference themselves) keep their given order among themselves.
 */
export function parentsFirst<T extends TableRef>(tables: readonly T[], edges: readonly Edge[]): T[] {
  const index = new Map(tables.map((t, i) => [tableKey(t), i]));
  const parents = tables.map(() => new Set<number>());
  for (const e of edges) {
    const c = index.get(tableKey(e.child));
    const p = index.get(tableKey(e.parent));
    if (c !== undefined && p !== undefined && c !== p) parents[c]!.add(p);
  }
  const out: T[] = [];
  const done = new Set<number>();
  while (out.length < tables.length) {
    // The first table (in given order) whose parents are all placed; in a cycle, the first left.
    let next = tables.findIndex((_, i) => !done.has(i) && [...parents[i]!].every((p) => done.has(p)));
    if (next < 0) next = tables.findIndex((_, i) => !done.has(i));
    done.add(next);
    out.push(tables[next]!);
  }
  return out;
}

/**
 * Table groups: tables connected by relationships belong together (a child's change needs its
 * parent's key map); `merge` joins groups that hold any of its tables, `split` lists tables put in
 * a group of their own whatever their relationships. Groups in order of their first table.
 */
export function tableGroups(
  tables: readonly TableRef[],
  edges: readonly Edge[],
  o: { merge?: readonly (readonly TableRef[])[]; split?: readonly TableRef[] } = {},
): TableRef[][] {
  const keys = tables.map(tableKey);
  const parent = new Map(keys.map((k) => [k, k]));
  const find = (k: string): string => {
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(k, r);
    return r;
  };
  const union = (a: string, b: string) => {
    if (!parent.has(a) || !parent.has(b)) return;
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(rb, ra);
  };
  const alone = new Set((o.split ?? []).map(tableKey));
  for (const e of edges) {
    const c = tableKey(e.child);
    const p = tableKey(e.parent);
    if (!alone.has(c) && !alone.has(p)) union(c, p);
  }
  for (const m of o.merge ?? []) for (let i = 1; i < m.length; i++) union(tableKey(m[0]!), tableKey(m[i]!));
  const groups = new Map<string, TableRef[]>();
  tables.forEach((t, i) => {
    const root = find(keys[i]!);
    const g = groups.get(root);
    if (g) g.push(t);
    else groups.set(root, [t]);
  });
  return [...groups.values()];
}
