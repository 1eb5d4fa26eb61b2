/**
 * One call's target statements for the pipeline writer, planned by levels (as planLane does for
 * sync): each mapped operation goes to the earliest level after every earlier operation on one
 * of its keys (a generated-key entry, a target unique key) and after the level that creates a
 * parent it references; an operation that removes or moves an entry never goes before one that
 * reads it. A level's statements share no key, so they run in any order: all of a level's
 * inserts of one table become one INSERT ... RETURNING, whatever source transactions they came
 * from, and a group costs about one round trip per level (parents, children, grandchildren)
 * instead of one per source transaction. Everything stays inside one target transaction, so
 * a reader never sees the order.
 */
import { encodeKey, type MappedRow, type TargetOp, type TargetPlan } from "@dfs/mapping";
import { type MysqlSession, quoteId, quoteTable, sqlLiteral } from "@dfs/mysql";
import { planStatements, type Statement, statementOf, tuples } from "../plan.js";
import type { Change } from "../sink.js";
import type { PipelineWriter } from "./writer.js";

/** Key-map entry ids of an operation: its own (generated keys), the one it moves from, its parents'. */
export interface OpIds {
  id: string | null;
  prev: string | null;
  refs: string[];
}
export type Item = { op: TargetOp; change: Change; ids: OpIds } | { sync: Change };
type Mapped = { op: TargetOp; change: Change; ids: OpIds };

/** Rows of one level that share one statement. */
interface Run {
  kind: "upsert" | "delete" | "insert-generated";
  plan: TargetPlan;
  columns: string[];
  rows: MappedRow[];
  /** insert-generated: the key map entry of each row. */
  ids: string[];
  changes: Change[];
}

export class Batch {
  /** Key map entries this call adds (target key) or removes (null); the last change of each wins. */
  private touched = new Map<string, string | null>();

  constructor(
    private readonly w: PipelineWriter,
    private readonly s: MysqlSession,
    private readonly run: (st: Statement[]) => Promise<unknown>,
    /** Sent before anything else (BEGIN). */
    private pending: Statement[],
  ) {}

  /** Writes `items`; resolves with the statements still to send (the caller sends them with its own). */
  async write(items: Item[]): Promise<Statement[]> {
    let segment: Mapped[] = [];
    for (const item of items) {
      if ("sync" in item) {
        // A table without a mapping: in order, between what came before and after it.
        await this.writeLevels(segment);
        segment = [];
        this.pending.push(...planStatements([item.sync], this.w.options.statementRows));
      } else segment.push(item);
    }
    await this.writeLevels(segment);
    this.pending.push(...this.w.keymap.statements(this.touched));
    this.touched = new Map();
    const rest = this.pending;
    this.pending = [];
    return rest;
  }

  private async writeLevels(ops: Mapped[]): Promise<void> {
    if (ops.length === 0) return;
    const levels: Mapped[][] = [];
    /** The level of the last operation that wrote or removed a key, and of the last that read one. */
    const wrote = new Map<string, number>();
    const read = new Map<string, number>();
    for (const it of ops) {
      const own = ownKeys(it);
      const refs = it.ids.refs;
      let level = 0;
      for (const k of own) {
        const w = wrote.get(k);
        if (w !== undefined && w + 1 > level) level = w + 1;
        const r = read.get(k);
        if (r !== undefined && r > level) level = r; // the same level reads first (refs resolve at its start)
      }
      for (const k of refs) {
        const w = wrote.get(k);
        if (w !== undefined && w + 1 > level) level = w + 1;
      }
      const lv = levels[level];
      if (lv) lv.push(it);
      else levels[level] = [it];
      for (const k of own) wrote.set(k, level);
      for (const k of refs) if ((read.get(k) ?? -1) < level) read.set(k, level);
    }
    for (const lv of levels) if (lv) await this.writeLevel(lv);
  }

  private async writeLevel(ops: Mapped[]): Promise<void> {
    const km = this.w.keymap;
    // Foreign keys first: every parent a level references exists (or is known missing) by now.
    for (const { op, change, ids } of ops)
      for (const [i, r] of op.row.refs.entries())
        op.row.values[r.column] = await this.w.parentKey(
          this.s,
          r.parent,
          r.key,
          ids.refs[i]!,
          change,
          r.column,
        );
    const runs = new Map<string, Run>();
    const add = (
      kind: Run["kind"],
      plan: TargetPlan,
      columns: string[],
      row: MappedRow,
      change: Change,
      id: string,
    ) => {
      const key = `${kind}\u0000${plan.index}\u0000${columns.join("\u0000")}`;
      let r = runs.get(key);
      if (!r) {
        r = { kind, plan, columns, rows: [], ids: [], changes: [] };
        runs.set(key, r);
      }
      r.rows.push(row);
      if (r.changes[r.changes.length - 1] !== change) r.changes.push(change);
      if (id) r.ids.push(id);
    };
    for (const { op, change, ids } of ops) {
      const plan = op.plan;
      if (plan.key !== "generated") {
        const upsert = op.kind === "write";
        add(
          upsert ? "upsert" : "delete",
          plan,
          upsert ? Object.keys(op.row.values) : plan.keyColumns,
          op.row,
          change,
          "",
        );
        continue;
      }
      const id = ids.id!;
      const prev = ids.prev;
      const existing = km.get(prev ?? id) ?? km.get(id);
      const pk = quoteId(plan.keyColumns[0]!);
      const table = quoteTable(plan.target);
      if (op.kind === "remove") {
        if (!existing) continue; // never mapped (filtered out before, or older than the pipeline): nothing there
        this.pending.push({
          sql: `DELETE FROM ${table} WHERE ${pk} = ${sqlLiteral(existing)}`,
          text: `DELETE FROM ${table} WHERE ${pk} = ?`,
          changes: [change],
        });
        km.remove(id);
        this.touched.set(id, null);
      } else if (existing) {
        const cols = Object.keys(op.row.values);
        if (cols.length > 0)
          this.pending.push({
            sql: `UPDATE ${table} SET ${cols.map((c) => `${quoteId(c)} = ${sqlLiteral(op.row.values[c] ?? null)}`).join(", ")} WHERE ${pk} = ${sqlLiteral(existing)}`,
            text: `UPDATE ${table} SET (${cols.length} columns) WHERE ${pk} = ?`,
            changes: [change],
          });
        if (prev && prev !== id) {
          // The source key changed: the map follows the row.
          km.remove(prev);
          this.touched.set(prev, null);
          km.put(id, existing);
          this.touched.set(id, existing);
        }
      } else add("insert-generated", plan, Object.keys(op.row.values), op.row, change, id);
    }
    const inserts: Run[] = [];
    for (const r of runs.values()) {
      if (r.kind === "insert-generated") inserts.push(r);
      else for (const part of chunks(r, this.w.options.statementRows)) this.pending.push(runStatement(part));
    }
    for (const r of inserts)
      for (const part of chunks(r, this.w.options.statementRows)) {
        const keys = await this.insertGenerated(part);
        for (let i = 0; i < part.ids.length; i++) {
          km.put(part.ids[i]!, keys[i]!);
          this.touched.set(part.ids[i]!, keys[i]!);
        }
      }
  }

  /** Inserts rows whose key the target makes; resolves with their keys, in row order. */
  private async insertGenerated(r: Run): Promise<string[]> {
    const t = quoteTable(r.plan.target);
    const pk = r.plan.keyColumns[0]!;
    const head =
      r.columns.length > 0
        ? `INSERT INTO ${t} (${r.columns.map(quoteId).join(",")}) VALUES `
        : `INSERT INTO ${t} () VALUES `;
    if (this.w.options.returning) {
      // RETURNING gives each inserted row's key, in the order of the rows. The statements queued
      // before it go in the same round trip.
      const insert: Statement = {
        sql: `${head}${tuples(
          r.rows.map((row) => row.values),
          r.columns,
        )} RETURNING ${quoteId(pk)} AS k`,
        text: `${head}(?) ×${r.rows.length} RETURNING ${quoteId(pk)}`,
        changes: r.changes,
      };
      const queued = this.pending;
      this.pending = [];
      const rows = (await this.run([...queued, insert])) as Record<string, unknown>[];
      if (rows.length !== r.rows.length)
        throw new Error(`INSERT ... RETURNING gave ${rows.length} keys for ${r.rows.length} rows`);
      return rows.map((x) => String(x.k));
    }
    // MySQL has no RETURNING: one row per statement, its insertId.
    const queued = this.pending;
    this.pending = [];
    if (queued.length > 0) await this.run(queued);
    const keys: string[] = [];
    for (const row of r.rows) {
      const res = await this.s.query<{ insertId: number | string }>(
        `${head}${tuples([row.values], r.columns)}`,
      );
      keys.push(String(res.insertId));
    }
    return keys;
  }
}

/** The keys an operation writes: its key-map entries (generated keys) and the target unique keys it has values for. */
function ownKeys(m: Mapped): string[] {
  const out = uniqueKeys(m.op);
  if (m.ids.id) out.push(m.ids.id);
  if (m.ids.prev) out.push(m.ids.prev);
  return out;
}

function* chunks(r: Run, size: number): Generator<Run> {
  if (r.rows.length <= size) {
    yield r;
    return;
  }
  for (let at = 0; at < r.rows.length; at += size) {
    const rows = r.rows.slice(at, at + size);
    const ids = r.ids.slice(at, at + size);
    yield { ...r, rows, ids, changes: r.changes };
  }
}

/** An upsert or delete run as a statement, built as sync builds its own. */
function runStatement(r: Run): Statement {
  return statementOf({
    kind: r.kind === "delete" ? "delete" : "upsert",
    table: { ref: r.plan.target, key: r.plan.keyColumns },
    columns: r.columns,
    rows: r.rows.map((row) => row.values),
    changes: r.changes,
  });
}

/** The target unique keys whose columns the row has (a generated key's column it has not). */
function uniqueKeys(op: TargetOp): string[] {
  const t = `${op.plan.target.db}\u0000${op.plan.target.table}`;
  const of = (v: Record<string, unknown>) =>
    op.plan.uniqueKeys
      .filter((cols) => cols.every((c) => c in v))
      .map(
        (cols) => `${t}\u0000${cols.join(",")}\u0000${encodeKey(cols.map((c) => (v[c] ?? null) as never))}`,
      );
  // An update also frees the values of its before image: whoever takes them comes after it.
  return op.kind === "write" && op.before
    ? [...of(op.row.values), ...of(op.before.values)]
    : of(op.row.values);
}
