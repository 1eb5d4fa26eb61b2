/**
 * Mappings compiled against the real schemas: each `pipeline.mappings[i]` becomes a TargetPlan
 * (which target columns come from what, how target rows are identified, which columns are
 * foreign keys to rewrite). Every problem is collected with its config path, so one start-up
 * reports them all.
 */
import { formatTableRef, parseTableRef, type SqlValue, type TableRef, tableKey } from "@dfs/codec";
import type { ColumnSpec, MappingSpec, PipelineConfig } from "@dfs/config";
import type { ForeignKey, TableDescription } from "@dfs/mysql";
import { type Compiled, castValue, compileExpr, ExprError, type ExprValue, fromSql, toSql } from "./expr.js";
import type { Hook } from "./hooks.js";

const NUMERIC = new Set([
  "tinyint",
  "smallint",
  "mediumint",
  "int",
  "integer",
  "bigint",
  "decimal",
  "numeric",
  "float",
  "double",
  "real",
  "year",
]);

/** How one target column gets its value from a source row. */
export interface ColumnPlan {
  target: string;
  /** The value for a source row (before any foreign-key rewrite). */
  value(row: Record<string, SqlValue>): SqlValue;
  /** The source column it copies, when it is a plain copy, rename or cast. */
  sourceColumn?: string;
  /** The conversion of a cast (`sourceColumn` is then not copied as it is). */
  cast?: string;
  /** Set when the column references a parent whose target generates keys: its value is rewritten. */
  parent?: TargetPlan;
}

/** One mapping, compiled. */
export interface TargetPlan {
  /** "pipeline.mappings[i]": how errors and the monitor name it. */
  path: string;
  index: number;
  source: TableRef;
  target: TableRef;
  key: "source" | "generated" | "columns";
  /** The target columns that identify a row (the generated key's one column for "generated"). */
  keyColumns: string[];
  /** Source columns that identify a source row (its primary key, else a NOT NULL unique key). */
  sourceKey: string[];
  columns: ColumnPlan[];
  filter?: Compiled;
  hook?: { module: string; run: Hook };
  /** Target unique keys (each a column list), for conflict checks. */
  uniqueKeys: string[][];
}

export interface Schemas {
  source(ref: TableRef): TableDescription | undefined;
  target(ref: TableRef): TableDescription | undefined;
  /** Foreign keys of the source (discovered) and of the target (to resolve ambiguous parents). */
  sourceForeignKeys: readonly ForeignKey[];
  targetForeignKeys: readonly ForeignKey[];
  /** Hook modules by the path written in the config. */
  hooks: ReadonlyMap<string, Hook | Error>;
}

/** A mapping problem: the config path and what is wrong. */
export interface MappingProblem {
  path: string;
  message: string;
}

export interface CompiledPipeline {
  plans: TargetPlan[];
  /** Plans by source table (tableKey). */
  bySource: Map<string, TargetPlan[]>;
  /** Relationships used (discovered and declared), child -> parent, for relmgr's graph. */
  relationships: {
    child: TableRef;
    columns: string[];
    parent: TableRef;
    parentColumns: string[];
    declared: boolean;
  }[];
}

const ref = (qualified: string): TableRef => parseTableRef(qualified);

function kindsOf(d: TableDescription) {
  const types = new Map(d.columns.map((c) => [c.name, c.dataType]));
  return {
    has: (c: string) => types.has(c),
    numeric: (c: string) => NUMERIC.has(types.get(c) ?? ""),
  };
}

function normalise(spec: ColumnSpec): Exclude<ColumnSpec, string> {
  return typeof spec === "string" ? { column: spec } : spec;
}

/**
 * Compiles every mapping. Returns the plans, or every problem found (then no plan is usable).
 */
export function compileMappings(
  cfg: PipelineConfig,
  schemas: Schemas,
): { ok: true; pipeline: CompiledPipeline } | { ok: false; problems: MappingProblem[] } {
  const problems: MappingProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });
  const plans: TargetPlan[] = [];
  const pending: { plan: TargetPlan; col: ColumnPlan; path: string; references?: string }[] = [];

  cfg.mappings.forEach((m: MappingSpec, index) => {
    const path = `pipeline.mappings[${index}]`;
    const source = ref(m.source);
    const target = ref(m.target);
    const sd = schemas.source(source);
    const td = schemas.target(target);
    if (!sd) problem(`${path}.source`, `table ${m.source} does not exist on the source`);
    if (!td) problem(`${path}.target`, `table ${m.target} does not exist on the target`);
    if (!sd || !td) return;
    const kinds = kindsOf(sd);
    const targetCols = new Map(td.columns.map((c) => [c.name, c]));
    const numericTarget = (c: string) => NUMERIC.has(targetCols.get(c)?.dataType ?? "");
    const plan: TargetPlan = {
      path,
      index,
      source,
      target,
      key: m.key.kind,
      keyColumns: [],
      sourceKey: sd.identity.columns,
      columns: [],
      uniqueKeys: [td.primaryKey, ...td.uniqueKeys.map((k) => k.columns)].filter((k) => k.length > 0),
    };
    // Key.
    if (m.key.kind === "generated") {
      const pk = td.primaryKey;
      if (pk.length !== 1 || !targetCols.get(pk[0]!)?.autoIncrement)
        problem(
          `${path}.key`,
          `"generated" needs a target primary key of one AUTO_INCREMENT column; ${m.target} has ${pk.length === 0 ? "no primary key" : `(${pk.join(", ")})${pk.length === 1 ? " without AUTO_INCREMENT" : ""}`}`,
        );
      plan.keyColumns = pk.slice(0, 1);
    } else if (m.key.kind === "columns") {
      const cols = m.key.columns;
      for (const c of cols)
        if (!targetCols.has(c)) problem(`${path}.key`, `target column "${c}" does not exist in ${m.target}`);
      const sameSet = (k: string[]) => k.length === cols.length && k.every((c) => cols.includes(c));
      if (!plan.uniqueKeys.some(sameSet))
        problem(`${path}.key`, `(${cols.join(", ")}) is not a primary or unique key of ${m.target}`);
      plan.keyColumns = cols;
    } else {
      if (td.identity.kind === "none")
        problem(`${path}.key`, `"source" needs ${m.target} to have a primary key or a NOT NULL unique key`);
      plan.keyColumns = td.identity.columns;
    }
    if (sd.identity.kind === "none")
      problem(
        `${path}.source`,
        `${m.source} has no primary key or NOT NULL unique key: its rows cannot be followed`,
      );
    // Columns.
    const written = new Set<string>();
    for (const [col, raw] of Object.entries(m.columns)) {
      const cpath = `${path}.columns.${col}`;
      const tc = targetCols.get(col);
      if (!tc) {
        problem(cpath, `target column "${col}" does not exist in ${m.target}`);
        continue;
      }
      if (tc.generated) problem(cpath, `"${col}" is a generated column of ${m.target}; it cannot be written`);
      if (m.key.kind === "generated" && col === plan.keyColumns[0])
        problem(cpath, `"${col}" is the key the target generates; it cannot be written`);
      const spec = normalise(raw);
      const numeric = numericTarget(col);
      try {
        if ("column" in spec) {
          if (!kinds.has(spec.column)) {
            problem(cpath, `source column "${spec.column}" does not exist in ${m.source}`);
            continue;
          }
          const from = spec.column;
          const cast = spec.cast;
          const isNum = kinds.numeric(from);
          const value = cast
            ? (row: Record<string, SqlValue>) => toSql(castValue(fromSql(row[from], isNum), cast))
            : (row: Record<string, SqlValue>) => row[from] ?? null;
          const plan_: ColumnPlan = { target: col, value, sourceColumn: from, ...(cast ? { cast } : {}) };
          plan.columns.push(plan_);
          pending.push({
            plan,
            col: plan_,
            path: cpath,
            ...(spec.references ? { references: spec.references } : {}),
          });
        } else if ("const" in spec) {
          const v: SqlValue = typeof spec.const === "boolean" ? (spec.const ? 1 : 0) : spec.const;
          plan.columns.push({ target: col, value: () => v });
        } else {
          const e = compileExpr(spec.expr, kinds);
          const cast = spec.cast;
          plan.columns.push({
            target: col,
            value: (row) => {
              if (!cast && e.text) {
                const t = e.text(row);
                if (t !== undefined) return t;
              }
              let v: ExprValue = e.run(row);
              if (cast) v = castValue(v, cast);
              // A boolean into a text column would read "1"/"0" anyway; numbers stay exact text.
              return numeric && typeof v === "boolean" ? (v ? 1 : 0) : toSql(v);
            },
          });
        }
      } catch (err) {
        if (err instanceof ExprError) problem(cpath, err.message);
        else throw err;
      }
      written.add(col);
    }
    for (const d of m.drop)
      if (!kinds.has(d)) problem(`${path}.drop`, `source column "${d}" does not exist in ${m.source}`);
    if (m.copy) {
      const dropped = new Set(m.drop);
      const renamed = new Set(
        Object.values(m.columns).flatMap((raw) => {
          const spec = normalise(raw);
          return "column" in spec ? [spec.column] : [];
        }),
      );
      for (const c of sd.columns) {
        const tc = targetCols.get(c.name);
        if (!tc || tc.generated || written.has(c.name) || dropped.has(c.name)) continue;
        if (m.key.kind === "generated" && c.name === plan.keyColumns[0]) continue;
        // A renamed column is not also copied under its own name.
        if (renamed.has(c.name)) continue;
        const name = c.name;
        const plan_: ColumnPlan = { target: name, value: (row) => row[name] ?? null, sourceColumn: name };
        plan.columns.push(plan_);
        pending.push({ plan, col: plan_, path: `${path}.copy` });
        written.add(name);
      }
    }
    if (m.key.kind !== "generated")
      for (const k of plan.keyColumns)
        if (!written.has(k))
          problem(`${path}.columns`, `key column "${k}" of ${m.target} is not written by the mapping`);
    for (const c of td.columns)
      if (
        !c.optional &&
        !written.has(c.name) &&
        !(m.key.kind === "generated" && c.name === plan.keyColumns[0])
      )
        problem(
          `${path}.columns`,
          `target column "${c.name}" is NOT NULL without a default, and the mapping does not write it`,
        );
    if (plan.columns.length === 0) problem(`${path}.columns`, `writes no column of ${m.target}`);
    if (m.filter) {
      try {
        plan.filter = compileExpr(m.filter, kinds);
      } catch (err) {
        if (err instanceof ExprError) problem(`${path}.filter`, err.message);
        else throw err;
      }
    }
    if (m.hooks) {
      const h = schemas.hooks.get(m.hooks);
      if (!h || h instanceof Error)
        problem(`${path}.hooks`, h ? h.message : `module ${m.hooks} was not loaded`);
      else plan.hook = { module: m.hooks, run: h };
    }
    plans.push(plan);
  });

  // Relationships: the source's foreign keys and the declared ones.
  const relationships: CompiledPipeline["relationships"] = schemas.sourceForeignKeys.map((fk) => ({
    child: fk.child,
    columns: fk.columns,
    parent: fk.parent,
    parentColumns: fk.parentColumns,
    declared: false,
  }));
  cfg.relationships.forEach((r, i) => {
    const path = `pipeline.relationships[${i}]`;
    const child = { db: r.child.db, table: r.child.table };
    const parent = { db: r.parent.db, table: r.parent.table };
    const cd = schemas.source(child);
    const pd = schemas.source(parent);
    if (!cd) problem(`${path}.child`, `table ${formatTableRef(child)} does not exist on the source`);
    if (!pd) problem(`${path}.parent`, `table ${formatTableRef(parent)} does not exist on the source`);
    if (cd)
      for (const c of r.child.columns)
        if (!cd.columns.some((x) => x.name === c))
          problem(`${path}.child`, `column "${c}" does not exist in ${formatTableRef(child)}`);
    if (pd)
      for (const c of r.parent.columns)
        if (!pd.columns.some((x) => x.name === c))
          problem(`${path}.parent`, `column "${c}" does not exist in ${formatTableRef(parent)}`);
    if (r.child.columns.length !== r.parent.columns.length)
      problem(path, "child and parent name different numbers of columns");
    relationships.push({
      child,
      columns: r.child.columns,
      parent,
      parentColumns: r.parent.columns,
      declared: true,
    });
  });

  // Foreign-key rewrite: a copied column that references a parent whose target generates keys.
  const bySource = new Map<string, TargetPlan[]>();
  for (const p of plans) bySource.set(tableKey(p.source), [...(bySource.get(tableKey(p.source)) ?? []), p]);
  for (const { plan, col, path, references } of pending) {
    const rel = relationships.find(
      (r) =>
        tableKey(r.child) === tableKey(plan.source) &&
        r.columns.length === 1 &&
        r.columns[0] === col.sourceColumn,
    );
    if (!rel) continue;
    const parents = (bySource.get(tableKey(rel.parent)) ?? []).filter((p) => p.key === "generated");
    if (parents.length === 0) continue;
    let parent: TargetPlan | undefined;
    if (references) {
      parent = parents.find((p) => formatTableRef(p.target) === references);
      if (!parent) {
        problem(
          path,
          `references ${references}, but ${formatTableRef(rel.parent)} is not mapped there with key "generated"`,
        );
        continue;
      }
    } else if (parents.length === 1) parent = parents[0];
    else {
      const fk = schemas.targetForeignKeys.find(
        (f) =>
          tableKey(f.child) === tableKey(plan.target) &&
          f.columns.length === 1 &&
          f.columns[0] === col.target,
      );
      parent = fk && parents.find((p) => tableKey(p.target) === tableKey(fk.parent));
      if (!parent) {
        problem(
          path,
          `${formatTableRef(rel.parent)} maps to several tables with generated keys (${parents.map((p) => formatTableRef(p.target)).join(", ")}); say which with { column: ${col.sourceColumn}, references: db.table }`,
        );
        continue;
      }
    }
    if (
      rel.parentColumns.length !== 1 ||
      parent!.sourceKey.length !== 1 ||
      parent!.sourceKey[0] !== rel.parentColumns[0]
    ) {
      problem(
        path,
        `references ${formatTableRef(rel.parent)}(${rel.parentColumns.join(", ")}), which is not that table's key (${parent!.sourceKey.join(", ")}); a generated key can only be followed through it`,
      );
      continue;
    }
    col.parent = parent;
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, pipeline: { plans, bySource, relationships } };
}
