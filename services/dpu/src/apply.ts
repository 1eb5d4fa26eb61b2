import { backoffMs, errorMessage, type Logger, mysqlErrorClass, sleep } from "@dfs/common";
import mysql, { type Connection } from "mysql2/promise";
import { type Change, planStatements, quoteId, type Statement } from "./plan.js";
import { DDL_ALREADY_APPLIED, mapDdl, SESSION_SETUP, type TargetCatalog } from "./target.js";

/** A change the target refused for a reason that retrying will not fix. */
export interface Rejected {
  change: Change;
  error: string;
  errno: number | undefined;
}

export interface ApplierOptions {
  connection: { host: string; port: number; user: string; password: string };
  catalog: TargetCatalog;
  consumer: string;
  metaDatabase: string;
  statementRows: number;
  retry: { initialMs: number; maxMs: number };
  log: Logger;
  signal: AbortSignal;
  /** Records rejected changes durably (dead-letter subject) before their batch commits. */
  deadLetter(rejected: Rejected[]): Promise<void>;
  /** Told what was done, for metrics and the monitor. */
  events?: ApplierEvents;
}

/** What the applier reports as it works (metrics, the monitor's recent DML). */
export interface ApplierEvents {
  statement?(st: Statement, ms: number): void;
  /** A unit committed: the changes that are in the target now, and how long it took. */
  committed?(changes: readonly Change[], ms: number): void;
  rejected?(rejected: readonly Rejected[]): void;
  ddl?(db: string, statement: string, ms: number): void;
  retry?(what: string, err: unknown): void;
}

/**
 * Writes to the target: each unit of changes in one transaction together with the consumer's
 * checkpoint (the last stream sequence applied), so that after a crash nothing is applied twice.
 */
export class Applier {
  private conn: Connection | null = null;
  retries = 0;
  rowsApplied = 0;
  rejectedTotal = 0;
  lastError = "";

  constructor(private readonly o: ApplierOptions) {}

  private get checkpointTable(): string {
    return `${quoteId(this.o.metaDatabase)}.\`_dfs_checkpoint\``;
  }

  /** A connection with the session set up; the checkpoint table exists. */
  async connect(): Promise<Connection> {
    if (this.conn) return this.conn;
    const conn = await mysql.createConnection({
      ...this.o.connection,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      charset: "utf8mb4",
    });
    conn.on("error", () => {
      this.conn = null;
    });
    for (const sql of SESSION_SETUP) await conn.query(sql);
    await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(this.o.metaDatabase)}`);
    await conn.query(
      `CREATE TABLE IF NOT EXISTS ${this.checkpointTable} (consumer VARCHAR(200) PRIMARY KEY, stream_seq BIGINT UNSIGNED NOT NULL, updated_at DATETIME(6) NOT NULL)`,
    );
    this.conn = conn;
    return conn;
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    await c?.end().catch(() => {});
  }

  /** The last stream sequence whose effect is in the target (0 when none). */
  async checkpoint(): Promise<number> {
    return this.withRetry("read the checkpoint", async (conn) => {
      const [rows] = await conn.query(
        `SELECT stream_seq AS s FROM ${this.checkpointTable} WHERE consumer = ?`,
        [this.o.consumer],
      );
      return Number((rows as { s: string }[])[0]?.s ?? 0);
    });
  }

  /**
   * Applies changes and moves the checkpoint to `seq` in one transaction. A change the target
   * refuses for good is dead-lettered and the rest still commit.
   */
  async applyUnit(changes: readonly Change[], seq: number): Promise<Rejected[]> {
    return this.withRetry("apply a batch", async (conn) => {
      const statements = planStatements(changes, this.o.statementRows);
      const started = performance.now();
      try {
        await conn.query("BEGIN");
        for (const st of statements) await this.run(conn, st);
        await this.saveCheckpoint(conn, seq);
        await conn.query("COMMIT");
        this.rowsApplied += changes.length;
        this.o.events?.committed?.(changes, performance.now() - started);
        return [];
      } catch (err) {
        await conn.query("ROLLBACK").catch(() => {});
        if (mysqlErrorClass(err) !== "data") throw err;
        this.o.log.warn(
          { err: errorMessage(err) },
          "a change was refused: applying the batch row by row to find it",
        );
        return this.applyCarefully(conn, changes, seq);
      }
    });
  }

  /** Row by row under savepoints: refused changes are dead-lettered, the others commit. */
  private async applyCarefully(
    conn: Connection,
    changes: readonly Change[],
    seq: number,
  ): Promise<Rejected[]> {
    const rejected: Rejected[] = [];
    const started = performance.now();
    await conn.query("BEGIN");
    try {
      for (const change of changes) {
        await conn.query("SAVEPOINT dfs_row");
        try {
          for (const st of planStatements([change], 1)) await this.run(conn, st);
        } catch (err) {
          if (mysqlErrorClass(err) !== "data") throw err;
          await conn.query("ROLLBACK TO SAVEPOINT dfs_row");
          rejected.push({ change, error: errorMessage(err), errno: (err as { errno?: number }).errno });
        }
      }
      // Dead letters are durable before the batch commits: a crash in between replays the batch,
      // and the dead-letter message ids make the replay harmless.
      if (rejected.length > 0) await this.o.deadLetter(rejected);
      await this.saveCheckpoint(conn, seq);
      await conn.query("COMMIT");
    } catch (err) {
      await conn.query("ROLLBACK").catch(() => {});
      throw err;
    }
    this.rowsApplied += changes.length - rejected.length;
    this.rejectedTotal += rejected.length;
    const refused = new Set(rejected.map((r) => r.change));
    this.o.events?.committed?.(
      changes.filter((c) => !refused.has(c)),
      performance.now() - started,
    );
    if (rejected.length > 0) this.o.events?.rejected?.(rejected);
    return rejected;
  }

  /** Runs one planned statement and reports it. */
  private async run(conn: Connection, st: Statement): Promise<void> {
    const started = performance.now();
    await conn.query(st.sql, st.params);
    this.o.events?.statement?.(st, performance.now() - started);
  }

  /** Applies a DDL statement (a barrier: every change before it is committed), then the checkpoint. */
  async applyDdl(
    srcDb: string,
    statement: string,
    seq: number,
    tables: readonly string[] = [],
  ): Promise<void> {
    await this.withRetry("apply DDL", async (conn) => {
      // The session database may be empty (qualified names only): map every database it touches.
      const touched = new Set([srcDb, ...tables.map((t) => t.slice(0, t.indexOf(".")))].filter(Boolean));
      const home = srcDb || [...touched][0] || "";
      const db = home ? this.o.catalog.mapDb(home) : "";
      let sql = statement;
      for (const d of touched) sql = mapDdl(sql, d, this.o.catalog.mapDb(d));
      const started = performance.now();
      try {
        if (db) {
          if (/^\s*CREATE\s+(DATABASE|SCHEMA)/i.test(sql)) await conn.query(sql);
          else {
            await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(db)}`);
            await conn.query(`USE ${quoteId(db)}`);
            await conn.query(sql);
          }
        } else {
          await conn.query(sql);
        }
      } catch (err) {
        const errno = (err as { errno?: number }).errno;
        if (errno === undefined || !DDL_ALREADY_APPLIED.has(errno)) throw err;
        this.o.log.info(
          { errno, statement: sql.slice(0, 200) },
          "DDL already in effect on the target; skipped",
        );
      }
      this.o.events?.ddl?.(db, sql, performance.now() - started);
      this.o.catalog.invalidate();
      await this.saveCheckpoint(conn, seq);
    });
  }

  /** Applies changes in one transaction without touching the checkpoint (dead-letter replay). */
  async applyDirect(changes: readonly Change[]): Promise<void> {
    await this.withRetry("replay changes", async (conn) => {
      try {
        await conn.query("BEGIN");
        for (const st of planStatements(changes, this.o.statementRows)) await conn.query(st.sql, st.params);
        await conn.query("COMMIT");
      } catch (err) {
        await conn.query("ROLLBACK").catch(() => {});
        throw err;
      }
    });
    this.rowsApplied += changes.length;
  }

  /** Moves the checkpoint alone (heartbeats, skipped messages). */
  async advance(seq: number): Promise<void> {
    await this.withRetry("save the checkpoint", (conn) => this.saveCheckpoint(conn, seq));
  }

  private async saveCheckpoint(conn: Connection, seq: number): Promise<void> {
    await conn.query(
      `INSERT INTO ${this.checkpointTable} (consumer, stream_seq, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE stream_seq = VALUES(stream_seq), updated_at = VALUES(updated_at)`,
      [this.o.consumer, seq],
    );
  }

  /**
   * Runs `work` on a live connection; transient errors (connection lost, deadlock 1213, lock wait
   * timeout 1205, ...) reconnect and retry with backoff until the service stops.
   */
  async withRetry<T>(what: string, work: (conn: Connection) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await work(await this.connect());
      } catch (err) {
        const cls = mysqlErrorClass(err);
        const connectionLost = (err as { fatal?: boolean }).fatal || cls === "transient";
        if (!connectionLost || this.o.signal.aborted) throw err;
        this.retries++;
        this.lastError = errorMessage(err);
        this.o.events?.retry?.(what, err);
        await this.close();
        const wait = backoffMs(attempt, this.o.retry.initialMs, this.o.retry.maxMs);
        this.o.log.warn({ err: this.lastError, retryInMs: wait, what }, "target error; retrying");
        await sleep(wait, this.o.signal);
      }
    }
  }
}

export type { Statement };
