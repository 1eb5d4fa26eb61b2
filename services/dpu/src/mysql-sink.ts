import { formatTableRef, type TableRef, tableKey } from "@dfs/codec";
import {
  backoffMs,
  DataError,
  type DfsError,
  errorMessage,
  type Logger,
  RefusedError,
  sleep,
  TransientError,
} from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import {
  APPLY_SESSION,
  describeTable,
  type MysqlEndpoint,
  MysqlSession,
  quoteId,
  runScript,
  showCreateTable,
} from "@dfs/mysql";
import { DDL_ALREADY_APPLIED, mapDdl } from "./ddl.js";
import type { PipelineWriter } from "./pipeline/writer.js";
import { planLane, planStatements, type Statement } from "./plan.js";
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
} from "./sink.js";

const BEGIN: Statement = { sql: "BEGIN", changes: [] };
const COMMIT: Statement = { sql: "COMMIT", changes: [] };
/** Most bytes of statements sent in one round trip (less when the server's max_allowed_packet is smaller). */
const MAX_SCRIPT_BYTES = 4 * 1024 * 1024;

export interface MysqlSinkOptions {
  target: MysqlEndpoint;
  /** The source, to copy a missing table's definition from (sync); none = missing tables are refused. */
  source?: MysqlEndpoint;
  /** Target database of a source database (sync with target.database renames it). */
  mapDb(db: string): string;
  /** The consumer whose checkpoint this sink keeps. */
  consumer: string;
  /** Target database of the checkpoint tables (_dfs_checkpoint, _dfs_applied). */
  metaDatabase: string;
  statementRows: number;
  /** Connections applying a group in parallel; "auto" = from the target (see resolveConnections). */
  connections: number | "auto";
  retry: { initialMs: number; maxMs: number };
  log: Logger;
  signal: AbortSignal;
  /** Records refused changes durably (the dead-letter stream) before their transaction commits. */
  deadLetter(rejected: Rejected[]): Promise<void>;
  events?: SinkEvents;
  /** The pipeline use: mapped tables are written through it (one connection), others as in sync. */
  pipeline?: PipelineWriter;
}

/**
 * The MySQL/MariaDB sink. A group is applied on up to `parallelism` connections at once, one
 * target transaction per lane; each lane's transaction carries its checkpoint record, so a crash
 * between two lanes' commits re-applies exactly the lanes that did not commit. Passing failures
 * (connection lost, deadlock, lock wait timeout) reconnect and retry that lane with backoff; so do
 * refusals a person can lift (a read-only target, a missing privilege) once the sink has started,
 * so nothing is dead-lettered or lost meanwhile. A change the target refuses for its data is
 * dead-lettered; the rest of its lane commits.
 */
export class MysqlSink implements Sink {
  /** Session 0 applies lane 0 and everything that needs one connection (DDL, look-ups, replays). */
  private sessions: (MysqlSession | null)[] = [null];
  private sourceSession: MysqlSession | null = null;
  private readonly tables = new Map<string, TargetTable | null>();
  private readonly plans = new WeakMap<ApplyGroup, Statement[][]>();
  private started = false;
  private lanesValue = 1;
  /** Whether _dfs_applied may hold rows of this consumer (cleared with the low-water mark). */
  private appliedRows = false;
  /** The group boundary every lane has passed; written with the next group (or by `advance`). */
  private pendingLow = 0;
  private largeOpen = false;
  private maxScriptBytes = MAX_SCRIPT_BYTES;
  /** The target's max_allowed_packet: a larger statement (a large row) is an error naming it. */
  private maxPacket = Number.POSITIVE_INFINITY;
  readonly stats: SinkStats = { rowsApplied: 0, rejected: 0, retries: 0, lastError: "", waitingFor: "" };

  constructor(private readonly o: MysqlSinkOptions) {}

  get parallelism(): number {
    return this.lanesValue;
  }

  private get checkpointTable(): string {
    return `${quoteId(this.o.metaDatabase)}.\`_dfs_checkpoint\``;
  }

  private get appliedTable(): string {
    return `${quoteId(this.o.metaDatabase)}.\`_dfs_applied\``;
  }

  async open(): Promise<SinkCheckpoint> {
    const cp = await this.withRetry("read the checkpoint", 0, async (s) => {
      // The pipeline's key maps need a parent's insert before its children's: one connection.
      this.lanesValue = this.o.pipeline ? 1 : await resolveConnections(s, this.o.connections);
      const packet = await s.query<{ p: string }[]>("SELECT @@max_allowed_packet AS p");
      this.maxPacket = Number(packet[0]?.p ?? 0) || Number.POSITIVE_INFINITY;
      this.maxScriptBytes = Math.min(MAX_SCRIPT_BYTES, Math.floor(this.maxPacket / 2));
      const low = await s.query<{ s: string }[]>(
        `SELECT stream_seq AS s FROM ${this.checkpointTable} WHERE consumer = ?`,
        [this.o.consumer],
      );
      const lowWater = Number(low[0]?.s ?? 0);
      const rows = await s.query<{ u: string }[]>(
        `SELECT units AS u FROM ${this.appliedTable} WHERE consumer = ? AND max_seq > ?`,
        [this.o.consumer, lowWater],
      );
      const applied = new Set<string>();
      for (const r of rows) for (const k of parseUnits(r.u)) applied.add(k);
      return { lowWater, applied, records: rows.length };
    });
    this.sessions = Array.from({ length: this.lanesValue }, (_, i) => this.sessions[i] ?? null);
    this.appliedRows = cp.records > 0;
    this.started = true;
    return { lowWater: cp.lowWater, applied: cp.applied };
  }

  async describe(source: TableRef): Promise<TargetTable | null> {
    const key = tableKey(source);
    if (this.tables.has(key)) return this.tables.get(key)!;
    // Only an answer is cached: a failed look-up (a server away) is retried, never taken for "absent".
    const found = await this.withRetry("describe the target table", 0, (s) => this.lookUp(s, source));
    this.tables.set(key, found);
    return found;
  }

  prepare(group: ApplyGroup): void {
    if (this.o.pipeline) for (const lane of group.lanes) this.o.pipeline.prepare(lane.changes);
    else if (!this.plans.has(group))
      this.plans.set(
        group,
        group.lanes.map((l) => planLane(l.changes, this.o.statementRows)),
      );
  }

  async applyGroup(group: ApplyGroup): Promise<Rejected[]> {
    this.prepare(group);
    const plans = this.plans.get(group) ?? [];
    // One lane with exactly the messages up to lastSeq moves the low-water mark itself; otherwise
    // each lane records its source transactions, and the mark follows with the next group.
    const alone = group.lanes.length === 1 && group.whole;
    const rejected = await Promise.all(
      group.lanes.map((lane, i) => {
        const record = alone ? this.lowWaterStatements(group.lastSeq) : this.appliedStatements(lane, i === 0);
        let tried = false;
        return this.withRetry(`apply a group (connection ${i + 1})`, i, async (s) => {
          // A retry after a lost connection: the commit may have happened before it was lost.
          if (tried && (alone ? await this.reached(s, group.lastSeq) : await this.recorded(s, lane)))
            return [];
          tried = true;
          return this.applyLane(s, lane, plans[i], record);
        });
      }),
    );
    // Every lane committed: the whole group is applied.
    if (!alone) this.appliedRows = true;
    this.pendingLow = alone ? 0 : group.lastSeq;
    return rejected.flat();
  }

  /**
   * One lane: its statements and checkpoint record in one transaction, sent in as few round trips
   * as the packet size allows; row by row if a change is refused.
   */
  private async applyLane(
    s: MysqlSession,
    lane: Lane,
    statements: Statement[] | undefined,
    record: Statement[],
  ): Promise<Rejected[]> {
    const started = performance.now();
    try {
      if (statements) await this.script(s, [BEGIN, ...statements, ...record, COMMIT]);
      else {
        // BEGIN goes with the first statements, the key map's last ones with the checkpoint and COMMIT.
        const rest = await this.o.pipeline!.apply(s, lane.changes, (st) => this.script(s, st), {
          begin: true,
        });
        await this.script(s, [...rest, ...record, COMMIT]);
      }
      this.o.pipeline?.committed();
    } catch (err) {
      this.o.pipeline?.rolledBack();
      await s.query("ROLLBACK").catch(() => {});
      if (!(err instanceof DataError)) throw err;
      this.o.log.warn(
        { err: errorMessage(err) },
        "a change was refused: applying its transactions row by row to find it",
      );
      return this.applyCarefully(s, lane.changes, record);
    }
    const changes = lane.changes;
    this.stats.rowsApplied += changes.length;
    this.o.events?.committed?.(changes, performance.now() - started);
    return [];
  }

  /** Row by row under savepoints: refused changes are dead-lettered, the others commit. */
  private async applyCarefully(
    s: MysqlSession,
    changes: readonly Change[],
    record: Statement[],
  ): Promise<Rejected[]> {
    const started = performance.now();
    await s.query("BEGIN");
    let rejected: Rejected[];
    try {
      rejected = await this.applyRowByRow(s, changes);
      await this.script(s, [...record, COMMIT]);
      this.o.pipeline?.committed();
    } catch (err) {
      this.o.pipeline?.rolledBack();
      await s.query("ROLLBACK").catch(() => {});
      throw err;
    }
    this.reportCareful(changes, rejected, started);
    return rejected;
  }

  /** Inside an open transaction: each change under a savepoint; refused ones dead-lettered. */
  private async applyRowByRow(s: MysqlSession, changes: readonly Change[]): Promise<Rejected[]> {
    const rejected: Rejected[] = [];
    for (const change of changes) {
      await s.query("SAVEPOINT dfs_row");
      try {
        await (this.o.pipeline ? this.write(s, [change]) : this.script(s, planStatements([change], 1)));
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        await s.query("ROLLBACK TO SAVEPOINT dfs_row");
        rejected.push({ change, error: errorMessage(err), errno: err.errno });
      }
    }
    // Dead letters are durable before the transaction commits: a crash in between applies it
    // again, and the dead-letter message ids make that harmless.
    if (rejected.length > 0) await this.o.deadLetter(rejected);
    return rejected;
  }

  private reportCareful(changes: readonly Change[], rejected: Rejected[], started: number): void {
    this.stats.rowsApplied += changes.length - rejected.length;
    this.stats.rejected += rejected.length;
    const refused = new Set(rejected.map((r) => r.change));
    this.o.events?.committed?.(
      changes.filter((c) => !refused.has(c)),
      performance.now() - started,
    );
    if (rejected.length > 0) this.o.events?.rejected?.(rejected);
  }

  /** Changes through the pipeline writer, or planned as in sync, inside the session's open transaction. */
  private async write(s: MysqlSession, changes: readonly Change[]): Promise<void> {
    const p = this.o.pipeline;
    await this.script(
      s,
      p ? await p.apply(s, changes, (st) => this.script(s, st)) : planLane(changes, this.o.statementRows),
    );
  }

  /** Statements in as few round trips as the packet size allows; each reported with its share of the time. */
  private script(s: MysqlSession, statements: readonly Statement[]): Promise<unknown> {
    const sent = (from: number, to: number, ms: number) => {
      const events = this.o.events;
      if (!events?.statement) return;
      for (let i = from; i < to; i++) {
        const st = statements[i]!;
        if (st.changes.length > 0) events.statement(st, ms / (to - from));
      }
    };
    return runScript(s, statements, this.maxScriptBytes, sent, this.maxPacket);
  }

  async applyDdl(ddl: DdlChange, seq: number): Promise<void> {
    const pipeline = this.o.pipeline;
    if (pipeline?.ownsDdl(ddl)) {
      // A mapped table's target has its own structure: the source's DDL does not fit it. Creating
      // statements change nothing that is mapped; the others may need the mapping looked at.
      const creates = /^\s*CREATE\s/i.test(ddl.statement);
      this.o.log[creates ? "info" : "warn"](
        { statement: ddl.statement.slice(0, 200) },
        "DDL on a mapped source table is not applied to the target (pipeline use); check the mapping still fits",
      );
      return this.advance(seq);
    }
    await this.withRetry("apply DDL", 0, async (s) => {
      // The session database may be empty (qualified names only): map every database it touches.
      const touched = new Set([ddl.db, ...ddl.tables.map((t) => t.db)].filter(Boolean));
      const home = ddl.db || [...touched][0] || "";
      const db = home ? this.o.mapDb(home) : "";
      let sql = ddl.statement;
      for (const d of touched) sql = mapDdl(sql, d, this.o.mapDb(d));
      const started = performance.now();
      try {
        if (db && !/^\s*CREATE\s+(DATABASE|SCHEMA)/i.test(sql)) {
          await s.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(db)}`);
          await s.query(`USE ${quoteId(db)}`);
        }
        await s.query(sql);
      } catch (err) {
        const errno = (err as DfsError).errno;
        if (!(err instanceof DataError) || errno === undefined || !DDL_ALREADY_APPLIED.has(errno)) throw err;
        this.o.log.info(
          { errno, statement: sql.slice(0, 200) },
          "DDL already in effect on the target; skipped",
        );
      }
      this.o.events?.ddl?.(db, sql, performance.now() - started);
      this.tables.clear();
      await this.saveLowWater(s, seq);
    });
    this.pendingLow = 0;
  }

  async advance(seq: number): Promise<void> {
    await this.withRetry("save the checkpoint", 0, (s) => this.saveLowWater(s, seq));
    this.pendingLow = 0;
  }

  async flush(): Promise<void> {
    if (this.pendingLow > 0) await this.advance(this.pendingLow);
  }

  async applyLargePart(changes: readonly Change[]): Promise<Rejected[]> {
    const s = await this.connect(0);
    try {
      if (!this.largeOpen) {
        await s.query("BEGIN");
        this.largeOpen = true;
      }
      await s.query("SAVEPOINT dfs_part");
      try {
        await this.write(s, changes);
        this.stats.rowsApplied += changes.length;
        return [];
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        await s.query("ROLLBACK TO SAVEPOINT dfs_part");
        const started = performance.now();
        const rejected = await this.applyRowByRow(s, changes);
        this.reportCareful(changes, rejected, started);
        return rejected;
      }
    } catch (err) {
      await this.abortLarge();
      throw err;
    }
  }

  async commitLarge(seq: number): Promise<void> {
    const s = await this.connect(0);
    try {
      if (!this.largeOpen) await s.query("BEGIN");
      await this.saveLowWater(s, seq);
      await s.query("COMMIT");
      this.o.pipeline?.committed();
      this.largeOpen = false;
      this.pendingLow = 0;
    } catch (err) {
      await this.abortLarge();
      throw err;
    }
  }

  private async abortLarge(): Promise<void> {
    this.largeOpen = false;
    this.o.pipeline?.rolledBack();
    await this.sessions[0]?.query("ROLLBACK").catch(() => {});
  }

  async replay(changes: readonly Change[]): Promise<void> {
    await this.withRetry("replay changes", 0, async (s) => {
      try {
        await s.query("BEGIN");
        await this.write(s, changes);
        await s.query("COMMIT");
        this.o.pipeline?.committed();
      } catch (err) {
        this.o.pipeline?.rolledBack();
        await s.query("ROLLBACK").catch(() => {});
        throw err;
      }
    });
    this.stats.rowsApplied += changes.length;
  }

  async close(): Promise<void> {
    const all = [...this.sessions, this.sourceSession];
    this.sessions = this.sessions.map(() => null);
    this.sourceSession = null;
    await Promise.all(all.map((s) => s?.close()));
  }

  /** The target table; in sync mode, created from the source's definition when it is missing. */
  private async lookUp(s: MysqlSession, source: TableRef): Promise<TargetTable | null> {
    const mapped = this.o.pipeline?.describe(source);
    if (mapped) return mapped;
    const ref = { db: this.o.mapDb(source.db), table: source.table };
    const found = await describeTarget(s, ref);
    if (found || !this.o.source) return found;
    this.sourceSession = this.sourceSession?.alive
      ? this.sourceSession
      : await MysqlSession.open(this.o.source, { role: "source" });
    const ddl = await showCreateTable(this.sourceSession, source);
    if (!ddl) return null;
    this.o.log.info(
      { table: formatTableRef(ref) },
      "creating missing target table from the source's definition",
    );
    await s.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(ref.db)}`);
    await s.query(`USE ${quoteId(ref.db)}`);
    await s.query(ddl.replace(/^CREATE TABLE /i, "CREATE TABLE IF NOT EXISTS "));
    return describeTarget(s, ref);
  }

  /** Writes the low-water mark (and drops the applied records it makes unnecessary). */
  private async saveLowWater(s: MysqlSession, seq: number): Promise<void> {
    await this.script(s, this.lowWaterStatements(seq));
  }

  private lowWaterStatements(seq: number): Statement[] {
    const out: Statement[] = [
      {
        sql: `INSERT INTO ${this.checkpointTable} (consumer, stream_seq, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE stream_seq = VALUES(stream_seq), updated_at = VALUES(updated_at)`,
        params: [this.o.consumer, seq],
        changes: [],
      },
    ];
    if (this.appliedRows)
      out.push({
        sql: `DELETE FROM ${this.appliedTable} WHERE consumer = ? AND max_seq <= ?`,
        params: [this.o.consumer, seq],
        changes: [],
      });
    return out;
  }

  /**
   * A lane whose transaction is not the whole of the messages up to a point: one record of the
   * source transactions it commits. The first lane also moves the low-water mark to the previous
   * group's end, which every lane had passed.
   */
  private appliedStatements(lane: Lane, first: boolean): Statement[] {
    const head = lane.units[0]!;
    const maxSeq = lane.units[lane.units.length - 1]!.seq;
    const out: Statement[] = [
      {
        sql: `INSERT IGNORE INTO ${this.appliedTable} (consumer, stream_seq, first_row, max_seq, units) VALUES (?, ?, ?, ?, ?)`,
        params: [this.o.consumer, head.seq, head.row, maxSeq, formatUnits(lane.units)],
        changes: [],
      },
    ];
    if (first && this.pendingLow > 0) out.push(...this.lowWaterStatements(this.pendingLow));
    return out;
  }

  /** Whether the low-water mark is at `seq` or past it (a commit whose answer was lost happened). */
  private async reached(s: MysqlSession, seq: number): Promise<boolean> {
    const rows = await s.query<{ s: string }[]>(
      `SELECT stream_seq AS s FROM ${this.checkpointTable} WHERE consumer = ?`,
      [this.o.consumer],
    );
    return Number(rows[0]?.s ?? 0) >= seq;
  }

  /** Whether the lane's record is there (a commit whose answer was lost happened). */
  private async recorded(s: MysqlSession, lane: Lane): Promise<boolean> {
    const head = lane.units[0]!;
    const rows = await s.query<unknown[]>(
      `SELECT 1 FROM ${this.appliedTable} WHERE consumer = ? AND stream_seq = ? AND first_row = ?`,
      [this.o.consumer, head.seq, head.row],
    );
    return rows.length > 0;
  }

  /** A live session of lane `i` with the apply settings; the checkpoint tables exist. */
  private async connect(i: number): Promise<MysqlSession> {
    const current = this.sessions[i];
    if (current?.alive) return current;
    await current?.close();
    this.sessions[i] = null;
    const s = await MysqlSession.open(this.o.target, {
      role: "target",
      setup: APPLY_SESSION,
      multipleStatements: true,
    });
    try {
      if (i === 0) {
        await s.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(this.o.metaDatabase)}`);
        await s.query(
          `CREATE TABLE IF NOT EXISTS ${this.checkpointTable} (consumer VARCHAR(200) PRIMARY KEY, stream_seq BIGINT UNSIGNED NOT NULL, updated_at DATETIME(6) NOT NULL)`,
        );
        await s.query(
          `CREATE TABLE IF NOT EXISTS ${this.appliedTable} (consumer VARCHAR(200) NOT NULL, stream_seq BIGINT UNSIGNED NOT NULL, first_row INT UNSIGNED NOT NULL, max_seq BIGINT UNSIGNED NOT NULL, units MEDIUMTEXT NOT NULL, PRIMARY KEY (consumer, stream_seq, first_row), KEY (consumer, max_seq))`,
        );
        if (this.o.pipeline) await s.query(this.o.pipeline.keymap.createStatement());
      }
    } catch (err) {
      await s.close();
      throw err;
    }
    this.sessions[i] = s;
    return s;
  }

  /**
   * Runs `work` on a live session of lane `i`. Passing failures reconnect and retry with backoff
   * until the DPU stops; so do refusals (read-only, privileges) once the sink has started, because a
   * person can lift them and nothing may be dead-lettered meanwhile. At start-up a refusal is final:
   * the DPU then does not start and says why.
   */
  async withRetry<T>(what: string, i: number, work: (s: MysqlSession) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const value = await work(await this.connect(i));
        this.stats.waitingFor = "";
        return value;
      } catch (err) {
        const transient = err instanceof TransientError;
        const refused = err instanceof RefusedError && this.started;
        if ((!transient && !refused) || this.o.signal.aborted) throw err;
        this.stats.retries++;
        this.stats.lastError = errorMessage(err);
        this.stats.waitingFor = transient
          ? "the target to come back"
          : `a person to act: ${(err as DfsError).code}`;
        this.o.events?.retry?.(what, err);
        if (transient) await this.closeSession(i);
        const wait = backoffMs(attempt, this.o.retry.initialMs, this.o.retry.maxMs);
        this.o.log.warn({ err: this.stats.lastError, retryInMs: wait, what }, "cannot go on yet; retrying");
        await sleep(wait, this.o.signal);
      }
    }
  }

  private async closeSession(i: number): Promise<void> {
    const s = this.sessions[i];
    this.sessions[i] = null;
    await s?.close();
    if (i === 0) {
      const src = this.sourceSession;
      this.sourceSession = null;
      await src?.close();
    }
  }
}

/**
 * How many connections apply in parallel: the configured number, or, for "auto", MariaDB's
 * thread_pool_size (which defaults to the server's CPU count) halved, within 1..8, and 4 for MySQL.
 */
async function resolveConnections(s: MysqlSession, configured: number | "auto"): Promise<number> {
  if (configured !== "auto") return configured;
  const rows = await s
    .query<{ v: string; t: string | null }[]>(
      "SELECT @@version AS v, IF(@@version LIKE '%MariaDB%', @@thread_pool_size, NULL) AS t",
    )
    .catch(() => [{ v: "", t: null }]);
  const pool = Number(rows[0]?.t ?? 0);
  // Half the server's cores (MariaDB's thread pool defaults to its CPU count): the target's own
  // work (purge, flushing, its binlog) needs the rest. Measured on a 2-core host shared with
  // everything else: one connection applied bulk 10-20% and OLTP 5-10% faster than two, with less
  // CPU (docs/benchmarks.md).
  return pool > 0 ? Math.min(8, Math.max(1, Math.floor(pool / 2))) : 4;
}

/** The adapter's description of a target table, as the planner needs it. */
async function describeTarget(s: MysqlSession, ref: TableRef): Promise<TargetTable | null> {
  const d = await describeTable(s, ref);
  if (!d) return null;
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((c, i) => c === b[i]);
  const uniqueKeys = d.identity.columns.length > 0 ? [d.identity.columns] : [];
  for (const k of d.uniqueKeys) if (!uniqueKeys.some((u) => same(u, k.columns))) uniqueKeys.push(k.columns);
  return {
    ref,
    columns: new Set(d.columns.filter((c) => !c.generated).map((c) => c.name)),
    key: d.identity.columns,
    keyKind: d.identity.kind,
    uniqueKeys,
  };
}

/** The MySQL sink of a config: the same for the running DPU and for `dfs dlq replay`. */
export function mysqlSinkOf(
  cfg: DfsConfig,
  o: {
    log: Logger;
    signal: AbortSignal;
    deadLetter(rejected: Rejected[]): Promise<void>;
    events?: SinkEvents;
    consumer?: string;
    connections?: number | "auto";
    pipeline?: PipelineWriter | null;
  },
): MysqlSink {
  const target = cfg.target!;
  return new MysqlSink({
    target: target.endpoint,
    source: cfg.source.endpoint,
    mapDb: (db) => target.database ?? db,
    consumer: `${cfg.source.id}:${o.consumer ?? `dpu-${cfg.dpu.group}`}`,
    metaDatabase: cfg.dpu.metaDatabase,
    statementRows: cfg.dpu.batch.statementRows,
    connections: o.connections ?? cfg.dpu.apply.connections,
    retry: cfg.dpu.retry,
    log: o.log,
    signal: o.signal,
    deadLetter: o.deadLetter,
    ...(o.events ? { events: o.events } : {}),
    ...(o.pipeline ? { pipeline: o.pipeline } : {}),
  });
}
