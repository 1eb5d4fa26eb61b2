import { type ArchivePeriod, ArchiveWriterThread, type CheckpointWrite } from "@dfs/archive";
import { formatTableRef, Position, type TableRef, tableKey } from "@dfs/codec";
import { errorMessage, type Logger } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { type MysqlEndpoint, MysqlSession, READ_SESSION, showCreateTable } from "@dfs/mysql";
import {
  type ApplyGroup,
  type Change,
  type DdlChange,
  formatUnits,
  type Lane,
  parseUnits,
  type Rejected,
  type Sink,
  type SinkCheckpoint,
  type SinkEvents,
  type SinkStats,
  type TargetTable,
} from "../sink.js";

/** Every column of a change's image is archived: a set that has them all. */
class EveryColumn extends Set<string> {
  override has(): boolean {
    return true;
  }
}

export interface ArchiveSinkOptions {
  dir: string;
  period: ArchivePeriod;
  maxFileBytes: number;
  retention: { maxAgeMs?: number | undefined; maxBytes?: number | undefined };
  consumer: string;
  /** The source, to keep each table's CREATE TABLE beside its changes (best effort). */
  source?: MysqlEndpoint;
  log: Logger;
  events?: SinkEvents;
}

/**
 * The backup use's sink: the stream into the SQLite archive (@dfs/archive). One lane: each group
 * is one SQLite transaction holding its changes and the checkpoint record, exactly as the MySQL
 * sink keeps them in a target (the low-water mark, or an applied record when a group ends inside a
 * capture group), so a restarted DPU resumes exactly after what the archive holds. Nothing is ever
 * refused: every change is kept with its exact typed images. SQLite runs on a thread of its own
 * (ArchiveWriterThread): while it inserts and commits one group, the DPU's thread pulls and decodes
 * the next; a group's promise resolves once it is committed, so messages are acknowledged after.
 */
export class ArchiveSink implements Sink {
  readonly parallelism = 1;
  readonly stats: SinkStats = { rowsApplied: 0, rejected: 0, retries: 0, lastError: "", waitingFor: "" };
  private writer: ArchiveWriterThread | null = null;
  private readonly tables = new Map<string, TargetTable>();
  /** Tables a DDL statement changed: their definition is kept again, as it is now. */
  private readonly redefine = new Set<string>();
  /** The group boundary the last write passed; written with the next write (or by `flush`). */
  private pendingLow = 0;
  private lowWater = 0;

  constructor(private readonly o: ArchiveSinkOptions) {}

  async open(): Promise<SinkCheckpoint> {
    this.writer = await ArchiveWriterThread.open({
      dir: this.o.dir,
      period: this.o.period,
      maxFileBytes: this.o.maxFileBytes,
      retention: this.o.retention,
      consumer: this.o.consumer,
      log: (msg, fields) => this.o.log.info(fields, msg),
    });
    const cp = await this.writer.readCheckpoint();
    const applied = new Set<string>();
    for (const u of cp.units) for (const k of parseUnits(u)) applied.add(k);
    this.lowWater = cp.lowWater;
    this.o.log.info({ dir: this.o.dir, file: this.writer.current ?? "(none yet)" }, "archive opened");
    return { lowWater: cp.lowWater, applied };
  }

  async describe(source: TableRef): Promise<TargetTable> {
    const key = tableKey(source);
    let t = this.tables.get(key);
    if (!t) {
      t = { ref: source, columns: new EveryColumn(), key: [], keyKind: "none", uniqueKeys: [] };
      this.tables.set(key, t);
      await this.keepDefinition(source);
    }
    return t;
  }

  prepare(_group: ApplyGroup): void {}

  async applyGroup(group: ApplyGroup): Promise<Rejected[]> {
    const w = this.need();
    // As in the MySQL sink: alone and whole, the write moves the low-water mark itself; otherwise
    // it records its source transactions and the mark follows with the next write.
    const alone = group.lanes.length === 1 && group.whole;
    for (const [i, lane] of group.lanes.entries()) {
      const started = performance.now();
      const cp: CheckpointWrite = alone ? { lowWater: group.lastSeq } : this.appliedRecord(lane, i === 0);
      await w.write(lane.changes, cp);
      this.stats.rowsApplied += lane.changes.length;
      this.o.events?.committed?.(lane.changes, performance.now() - started);
    }
    if (alone) this.lowWater = group.lastSeq;
    this.pendingLow = alone ? 0 : group.lastSeq;
    return [];
  }

  async applyDdl(ddl: DdlChange, seq: number): Promise<void> {
    const started = performance.now();
    await this.need().writeDdl(
      {
        seq,
        db: ddl.db,
        statement: ddl.statement,
        tables: ddl.tables,
        gtid: ddl.gtid ?? "",
        position: ddl.position ?? Position.NONE,
        commitTime: ddl.commitTime ?? Math.floor(Date.now() / 1000),
      },
      { lowWater: seq },
    );
    this.moved(seq);
    // Definitions are kept again after a schema change (a replay creates tables as they were).
    for (const t of ddl.tables) {
      this.tables.delete(tableKey(t));
      this.redefine.add(tableKey(t));
    }
    this.o.events?.ddl?.(ddl.db, ddl.statement, performance.now() - started);
  }

  async advance(seq: number): Promise<void> {
    await this.need().saveCheckpoint({ lowWater: seq });
    this.moved(seq);
  }

  async flush(): Promise<void> {
    if (this.pendingLow > 0) await this.advance(this.pendingLow);
  }

  async applyLargePart(changes: readonly Change[]): Promise<Rejected[]> {
    const w = this.need();
    try {
      await w.writePart(changes);
    } catch (err) {
      await w.abortLarge().catch(() => {});
      throw err;
    }
    this.stats.rowsApplied += changes.length;
    return [];
  }

  async commitLarge(seq: number): Promise<void> {
    const w = this.need();
    try {
      await w.commitLarge({ lowWater: seq });
    } catch (err) {
      await w.abortLarge().catch(() => {});
      throw err;
    }
    this.moved(seq);
  }

  async replay(_changes: readonly Change[]): Promise<void> {
    throw new Error(
      "the archive refuses nothing, so it has no dead letters of its own to replay; replay them into a database with dfs dlq replay -c <a config with a target>",
    );
  }

  async close(): Promise<void> {
    const w = this.writer;
    this.writer = null;
    await w?.close();
  }

  private moved(seq: number): void {
    this.lowWater = seq;
    this.pendingLow = 0;
  }

  private need(): ArchiveWriterThread {
    if (!this.writer) throw new Error("the archive sink is not open");
    return this.writer;
  }

  /** A write that is not all of the messages up to a point: its applied record (see sink.ts). */
  private appliedRecord(lane: Lane, first: boolean): CheckpointWrite {
    const head = lane.units[0]!;
    const maxSeq = lane.units[lane.units.length - 1]!.seq;
    const applied = { seq: head.seq, firstRow: head.row, maxSeq, units: formatUnits(lane.units) };
    return first && this.pendingLow > 0 ? { lowWater: this.pendingLow, applied } : { applied };
  }

  /**
   * The source table's CREATE TABLE, kept in the archive once per file (for a replay into an empty
   * database). Best effort: a source that cannot answer costs a warning, never the archive.
   */
  private async keepDefinition(ref: TableRef): Promise<void> {
    const w = this.need();
    const changed = this.redefine.delete(tableKey(ref));
    if (!this.o.source || (!changed && (await w.hasDefinition(ref)))) return;
    let s: MysqlSession | null = null;
    try {
      s = await MysqlSession.open(this.o.source, {
        role: "source",
        setup: READ_SESSION,
        connectTimeoutMs: 5000,
      });
      const sql = await showCreateTable(s, ref);
      if (sql) await w.recordDefinition(ref, this.lowWater, sql);
    } catch (err) {
      this.o.log.warn(
        { table: formatTableRef(ref), err: errorMessage(err) },
        "could not keep the table's definition in the archive (a replay then needs the table to exist)",
      );
    } finally {
      await s?.close();
    }
  }
}

/** The archive sink of a config (the backup use: `archive` set, no `target`). */
export function archiveSinkOf(cfg: DfsConfig, o: { log: Logger; events?: SinkEvents }): ArchiveSink {
  const a = cfg.archive!;
  return new ArchiveSink({
    dir: a.dir,
    period: a.period,
    maxFileBytes: a.maxFileBytes,
    retention: { maxAgeMs: a.retention.maxAge, maxBytes: a.retention.maxBytes },
    consumer: `${cfg.source.id}:dpu-${cfg.dpu.group}`,
    source: cfg.source.endpoint,
    log: o.log,
    ...(o.events ? { events: o.events } : {}),
  });
}
