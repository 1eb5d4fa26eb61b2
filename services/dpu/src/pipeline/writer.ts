/**
 * The pipeline use's writer: inside the sink's open target transaction, each source change goes
 * through its mappings (@dfs/mapping) and becomes target statements, in source order:
 *  - key "source"/"columns": multi-row upserts and deletes by the mapped key, as in sync;
 *  - key "generated": the insert leaves the key to the target and reads it back (MariaDB:
 *    INSERT ... RETURNING, row by row on MySQL), never inferred from a multi-row insert; the key
 *    map entry goes in the same transaction; updates and deletes reach the mapped row;
 *  - foreign-key columns that reference a generated-key parent are rewritten to the parent's
 *    target key; a child whose parent has none waits (orphanWaitMs), then is refused with the
 *    reason (a MappingError, which the sink dead-letters); it is never written with a source id.
 * Changes of tables without a mapping are applied as in sync.
 */
import { tableKey } from "@dfs/codec";
import type { Logger } from "@dfs/common";
import {
  type CompiledPipeline,
  type MappedRow,
  MappingError,
  mapChange,
  type TargetOp,
  type TargetPlan,
} from "@dfs/mapping";
import { type MysqlSession, quoteId, quoteTable, sqlLiteral } from "@dfs/mysql";
import { planStatements, type Statement } from "../plan.js";
import type { Change, TargetTable } from "../sink.js";
import { entryId, KeyMap } from "./keymap.js";

export interface PipelineWriterOptions {
  pipeline: CompiledPipeline;
  /** Source tables' descriptions as the transaction builder needs them (mapped tables). */
  sourceTables: ReadonlyMap<string, TargetTable>;
  metaDatabase: string;
  orphanWaitMs: number;
  statementRows: number;
  /** Whether the target has INSERT ... RETURNING (MariaDB 10.5+). */
  returning: boolean;
  log: Logger;
}

type Item = { op: TargetOp; change: Change } | { sync: Change };

/** Consecutive rows that share one statement. */
interface Run {
  kind: "upsert" | "delete" | "insert-generated";
  plan: TargetPlan;
  columns: string[];
  rows: MappedRow[];
  /** insert-generated: the key map entry of each row. */
  ids: string[];
  changes: Change[];
}

const ORPHAN_POLL_MS = 200;

export class PipelineWriter {
  readonly keymap: KeyMap;
  /** Children that already waited for a parent in this transaction: they are not made to wait again. */
  private readonly waited = new Set<string>();

  constructor(private readonly o: PipelineWriterOptions) {
    this.keymap = new KeyMap(o.metaDatabase);
  }

  /** The transaction builder's view of a mapped source table (undefined: not mapped). */
  describe(source: { db: string; table: string }): TargetTable | undefined {
    return this.o.sourceTables.get(tableKey(source));
  }

  /** Applies `changes` on `s` inside its open transaction; `run` sends statements (batched round trips). */
  /**
   * Applies `changes` on `s`; `run` sends statements (batched round trips). With `begin`, the
   * transaction is opened by the first statements sent (the key-map look-ups before it are plain
   * reads of entries only this DPU writes). Resolves with the statements still to send (the key
   * map's): the caller sends them with its own (the checkpoint, COMMIT), in one round trip.
   */
  async apply(
    s: MysqlSession,
    changes: readonly Change[],
    run: (st: Statement[]) => Promise<unknown>,
    o: { begin?: boolean } = {},
  ): Promise<Statement[]> {
    const mark = this.keymap.mark();
    try {
      return await this.applyIn(s, changes, run, o.begin ?? false);
    } catch (err) {
      this.keymap.restore(mark);
      throw err;
    }
  }

  /** Whether a schema change touches mapped tables (or a database that holds them): not for the target. */
  ownsDdl(ddl: { db: string; statement: string; tables: readonly { db: string; table: string }[] }): boolean {
    if (ddl.tables.some((t) => this.o.sourceTables.has(tableKey(t)))) return true;
    if (ddl.tables.length > 0) return false;
    const dbs = new Set([...this.o.sourceTables.values()].map((t) => t.ref.db));
    return (
      dbs.has(ddl.db) ||
      [...dbs].some((d) => new RegExp(`\\b${d.replace(/[^\w]/g, "\\$&")}\\b`).test(ddl.statement))
    );
  }

  committed(): void {
    this.keymap.committed();
    this.waited.clear();
  }

  rolledBack(): void {
    this.keymap.rolledBack();
  }

  /**
   * Maps a lane's changes ahead of its apply (while the group before is applied): the CPU work of
   * mapping leaves the target's critical path. A mapping error is kept and thrown by apply.
   */
  prepare(changes: readonly Change[]): void {
    if (this.prepared.has(changes)) return;
    try {
      this.prepared.set(changes, this.mapAll(changes));
    } catch (err) {
      this.prepared.set(changes, err instanceof Error ? err : new Error(String(err)));
    }
  }

  private readonly prepared = new WeakMap<readonly Change[], { items: Item[]; needed: string[] } | Error>();

  private async applyIn(
    s: MysqlSession,
    changes: readonly Change[],
    run: (st: Statement[]) => Promise<unknown>,
    begin: boolean,
  ): Promise<Statement[]> {
    const done = this.prepared.get(changes);
    this.prepared.delete(changes);
    if (done instanceof Error) throw done;
    const { items, needed } = done ?? this.mapAll(changes);
    await this.keymap.load(s, needed);
    return new Batch(this, s, run, begin ? [{ sql: "BEGIN", changes: [] }] : []).write(items);
  }

  private mapAll(changes: readonly Change[]): { items: Item[]; needed: string[] } {
    const items: Item[] = [];
    const needed: string[] = [];
    const touched = new Set<string>();
    const need = (id: string) => {
      if (!touched.has(id)) needed.push(id);
    };
    for (const change of changes) {
      const key = tableKey(change.ref);
      if (!this.o.pipeline.bySource.has(key)) {
        items.push({ sync: change });
        continue;
      }
      for (const op of mapChange(this.o.pipeline, change, key)) {
        items.push({ op, change });
        // Entries this lane writes or removes before they are needed are known by then (its
        // overlay): only the others are looked up.
        for (const r of op.row.refs) need(entryId(r.parent.target, r.parent.source, r.key));
        if (op.plan.key === "generated") {
          const id = entryId(op.plan.target, op.plan.source, op.key);
          need(id);
          if (op.kind === "write" && op.previousKey)
            need(entryId(op.plan.target, op.plan.source, op.previousKey));
          touched.add(id);
        }
      }
    }
    return { items, needed };
  }

  /** The target key of a parent's source key, waiting (bounded) for it to be mapped. */
  async parentKey(
    s: MysqlSession,
    parent: TargetPlan,
    key: string,
    change: Change,
    column: string,
  ): Promise<string> {
    const id = entryId(parent.target, parent.source, key);
    let v = this.keymap.get(id);
    if (v) return v;
    const waitId = `${change.seq}:${change.rowIndex}:${id}`;
    if (!this.waited.has(waitId)) {
      this.waited.add(waitId);
      const deadline = Date.now() + this.o.orphanWaitMs;
      while (!v && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, ORPHAN_POLL_MS));
        await this.keymap.load(s, [id], true);
        v = this.keymap.get(id);
      }
      if (v) return v;
    }
    throw new MappingError(
      `column ${column} references ${parent.source.db}.${parent.source.table} key ${key}, which has no row in ${parent.target.db}.${parent.target.table} (not mapped after ${this.o.orphanWaitMs} ms): the child is not written with a source id`,
    );
  }

  get options(): PipelineWriterOptions {
    return this.o;
  }
}

/** One call's statements: runs of rows, flushed when a later row needs a key they make. */
class Batch {
  private current: Run | null = null;
  /** Key map entries the current insert run will create. */
  private creating = new Set<string>();
  /** Key map entries this call adds (target key) or removes (null); the last change of each wins. */
  private touched = new Map<string, string | null>();

  constructor(
    private readonly w: PipelineWriter,
    private readonly s: MysqlSession,
    private readonly run: (st: Statement[]) => Promise<unknown>,
    /** Sent before anything else (BEGIN). */
    private pending: Statement[],
  ) {}

  async write(items: Item[]): Promise<Statement[]> {
    const o = this.w.options;
    for (const item of items) {
      if ("sync" in item) {
        await this.close();
        this.pending.push(...planStatements([item.sync], o.statementRows));
        continue;
      }
      const { op, change } = item;
      const plan = op.plan;
      // Foreign keys first: the values written are the parents' target keys.
      for (const r of op.row.refs) {
        if (this.creating.has(entryId(r.parent.target, r.parent.source, r.key))) await this.close();
        op.row.values[r.column] = await this.w.parentKey(this.s, r.parent, r.key, change, r.column);
      }
      if (plan.key !== "generated") {
        const kind = op.kind === "write" ? "upsert" : "delete";
        const columns = kind === "upsert" ? Object.keys(op.row.values) : plan.keyColumns;
        await this.add(kind, plan, columns, op.row, change, "");
        continue;
      }
      const id = entryId(plan.target, plan.source, op.key);
      const prev =
        op.kind === "write" && op.previousKey ? entryId(plan.target, plan.source, op.previousKey) : null;
      if (this.creating.has(id) || (prev && this.creating.has(prev))) await this.close();
      const km = this.w.keymap;
      const existing = km.get(prev ?? id) ?? km.get(id);
      if (op.kind === "remove") {
        if (!existing) continue; // never mapped (filtered out before, or older than the pipeline): nothing there
        await this.close();
        const pk = plan.keyColumns[0]!;
        this.pending.push({
          sql: `DELETE FROM ${quoteTable(plan.target)} WHERE ${quoteId(pk)} = ${sqlLiteral(existing)}`,
          text: `DELETE FROM ${quoteTable(plan.target)} WHERE ${quoteId(pk)} = ?`,
          changes: [change],
        });
        km.remove(id);
        this.touched.set(id, null);
        continue;
      }
      if (existing) {
        await this.close();
        const pk = plan.keyColumns[0]!;
        const cols = Object.keys(op.row.values);
        if (cols.length > 0) {
          const set = cols.map((c) => `${quoteId(c)} = ${sqlLiteral(op.row.values[c] ?? null)}`).join(", ");
          this.pending.push({
            sql: `UPDATE ${quoteTable(plan.target)} SET ${set} WHERE ${quoteId(pk)} = ${sqlLiteral(existing)}`,
            text: `UPDATE ${quoteTable(plan.target)} SET (${cols.length} columns) WHERE ${quoteId(pk)} = ?`,
            changes: [change],
          });
        }
        if (prev && prev !== id) {
          // The source key changed: the map follows the row.
          km.remove(prev);
          this.touched.set(prev, null);
          km.put(id, existing);
          this.touched.set(id, existing);
        }
        continue;
      }
      await this.add("insert-generated", plan, Object.keys(op.row.values), op.row, change, id);
    }
    await this.close();
    this.pending.push(...this.w.keymap.statements(this.touched));
    this.touched = new Map();
    const rest = this.pending;
    this.pending = [];
    return rest;
  }

  private async add(
    kind: Run["kind"],
    plan: TargetPlan,
    columns: string[],
    row: MappedRow,
    change: Change,
    id: string,
  ): Promise<void> {
    const cur = this.current;
    const same =
      cur &&
      cur.kind === kind &&
      cur.plan === plan &&
      cur.rows.length < this.w.options.statementRows &&
      cur.columns.length === columns.length &&
      cur.columns.every((c, i) => c === columns[i]);
    if (!same) {
      await this.close();
      this.current = { kind, plan, columns, rows: [], ids: [], changes: [] };
    }
    const r = this.current!;
    r.rows.push(row);
    if (r.changes[r.changes.length - 1] !== change) r.changes.push(change);
    if (id) {
      r.ids.push(id);
      this.creating.add(id);
    }
  }

  /** Closes an upsert or delete run (a statement to queue); an insert run must be closed with close(). */
  private closeQueued(): void {
    const r = this.current;
    if (!r || r.kind === "insert-generated") return;
    this.current = null;
    this.pending.push(runStatement(r));
  }

  /** Closes the current run; an insert of generated keys is executed now, to learn its keys. */
  private async close(): Promise<void> {
    const r = this.current;
    if (!r) return;
    if (r.kind !== "insert-generated") return this.closeQueued();
    this.current = null;
    const keys = await this.insertGenerated(r);
    for (let i = 0; i < r.ids.length; i++) {
      this.w.keymap.put(r.ids[i]!, keys[i]!);
      this.touched.set(r.ids[i]!, keys[i]!);
    }
    this.creating.clear();
  }

  private async insertGenerated(r: Run): Promise<string[]> {
    const t = quoteTable(r.plan.target);
    const pk = r.plan.keyColumns[0]!;
    const cols = r.columns.map(quoteId).join(",");
    const tuple = (row: MappedRow) =>
      `(${r.columns.map((c) => sqlLiteral(row.values[c] ?? null)).join(",")})`;
    const head = r.columns.length > 0 ? `INSERT INTO ${t} (${cols}) VALUES ` : `INSERT INTO ${t} () VALUES `;
    let keys: string[];
    if (this.w.options.returning) {
      // RETURNING gives each inserted row's key, in the order of the rows. The statements queued
      // before it go in the same round trip.
      const insert: Statement = {
        sql: `${head}${r.rows.map(tuple).join(",")} RETURNING ${quoteId(pk)} AS k`,
        text: `${head}(?) ×${r.rows.length} RETURNING ${quoteId(pk)}`,
        changes: r.changes,
      };
      const queued = this.pending;
      this.pending = [];
      const rows = (await this.run([...queued, insert])) as Record<string, unknown>[];
      if (rows.length !== r.rows.length)
        throw new Error(`INSERT ... RETURNING gave ${rows.length} keys for ${r.rows.length} rows`);
      keys = rows.map((x) => String(x.k));
    } else {
      await this.flush();
      keys = [];
      for (const row of r.rows) {
        const res = await this.s.query<{ insertId: number | string }>(`${head}${tuple(row)}`);
        keys.push(String(res.insertId));
      }
    }
    return keys;
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const st = this.pending;
    this.pending = [];
    await this.run(st);
  }
}

function runStatement(r: Run): Statement {
  const t = quoteTable(r.plan.target);
  const n = r.rows.length;
  if (r.kind === "delete") {
    const cols = r.columns;
    const list = cols.length === 1 ? quoteId(cols[0]!) : `(${cols.map(quoteId).join(",")})`;
    const values = r.rows
      .map((row) =>
        cols.length === 1
          ? sqlLiteral(row.values[cols[0]!] ?? null)
          : `(${cols.map((c) => sqlLiteral(row.values[c] ?? null)).join(",")})`,
      )
      .join(",");
    return {
      sql: `DELETE FROM ${t} WHERE ${list} IN (${values})`,
      text: `DELETE FROM ${t} WHERE ${list} IN (?) ×${n}`,
      changes: r.changes,
    };
  }
  const keys = new Set(r.plan.keyColumns);
  const set = r.columns.filter((c) => !keys.has(c));
  const assign = (set.length > 0 ? set : r.columns.slice(0, 1)).map(
    (c) => `${quoteId(c)}=VALUES(${quoteId(c)})`,
  );
  const head = `INSERT INTO ${t} (${r.columns.map(quoteId).join(",")}) VALUES `;
  const tail = ` ON DUPLICATE KEY UPDATE ${assign.join(",")}`;
  const tuples = r.rows.map(
    (row) => `(${r.columns.map((c) => sqlLiteral(row.values[c] ?? null)).join(",")})`,
  );
  return { sql: head + tuples.join(",") + tail, text: `${head}(?) ×${n}${tail}`, changes: r.changes };
}
