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
  showCreateTable,
} from "@dfs/mysql";
import { planStatements, type Statement } from "./plan.js";
import type { Change, DdlChange, Rejected, Sink, SinkEvents, SinkStats, TargetTable } from "./sink.js";

/**
 * MySQL error numbers that mean a DDL statement's effect is already there (the DPU re-applies DDL
 * after a restart, and a target table created from a later definition already has later columns).
 */
export const DDL_ALREADY_APPLIED = new Set([
  1007, // ER_DB_CREATE_EXISTS
  1008, // ER_DB_DROP_EXISTS
  1050, // ER_TABLE_EXISTS_ERROR
  1051, // ER_BAD_TABLE_ERROR (drop of a missing table)
  1060, // ER_DUP_FIELDNAME
  1061, // ER_DUP_KEYNAME
  1091, // ER_CANT_DROP_FIELD_OR_KEY
  1146, // ER_NO_SUCH_TABLE (alter/truncate of a table dropped later)
  1054, // ER_BAD_FIELD_ERROR (alter of a column dropped or renamed later)
]);

export interface MysqlSinkOptions {
  target: MysqlEndpoint;
  /** The source, to copy a missing table's definition from (sync); none = missing tables are refused. */
  source?: MysqlEndpoint;
  /** Target database of a source database (sync with target.database renames it). */
  mapDb(db: string): string;
  /** The consumer whose checkpoint this sink keeps. */
  consumer: string;
  /** Target database of the checkpoint table (_dfs_checkpoint). */
  metaDatabase: string;
  statementRows: number;
  retry: { initialMs: number; maxMs: number };
  log: Logger;
  signal: AbortSignal;
  /** Records refused changes durably (the dead-letter stream) before their unit commits. */
  deadLetter(rejected: Rejected[]): Promise<void>;
  events?: SinkEvents;
}

/**
 * The MySQL/MariaDB sink: one target connection, each unit of changes in one transaction together
 * with the consumer's checkpoint. Passing failures (connection lost, deadlock, lock wait timeout)
 * reconnect and retry with backoff; so do refusals a person can lift (a read-only target, a
 * missing privilege) once the sink has started, so nothing is dead-lettered or lost meanwhile. A
 * change the target refuses for its data is dead-lettered; the rest of its unit commits.
 */
export class MysqlSink implements Sink {
  private session: MysqlSession | null = null;
  private sourceSession: MysqlSession | null = null;
  private readonly tables = new Map<string, TargetTable | null>();
  private started = false;
  readonly stats: SinkStats = { rowsApplied: 0, rejected: 0, retries: 0, lastError: "", waitingFor: "" };

  constructor(private readonly o: MysqlSinkOptions) {}

  private get checkpointTable(): string {
    return `${quoteId(this.o.metaDatabase)}.\`_dfs_checkpoint\``;
  }

  async checkpoint(): Promise<number> {
    const seq = await this.withRetry("read the checkpoint", async (s) => {
      const rows = await s.query<{ s: string }[]>(
        `SELECT stream_seq AS s FROM ${this.checkpointTable} WHERE consumer = ?`,
        [this.o.consumer],
      );
      return Number(rows[0]?.s ?? 0);
    });
    this.started = true;
    return seq;
  }

  async describe(source: TableRef): Promise<TargetTable | null> {
    const key = tableKey(source);
    if (this.tables.has(key)) return this.tables.get(key)!;
    // Only an answer is cached: a failed look-up (a server away) is retried, never taken for "absent".
    const found = await this.withRetry("describe the target table", (s) => this.lookUp(s, source));
    this.tables.set(key, found);
    return found;
  }

  async apply(changes: readonly Change[], seq: number): Promise<Rejected[]> {
    return this.withRetry("apply a batch", async (s) => {
      const statements = planStatements(changes, this.o.statementRows);
      const started = performance.now();
      try {
        await s.query("BEGIN");
        for (const st of statements) await this.run(s, st);
        await this.saveCheckpoint(s, seq);
        await s.query("COMMIT");
      } catch (err) {
        await s.query("ROLLBACK").catch(() => {});
        if (!(err instanceof DataError)) throw err;
        this.o.log.warn(
          { err: errorMessage(err) },
          "a change was refused: applying the batch row by row to find it",
        );
        return this.applyCarefully(s, changes, seq);
      }
      this.stats.rowsApplied += changes.length;
      this.o.events?.committed?.(changes, performance.now() - started);
      return [];
    });
  }

  /** Row by row under savepoints: refused changes are dead-lettered, the others commit. */
  private async applyCarefully(
    s: MysqlSession,
    changes: readonly Change[],
    seq: number,
  ): Promise<Rejected[]> {
    const rejected: Rejected[] = [];
    const started = performance.now();
    await s.query("BEGIN");
    try {
      for (const change of changes) {
        await s.query("SAVEPOINT dfs_row");
        try {
          for (const st of planStatements([change], 1)) await this.run(s, st);
        } catch (err) {
          if (!(err instanceof DataError)) throw err;
          await s.query("ROLLBACK TO SAVEPOINT dfs_row");
          rejected.push({ change, error: errorMessage(err), errno: err.errno });
        }
      }
      // Dead letters are durable before the batch commits: a crash in between replays the batch,
      // and the dead-letter message ids make the replay harmless.
      if (rejected.length > 0) await this.o.deadLetter(rejected);
      await this.saveCheckpoint(s, seq);
      await s.query("COMMIT");
    } catch (err) {
      await s.query("ROLLBACK").catch(() => {});
      throw err;
    }
    this.stats.rowsApplied += changes.length - rejected.length;
    this.stats.rejected += rejected.length;
    const refused = new Set(rejected.map((r) => r.change));
    this.o.events?.committed?.(
      changes.filter((c) => !refused.has(c)),
      performance.now() - started,
    );
    if (rejected.length > 0) this.o.events?.rejected?.(rejected);
    return rejected;
  }

  private async run(s: MysqlSession, st: Statement): Promise<void> {
    const started = performance.now();
    await s.query(st.sql, st.params);
    this.o.events?.statement?.(st, performance.now() - started);
  }

  async applyDdl(ddl: DdlChange, seq: number): Promise<void> {
    await this.withRetry("apply DDL", async (s) => {
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
      await this.saveCheckpoint(s, seq);
    });
  }

  async advance(seq: number): Promise<void> {
    await this.withRetry("save the checkpoint", (s) => this.saveCheckpoint(s, seq));
  }

  async replay(changes: readonly Change[]): Promise<void> {
    await this.withRetry("replay changes", async (s) => {
      try {
        await s.query("BEGIN");
        for (const st of planStatements(changes, this.o.statementRows)) await s.query(st.sql, st.params);
        await s.query("COMMIT");
      } catch (err) {
        await s.query("ROLLBACK").catch(() => {});
        throw err;
      }
    });
    this.stats.rowsApplied += changes.length;
  }

  async close(): Promise<void> {
    const [a, b] = [this.session, this.sourceSession];
    this.session = null;
    this.sourceSession = null;
    await a?.close();
    await b?.close();
  }

  /** The target table; in sync mode, created from the source's definition when it is missing. */
  private async lookUp(s: MysqlSession, source: TableRef): Promise<TargetTable | null> {
    const ref = { db: this.o.mapDb(source.db), table: source.table };
    let found = await describeTarget(s, ref);
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
    found = await describeTarget(s, ref);
    return found;
  }

  private async saveCheckpoint(s: MysqlSession, seq: number): Promise<void> {
    await s.query(
      `INSERT INTO ${this.checkpointTable} (consumer, stream_seq, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE stream_seq = VALUES(stream_seq), updated_at = VALUES(updated_at)`,
      [this.o.consumer, seq],
    );
  }

  /** A live target session with the apply settings; the checkpoint table exists. */
  private async connect(): Promise<MysqlSession> {
    if (this.session?.alive) return this.session;
    await this.session?.close();
    this.session = null;
    const s = await MysqlSession.open(this.o.target, { role: "target", setup: APPLY_SESSION });
    try {
      await s.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(this.o.metaDatabase)}`);
      await s.query(
        `CREATE TABLE IF NOT EXISTS ${this.checkpointTable} (consumer VARCHAR(200) PRIMARY KEY, stream_seq BIGINT UNSIGNED NOT NULL, updated_at DATETIME(6) NOT NULL)`,
      );
    } catch (err) {
      await s.close();
      throw err;
    }
    this.session = s;
    return s;
  }

  /**
   * Runs `work` on a live session. Passing failures reconnect and retry with backoff until the
   * DPU stops; so do refusals (read-only, privileges) once the sink has started, because a person
   * can lift them and nothing may be dead-lettered meanwhile. At start-up a refusal is final: the
   * DPU then does not start and says why.
   */
  async withRetry<T>(what: string, work: (s: MysqlSession) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const value = await work(await this.connect());
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
        if (transient) await this.close();
        const wait = backoffMs(attempt, this.o.retry.initialMs, this.o.retry.maxMs);
        this.o.log.warn({ err: this.stats.lastError, retryInMs: wait, what }, "cannot go on yet; retrying");
        await sleep(wait, this.o.signal);
      }
    }
  }
}

/**
 * The MySQL sink of a config: the same for the running DPU and for `dfs dlq replay`. In sync mode a
 * missing target table is created from the source's definition.
 */
export function mysqlSinkOf(
  cfg: DfsConfig,
  o: {
    log: Logger;
    signal: AbortSignal;
    deadLetter(rejected: Rejected[]): Promise<void>;
    events?: SinkEvents;
    consumer?: string;
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
    retry: cfg.dpu.retry,
    log: o.log,
    signal: o.signal,
    deadLetter: o.deadLetter,
    ...(o.events ? { events: o.events } : {}),
  });
}

/** The adapter's description of a target table, as the planner needs it. */
async function describeTarget(s: MysqlSession, ref: TableRef): Promise<TargetTable | null> {
  const d = await describeTable(s, ref);
  if (!d) return null;
  return {
    ref,
    columns: new Set(d.columns.filter((c) => !c.generated).map((c) => c.name)),
    key: d.identity.columns,
    keyKind: d.identity.kind,
  };
}

/** Rewrites references to a source database in a DDL statement to the target database. */
export function mapDdl(statement: string, srcDb: string, dstDb: string): string {
  if (srcDb === dstDb || !srcDb) return statement;
  const escaped = srcDb.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return statement
    .replace(new RegExp(`\`${escaped.replace(/`/g, "``")}\`\\s*\\.`, "g"), `${quoteId(dstDb)}.`)
    .replace(new RegExp(`(?<![\\w\`$])${escaped}\\s*\\.(?=\\s*[\`\\w])`, "g"), `${quoteId(dstDb)}.`)
    .replace(
      new RegExp(
        `^(\\s*(?:CREATE|DROP|ALTER)\\s+(?:DATABASE|SCHEMA)\\s+(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?)(\`${escaped}\`|${escaped})(?=\\s|$)`,
        "i",
      ),
      `$1${quoteId(dstDb)}`,
    );
}
