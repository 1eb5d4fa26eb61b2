/**
 * What is compared for a table: which target table, which column of the target holds which column
 * of the source, and by which key both sides are chunked. The sync use compares a table with its
 * copy of the same name; the pipeline use only through a mapping that can be inverted (the target
 * key is the source key renamed, every compared column a plain copy or rename). Anything else is
 * refused with the reason.
 */
import { formatTableRef, type TableRef } from "@dfs/codec";
import type { TargetPlan } from "@dfs/mapping";
import type { ColumnInfo, TableDescription } from "@dfs/mysql";
import type { HashColumn, Side, TextForm } from "./sql.js";

/** A source column and the target column that holds it. */
export interface ColumnPair {
  source: ColumnInfo;
  target: ColumnInfo;
}

/** A table that can be verified. */
export interface TablePlan {
  /** "db.t" (sync) or "db.t -> db2.t2" (a mapping): how results name it. */
  name: string;
  source: Side;
  target: Side;
  /** Compared columns, key columns first, aligned with source.columns and target.columns. */
  pairs: ColumnPair[];
  /** Every column of the source table a repair reads (not generated ones). */
  sourceColumns: ColumnInfo[];
}

export type Planned =
  | { ok: true; plan: TablePlan }
  | { ok: false; source: TableRef; target: TableRef | null; reason: string };

const INTEGER = new Set(["tinyint", "smallint", "mediumint", "int", "integer", "bigint"]);
const STRING = new Set(["char", "varchar", "tinytext", "text", "mediumtext", "longtext"]);

/**
 * How a source column and its target column are hashed alike, or why they cannot be: the same
 * type, or integers of any width, or strings (converted to utf8mb4 when the charsets differ).
 */
export function textFormOf(s: ColumnInfo, t: ColumnInfo): TextForm | string {
  const same = s.columnType.toLowerCase() === t.columnType.toLowerCase();
  const strings = s.charset !== null && t.charset !== null;
  if (strings && (same || (STRING.has(s.dataType) && STRING.has(t.dataType))))
    return s.charset === t.charset ? "binary" : "utf8";
  if (same || (INTEGER.has(s.dataType) && INTEGER.has(t.dataType))) return "plain";
  return `column ${s.name} is ${s.columnType} on the source and ${t.name} is ${t.columnType} on the target: their values print differently`;
}

function sideOf(ref: TableRef, key: string[], cols: ColumnInfo[], forms: TextForm[]): Side {
  const byName = new Map(cols.map((c) => [c.name, c]));
  return {
    ref,
    key,
    floatKeys: new Set(key.filter((k) => byName.get(k)?.dataType === "float")),
    columns: cols.map((c, i): HashColumn => ({ name: c.name, form: forms[i]! })),
  };
}

function build(
  name: string,
  src: TableDescription,
  tgt: TableDescription,
  pairs: ColumnPair[],
  sourceKey: string[],
  targetKey: string[],
): Planned {
  const forms: TextForm[] = [];
  for (const p of pairs) {
    const f = textFormOf(p.source, p.target);
    if (f !== "plain" && f !== "binary" && f !== "utf8")
      return { ok: false, source: src.ref, target: tgt.ref, reason: f };
    forms.push(f);
  }
  // Key columns first: a row's key is the first fields of its hash input, in both sides' order.
  const order = [
    ...sourceKey.map((k) => pairs.findIndex((p) => p.source.name === k)),
    ...pairs.map((_, i) => i).filter((i) => !sourceKey.includes(pairs[i]!.source.name)),
  ];
  const sorted = order.map((i) => pairs[i]!);
  const sortedForms = order.map((i) => forms[i]!);
  return {
    ok: true,
    plan: {
      name,
      source: sideOf(
        src.ref,
        sourceKey,
        sorted.map((p) => p.source),
        sortedForms,
      ),
      target: sideOf(
        tgt.ref,
        targetKey,
        sorted.map((p) => p.target),
        sortedForms,
      ),
      pairs: sorted,
      sourceColumns: src.columns.filter((c) => !c.generated),
    },
  };
}

/** The sync use: the target table of the same name (in `target.database` when set), column by column. */
export function syncPlan(src: TableDescription, tgt: TableDescription | null, targetRef: TableRef): Planned {
  const name = formatTableRef(src.ref);
  if (src.identity.kind === "none")
    return {
      ok: false,
      source: src.ref,
      target: targetRef,
      reason: "it has no primary key or NOT NULL unique key: its rows cannot be compared by key",
    };
  if (!tgt) return { ok: false, source: src.ref, target: targetRef, reason: "missing" };
  const targetCols = new Map(tgt.columns.map((c) => [c.name, c]));
  const pairs: ColumnPair[] = [];
  for (const c of src.columns) {
    const t = targetCols.get(c.name);
    // Generated columns follow from the others; columns the target lacks were left out on purpose.
    if (!t || c.generated || t.generated) continue;
    pairs.push({ source: c, target: t });
  }
  const key = src.identity.columns;
  const missingKey = key.find((k) => !targetCols.has(k));
  if (missingKey)
    return {
      ok: false,
      source: src.ref,
      target: tgt.ref,
      reason: `the target has no key column ${missingKey}`,
    };
  return build(name, src, tgt, pairs, key, key);
}

/**
 * The pipeline use: a mapping is verified only when it can be inverted, i.e. each target row
 * names its source row: `key: source` or `columns(...)` whose target key is the source key
 * renamed, and every written column a plain copy or rename (no cast, expression, constant,
 * foreign-key rewrite, filter or hook). Target columns the mapping does not write are not compared.
 */
export function mappingPlan(m: TargetPlan, src: TableDescription, tgt: TableDescription | null): Planned {
  const name = `${formatTableRef(m.source)} -> ${formatTableRef(m.target)}`;
  const no = (why: string): Planned => ({
    ok: false,
    source: m.source,
    target: m.target,
    reason: `${m.path} cannot be verified: ${why}`,
  });
  if (m.key === "generated")
    return no(
      `the target generates its keys (key: generated), so a target row cannot be matched to its source row by key`,
    );
  if (m.filter) return no("it has a filter: which source rows belong in the target is not a key range");
  if (m.hook) return no(`its hook (${m.hook.module}) may change or drop rows`);
  for (const c of m.columns) {
    if (c.parent) return no(`column ${c.target} is rewritten to its parent's generated key`);
    if (!c.sourceColumn) return no(`column ${c.target} is a constant or an expression, not a source column`);
    if (c.cast) return no(`column ${c.target} is cast (${c.cast}) from ${c.sourceColumn}`);
  }
  if (!tgt) return { ok: false, source: m.source, target: m.target, reason: "missing" };
  const srcCols = new Map(src.columns.map((c) => [c.name, c]));
  const tgtCols = new Map(tgt.columns.map((c) => [c.name, c]));
  const pairs: ColumnPair[] = m.columns.map((c) => ({
    source: srcCols.get(c.sourceColumn!)!,
    target: tgtCols.get(c.target)!,
  }));
  const sourceKey = m.keyColumns.map((k) => m.columns.find((c) => c.target === k)?.sourceColumn ?? "");
  const sameKey =
    sourceKey.length === m.sourceKey.length &&
    m.sourceKey.every((k) => sourceKey.includes(k)) &&
    sourceKey.every((k) => k !== "");
  if (!sameKey)
    return no(
      `the target key (${m.keyColumns.join(", ")}) is not the source key (${m.sourceKey.join(", ")}) renamed`,
    );
  return build(name, src, tgt, pairs, sourceKey, m.keyColumns);
}
