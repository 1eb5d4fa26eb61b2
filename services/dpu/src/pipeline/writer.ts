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
import { sleep } from "@dfs/common";
import { type CompiledPipeline, MappingError, mapChange, type TargetPlan } from "@dfs/mapping";
import type { MysqlSession } from "@dfs/mysql";
import type { Statement } from "../plan.js";
import type { Change, TargetTable } from "../sink.js";
import { Batch, type Item, planWork, type Work } from "./batch.js";
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
   * Maps and plans a lane's changes ahead of its apply (while the group before is applied): the
   * CPU work of mapping and level planning leaves the target's critical path. A mapping error is kept and thrown by apply.
   */
  prepare(changes: readonly Change[]): void {
    if (this.prepared.has(changes)) return;
    try {
      this.prepared.set(changes, this.plan(changes));
    } catch (err) {
      this.prepared.set(changes, err instanceof Error ? err : new Error(String(err)));
    }
  }

  private readonly prepared = new WeakMap<readonly Change[], { work: Work; needed: string[] } | Error>();

  private async applyIn(
    s: MysqlSession,
    changes: readonly Change[],
    run: (st: Statement[]) => Promise<unknown>,
    begin: boolean,
  ): Promise<Statement[]> {
    const done = this.prepared.get(changes);
    this.prepared.delete(changes);
    if (done instanceof Error) throw done;
    const { work, needed } = done ?? this.plan(changes);
    await this.keymap.load(s, needed);
    return new Batch(this, s, run, begin ? [{ sql: "BEGIN", changes: [] }] : []).write(work);
  }

  /** Maps `changes` and plans their statements' levels: everything that does not need the key map. */
  private plan(changes: readonly Change[]): { work: Work; needed: string[] } {
    const { items, needed } = this.mapAll(changes);
    return { work: planWork(items), needed };
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
        // Key-map entry ids, made once per operation (the batch planner and the look-ups share them).
        const refs = op.row.refs.map((r) => entryId(r.parent.target, r.parent.source, r.key));
        const generated = op.plan.key === "generated";
        const id = generated ? entryId(op.plan.target, op.plan.source, op.key) : null;
        const prev =
          generated && op.kind === "write" && op.previousKey
            ? entryId(op.plan.target, op.plan.source, op.previousKey)
            : null;
        items.push({ op, change, ids: { id, prev, refs } });
        // Entries this lane writes or removes before they are needed are known by then (its
        // overlay): only the others are looked up.
        for (const r of refs) need(r);
        if (id) {
          need(id);
          if (prev) need(prev);
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
    id: string,
    change: Change,
    column: string,
  ): Promise<string> {
    let v = this.keymap.get(id);
    if (v) return v;
    const waitId = `${change.seq}:${change.rowIndex}:${id}`;
    if (!this.waited.has(waitId)) {
      this.waited.add(waitId);
      const deadline = Date.now() + this.o.orphanWaitMs;
      while (!v && Date.now() < deadline) {
        await sleep(ORPHAN_POLL_MS);
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
