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

  /** Writes `work`; resolves with the statements still to send (the caller sends them with its own). */
  async write(work: Work): Promise<Statement[]> {
    for (const part of work) {
      if ("sync" in part) this.pending.push(...planStatements([part.sync], this.w.options.statementRows));
      else for (const lv of part.levels) if (lv) await this.writeLevel(lv);
    }
    this.pending.push(...this.w.keymap.statements(this.touched));
    this.touched = new Map();
    const rest = this.pending;
    this.pending = [];
    return rest;
  }

  private async writeLevel(ops: Mapped[]): Promise<void> {
    const km = this.w.keymap;
    // Foreign keys first: every parent a level references exists (or is known missing) by now.
    for (const { op, change, ids } of ops) {
      const refs = op.row.refs;
      for (let i = 0; i < refs.length; i++) {
        const r = refs[i]!;
        // Known parents (nearly all) without a promise; a missing one waits in parentKey.
        op.row.values[r.column] =
          km.get(ids.refs[i]!) ||
          (await this.w.parentKey(this.s, r.parent, r.key, ids.refs[i]!, change, r.column));
      }
    }
    // Runs by plan and kind; a plan's rows share one column list unless a hook made them.
    const runs: Run[] = [];
    const byPlan = new Map<TargetPlan, Run[]>();
    const add = (
      kind: Run["kind"],
      plan: TargetPlan,
      columns: string[],
      row: MappedRow,
      change: Change,
      id: string,
    ) => {
      let list = byPlan.get(plan);
      if (!list) {
        list = [];
        byPlan.set(plan, list);
      }
      let r = list.find((x) => x.kind === kind && sameColumns(x.columns, columns));
      if (!r) {
        r = { kind, plan, columns, rows: [], ids: [], changes: [] };
        list.push(r);
        runs.push(r);
      }
      r.rows.push(row);
      if (r.changes[r.changes.length - 1] !== change) r.changes.push(change);
      if (id) r.ids.push(id);
    };
    // Updates of mapped rows, by plan and column list (one statement per run and chunk).
    const updates: UpdateRun[] = [];
    const addUpdate = (plan: TargetPlan, row: MappedRow, key: string, change: Change) => {
      let u = updates.find((x) => x.plan === plan && sameColumns(x.columns, row.columns));
      if (!u) {
        u = { plan, columns: row.columns, keys: [], rows: [], changes: [] };
        updates.push(u);
      }
      u.keys.push(key);
      u.rows.push(row);
      u.changes.push(change);
    };
    for (const { op, change, ids } of ops) {
      const plan = op.plan;
      if (plan.key !== "generated") {
        const upsert = op.kind === "write";
        add(
          upsert ? "upsert" : "delete",
          plan,
          upsert ? op.row.columns : plan.keyColumns,
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
        if (op.row.columns.length > 0) addUpdate(plan, op.row, existing, change);
        if (prev && prev !== id) {
          // The source key changed: the map follows the row.
          km.remove(prev);
          this.touched.set(prev, null);
          km.put(id, existing);
          this.touched.set(id, existing);
        }
      } else add("insert-generated", plan, op.row.columns, op.row, change, id);
    }
    for (const u of updates)
      for (let at = 0; at < u.keys.length; at += this.w.options.statementRows)
        this.pending.push(...updateStatements(u, at, at + this.w.options.statementRows));
    const inserts: Run[] = [];
    for (const r of runs) {
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

/** Updates of one level to rows of one generated-key table, with the same columns. */
export interface UpdateRun {
  plan: TargetPlan;
  columns: string[];
  /** The target key of each row. */
  keys: string[];
  rows: MappedRow[];
  changes: Change[];
}

/** An integer key within BIGINT's signed range, written bare so the join compares integers. */
const PLAIN_KEY = /^-?[0-9]{1,18}$/;

/** Values a UNION of literals carries without changing them (no floating point, no bytes). */
function plainValue(v: unknown): boolean {
  return (
    v === null || v === undefined || typeof v === "string" || typeof v === "bigint" || Number.isSafeInteger(v)
  );
}

/**
 * Rows `from`..`to` of an update run. Several rows: one UPDATE joined with the new values (a
 * derived table of literals; the key compared as an integer, so the target is read by its primary
 * key), instead of one statement per row for the server to parse. A key that is not a plain
 * integer, or a value a UNION could retype (a float, bytes), keeps one UPDATE per row. Either way a
 * row the target no longer has is left alone, as a plain UPDATE leaves it.
 */
export function updateStatements(u: UpdateRun, from: number, to: number): Statement[] {
  const keys = u.keys.slice(from, to);
  const rows = u.rows.slice(from, to);
  const changes = u.changes.slice(from, to);
  const table = quoteTable(u.plan.target);
  const pk = quoteId(u.plan.keyColumns[0]!);
  const cols = u.columns;
  const joined =
    keys.length > 1 &&
    keys.every((k) => PLAIN_KEY.test(k)) &&
    rows.every((r) => cols.every((c) => plainValue(r.values[c])));
  if (!joined)
    return rows.map((row, i) => ({
      sql: `UPDATE ${table} SET ${cols.map((c) => `${quoteId(c)} = ${sqlLiteral(row.values[c] ?? null)}`).join(", ")} WHERE ${pk} = ${sqlLiteral(keys[i]!)}`,
      text: `UPDATE ${table} SET (${cols.length} columns) WHERE ${pk} = ?`,
      changes: [changes[i]!],
    }));
  // The derived table's columns are named k, c0, c1, ... by its first SELECT.
  let values = "";
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    values += i === 0 ? "SELECT " : " UNION ALL SELECT ";
    values += i === 0 ? `${keys[i]} AS k` : keys[i];
    for (let c = 0; c < cols.length; c++) {
      values += `,${sqlLiteral(row.values[cols[c]!] ?? null)}`;
      if (i === 0) values += ` AS c${c}`;
    }
  }
  const set = cols.map((c, i) => `t.${quoteId(c)} = v.c${i}`).join(", ");
  return [
    {
      sql: `UPDATE ${table} AS t JOIN (${values}) AS v ON t.${pk} = v.k SET ${set}`,
      text: `UPDATE ${table} JOIN (?) ×${rows.length} SET (${cols.length} columns)`,
      changes,
    },
  ];
}

/**
 * A call's items as the batch writes them: runs of mapped operations planned by levels, and the
 * changes of unmapped tables in order between them. Pure CPU work on the items (no key map state),
 * so it is done while the group before is applied.
 */
export type Work = ({ levels: Mapped[][] } | { sync: Change })[];

export function planWork(items: readonly Item[]): Work {
  const out: Work = [];
  let segment: Mapped[] = [];
  for (const item of items) {
    if ("sync" in item) {
      // A table without a mapping: in order, between what came before and after it.
      if (segment.length > 0) out.push({ levels: planLevels(segment) });
      segment = [];
      out.push(item);
    } else segment.push(item);
  }
  if (segment.length > 0) out.push({ levels: planLevels(segment) });
  return out;
}

function planLevels(ops: readonly Mapped[]): Mapped[][] {
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
  return levels;
}

/** The keys an operation writes: its key-map entries (generated keys) and the target unique keys it has values for. */
function ownKeys(m: Mapped): string[] {
  const out: string[] = [];
  uniqueKeys(m.op, out);
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

/** A plan's target unique keys as they enter the planner: columns and the text before the values. */
const uniqueParts = new WeakMap<TargetPlan, { cols: string[]; prefix: string }[]>();
/** Target unique keys by table and columns -> number: plans that write one target table share them. */
const uniqueKeyIds = new Map<string, number>();

function partsOf(plan: TargetPlan): { cols: string[]; prefix: string }[] {
  let parts = uniqueParts.get(plan);
  if (!parts) {
    // `u<n>` names one unique key of one target table (whichever plan writes it): short, so cheap to
    // hash, and apart from entry ids (`k<n>`).
    const t = `${plan.target.db}\u0000${plan.target.table}`;
    parts = plan.uniqueKeys.map((cols) => {
      const name = `${t}\u0000${cols.join(",")}`;
      let n = uniqueKeyIds.get(name);
      if (n === undefined) {
        n = uniqueKeyIds.size;
        uniqueKeyIds.set(name, n);
      }
      return { cols, prefix: `u${n}\u0000` };
    });
    uniqueParts.set(plan, parts);
  }
  return parts;
}

/** The target unique keys whose columns the row has (a generated key's column it has not). */
function uniqueKeys(op: TargetOp, out: string[]): void {
  const parts = partsOf(op.plan);
  const of = (v: Record<string, unknown>) => {
    for (const { cols, prefix } of parts) {
      let all = true;
      for (const c of cols) if (!(c in v)) all = false;
      if (!all) continue;
      out.push(prefix + encodeKey(cols.map((c) => (v[c] ?? null) as never)));
    }
  };
  of(op.row.values);
  // An update also frees the values of its before image: whoever takes them comes after it.
  if (op.kind === "write" && op.before) of(op.before.values);
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
