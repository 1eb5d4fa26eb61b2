import { randomUUID } from "node:crypto";
import { formatTableRef, type Position, parseTableRef, sameTable, type TableRef, tableKey } from "@dfs/codec";
import { AbortedError, ConfigError, ErrorCode, errorMessage, type Logger } from "@dfs/common";
import type { TableFilter } from "@dfs/config";
import { type Edge, parentsFirst } from "@dfs/mapping";
import type { SnapshotMetrics } from "@dfs/metrics";
import { foreignKeys, type MysqlEndpoint, MysqlSession, quoteId, quoteTable, READ_SESSION } from "@dfs/mysql";
import type { Op } from "@dfs/proto";
import type { Assembler, BinlogHandler } from "./assembler.js";
import type { Journal } from "./journal.js";
import { describeSnapshotTable, readChunk, type SnapshotTable } from "./snapshot-read.js";
import type { TableInfo } from "./tables.js";

/**
 * Snapshots without a global lock, handed over to the stream with no gap (DBLog's watermarks):
 * for each chunk of a table, in key order,
 *   1. write a LOW watermark row to the signal table on the source,
 *   2. SELECT the chunk,
 *   3. write a HIGH watermark row.
 * The binlog reader sees both rows in commit order. Rows of the table changed between LOW and
 * HIGH are dropped from the chunk (their binlog events carry a newer image); at HIGH's commit
 * the rest are journaled as op r. Every row reaches the stream either from the chunk or from a
 * later event, so the target never keeps a stale image.
 *
 * A table without a primary or NOT NULL unique key has no chunk key and no row identity to drop
 * touched rows by: it is read whole, as one chunk, while a table read lock (LOCK TABLES ... READ)
 * keeps its writers out from before LOW to after HIGH, so no change of it falls inside the
 * window; its rows are journaled after a TRUNCATE of the table, so the target's copy (rows
 * applied as plain INSERTs) becomes exactly the read. Tables larger than keylessMaxRows are
 * refused with the reason rather than locked for long or held in memory.
 */

export interface SnapshotOptions {
  endpoint: MysqlEndpoint;
  /** The signal table (created on first use). */
  signalTable: TableRef;
  chunkRows: number;
  filter: TableFilter;
  subjectFor(db: string, table: string): string;
  assembler: Assembler;
  journal: Journal;
  /** Writes complete transactions to the journal now. */
  flush(): void;
  metrics: SnapshotMetrics;
  log: Logger;
  /** Relationships beside the source's foreign keys: parents are read before their children. */
  relationships?: readonly Edge[];
  /** Most rows of a table without a key, which is read whole under a table read lock (0: none). */
  keylessMaxRows: number;
  /** The initial snapshot cannot be done as asked (a table it cannot load): capture stops. */
  onFatal(err: unknown): void;
}

interface Chunk {
  id: string;
  table: SnapshotTable;
  lowSeen: boolean;
  highSeen: boolean;
  /** Keys changed in the binlog between LOW and HIGH. */
  touched: Set<string>;
  rows: Record<string, unknown>[] | null;
  resolve(emitted: number): void;
  reject(err: unknown): void;
}

/** Progress kept in the journal, so a restarted capture resumes a snapshot where it was. */
interface Progress {
  id: string;
  /** Tables still to do, the current one first. */
  tables: TableRef[];
  /** Chunk key of the last row done in the current table (Buffers as {b64}). */
  after: unknown[] | null;
  rowsRead: number;
}

const PROGRESS_KEY = "snapshot";
/** Journal meta key: the initial snapshot (source.start.snapshot) is still to be started. */
const INITIAL_KEY = "initial-snapshot";

/**
 * Asks for the initial snapshot when a journal is created. The request stays in the journal until
 * the snapshot has started, so a crash before that asks again; after that, its progress resumes it.
 */
export function requestInitialSnapshot(journal: Journal): void {
  journal.setMeta(INITIAL_KEY, "pending");
}

function encodeKey(after: unknown[] | null): unknown[] | null {
  return after?.map((v) => (Buffer.isBuffer(v) ? { b64: v.toString("base64") } : v)) ?? null;
}
function decodeKey(after: unknown[] | null): unknown[] | null {
  return (
    after?.map((v) =>
      v && typeof v === "object" && "b64" in v
        ? Buffer.from(String((v as { b64: string }).b64), "base64")
        : v,
    ) ?? null
  );
}

/** A key as a string that is equal for the binlog's and the snapshot's rendering of the same row. */
function keyString(row: Record<string, unknown>, columns: readonly string[]): string {
  let s = "";
  for (const c of columns) {
    const v = row[c];
    s += `${Buffer.isBuffer(v) ? `x${v.toString("hex")}` : v === null || v === undefined ? "\u0000" : String(v)}\u0001`;
  }
  return s;
}

export interface SnapshotState {
  id: string;
  table: TableRef;
  tablesLeft: number;
  rowsRead: number;
  estimatedRows: number;
  lastError: string;
}

/**
 * Sits between the binlog reader and the assembler (every call is passed on) to watch the
 * watermarks, and runs the snapshot's chunk loop.
 */
export class SnapshotCoordinator implements BinlogHandler {
  private current: Chunk | null = null;
  private running: Promise<void> | null = null;
  private readonly stop = new AbortController();
  state: SnapshotState | null = null;
  lastError = "";

  constructor(private readonly o: SnapshotOptions) {}

  // --- the binlog side ---
  onBegin(gtid: string, at: Position, ts: number): void {
    this.o.assembler.onBegin(gtid, at, ts);
  }
  onRows(op: Op, table: TableInfo, rows: unknown[], ts: number): void {
    const c = this.current;
    if (c?.lowSeen && !c.highSeen && sameTable(table, c.table.info)) {
      const key = c.table.chunkKey;
      for (const r of rows) {
        const images = (r as { before?: unknown }).before
          ? [
              (r as { before: Record<string, unknown> }).before,
              (r as { after: Record<string, unknown> }).after,
            ]
          : [r as Record<string, unknown>];
        for (const image of images) c.touched.add(keyString(image, key));
      }
    }
    this.o.assembler.onRows(op, table, rows, ts);
  }
  onCommit(at: Position, ts: number): void {
    this.o.assembler.onCommit(at, ts);
    const c = this.current;
    if (!c?.highSeen) return;
    this.current = null;
    const keyless = c.table.chunkKey.length === 0;
    // Keyless: read under a lock that kept every change of the table out of the window.
    const rows = keyless
      ? (c.rows ?? [])
      : (c.rows ?? []).filter((r) => !c.touched.has(keyString(r, c.table.chunkKey)));
    try {
      // The read replaces the target's rows of a keyless table (they cannot be matched one by one).
      if (keyless)
        this.o.assembler.onDdl(
          `TRUNCATE TABLE ${quoteId(c.table.info.table)}`,
          c.table.info.db,
          [c.table.info],
          at,
          ts,
        );
      this.o.assembler.snapshotRows(c.table.info, rows, at, c.id);
      c.resolve(rows.length);
    } catch (err) {
      c.reject(err);
    }
  }
  onDdl(statement: string, db: string, tables: TableRef[], at: Position, ts: number): void {
    const c = this.current;
    // The table's columns may have changed under the chunk: read it again.
    if (c?.lowSeen && tables.some((t) => sameTable(t, c.table.info))) {
      this.current = null;
      c.reject(new RetryChunk());
    }
    this.o.assembler.onDdl(statement, db, tables, at, ts);
  }
  onPosition(at: Position): void {
    this.o.assembler.onPosition(at);
  }
  onStandalone(at: Position, ts: number): void {
    this.o.assembler.onStandalone(at, ts);
  }
  onCaughtUp(): void {
    this.o.assembler.onCaughtUp();
  }
  onSignal(rows: unknown[]): void {
    const c = this.current;
    if (!c) return;
    for (const r of rows as { id?: string }[]) {
      if (r.id === `${c.id}:low`) {
        // Seen again after a reader restart: the events after it come again too.
        c.lowSeen = true;
        c.touched.clear();
      } else if (r.id === `${c.id}:high` && c.lowSeen) {
        c.highSeen = true;
      }
    }
  }

  // --- the snapshot side ---
  get isRunning(): boolean {
    return this.running !== null;
  }

  /** Resumes a snapshot a previous process left unfinished, or starts the initial one if asked for. */
  resume(): void {
    const journal = this.o.journal;
    const saved = journal.getMeta(PROGRESS_KEY);
    if (saved) {
      const p = JSON.parse(saved) as Progress;
      // Progress saved by an earlier version named tables as "db.table" strings.
      p.tables = p.tables.map((t) => (typeof t === "string" ? parseTableRef(t) : t));
      this.o.log.info({ snapshot: p.id, tables: p.tables.length }, "resuming the unfinished snapshot");
      this.launch(p);
    }
    if (journal.getMeta(INITIAL_KEY) !== "pending") return;
    // Started before a crash (its progress was saved): what resumed above is the initial snapshot.
    if (this.running) {
      journal.setMeta(INITIAL_KEY, null);
      return;
    }
    this.start([], { initial: true }).then(
      (id) => {
        if (id) this.o.log.info({ snapshot: id }, "initial snapshot started");
        else this.o.log.info("initial snapshot: no captured table yet");
        if (!this.stop.signal.aborted) journal.setMeta(INITIAL_KEY, null);
      },
      (err: unknown) => {
        if (this.stop.signal.aborted) return;
        // A table it cannot load: stop rather than run with a target that silently lacks it.
        // The request stays, so the next start (after the fix) snapshots.
        if (err instanceof ConfigError) this.o.onFatal(err);
        else
          this.o.log.warn(
            { err: errorMessage(err) },
            "initial snapshot not started; asked again at the next start",
          );
      },
    );
  }

  /**
   * Starts a snapshot of `tables` (empty = every captured table). Checks every table first and
   * names each problem. Only one snapshot runs at a time. The initial snapshot (`initial`) of a
   * source with no captured table yet starts nothing and resolves with "".
   */
  async start(tables: readonly TableRef[], options: { initial?: boolean } = {}): Promise<string> {
    if (this.running)
      throw new ConfigError(ErrorCode.CONFIG_INVALID, [
        `snapshot ${this.state?.id} is still running (table ${this.state ? formatTableRef(this.state.table) : "?"}); wait for it to finish`,
      ]);
    const conn = await this.connect();
    let refs: TableRef[];
    try {
      const unique = new Map(tables.map((t) => [tableKey(t), t]));
      refs = tables.length > 0 ? [...unique.values()] : await this.allTables(conn);
      const problems: string[] = [];
      for (const ref of refs) {
        const name = formatTableRef(ref);
        if (!ref.db || !ref.table) problems.push(`${name}: name tables by database and table`);
        else if (!this.o.filter.includesTable(ref.db, ref.table))
          problems.push(`${name}: not captured (source.include/exclude)`);
        else {
          const t = await describeSnapshotTable(conn, ref, this.o.filter, this.o.subjectFor).catch(
            (e: Error) => e,
          );
          if (t instanceof Error) problems.push(`${name}: ${t.message}`);
          else if (t.chunkKey.length === 0 && t.estimatedRows > this.o.keylessMaxRows)
            problems.push(keylessTooLarge(name, t.estimatedRows, this.o.keylessMaxRows));
        }
      }
      if (refs.length === 0) {
        if (options.initial && problems.length === 0) return "";
        problems.push("no captured table to snapshot");
      }
      if (problems.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, problems);
      // Parents first: a child's rows find their parents' (pipeline key maps, target FK checks).
      const fks = await foreignKeys(conn, [...new Set(refs.map((r) => r.db))]);
      refs = parentsFirst(refs, [...fks, ...(this.o.relationships ?? [])]);
    } finally {
      await conn.close();
    }
    const progress: Progress = { id: randomUUID().slice(0, 13), tables: refs, after: null, rowsRead: 0 };
    this.o.journal.setMeta(PROGRESS_KEY, JSON.stringify(progress));
    this.launch(progress);
    return progress.id;
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.current?.reject(new AbortedError());
    this.current = null;
    await this.running?.catch(() => {});
  }

  private launch(p: Progress): void {
    this.lastError = "";
    this.o.metrics.running.set(1);
    this.running = this.run(p)
      .catch((err: unknown) => {
        if (err instanceof AbortedError || this.stop.signal.aborted) return;
        // A table it cannot load as asked (a keyless table past its limit): not retried in silence.
        if (err instanceof ConfigError) this.o.onFatal(err);
        this.lastError = errorMessage(err);
        if (this.state) this.state.lastError = this.lastError;
        this.o.log.error(
          { err: this.lastError, snapshot: p.id },
          "snapshot failed; it resumes at the next start",
        );
      })
      .finally(() => {
        this.running = null;
        this.o.metrics.running.set(0);
      });
  }

  private connect(): Promise<MysqlSession> {
    return MysqlSession.open(this.o.endpoint, { role: "source", setup: READ_SESSION });
  }

  private async allTables(conn: MysqlSession): Promise<TableRef[]> {
    const rows = await conn.query<{ db: string; t: string }[]>(
      "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY 1, 2",
    );
    return rows.filter((r) => this.o.filter.includesTable(r.db, r.t)).map((r) => ({ db: r.db, table: r.t }));
  }

  private async run(p: Progress): Promise<void> {
    const conn = await this.connect();
    const signal = quoteTable(this.o.signalTable);
    try {
      await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(this.o.signalTable.db)}`);
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${signal} (id VARCHAR(64) PRIMARY KEY, snapshot_id VARCHAR(64) NOT NULL, kind VARCHAR(8) NOT NULL, table_name VARCHAR(200) NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`,
      );
      while (p.tables.length > 0) {
        const ref = p.tables[0]!;
        const name = formatTableRef(ref);
        let t = await describeSnapshotTable(conn, ref, this.o.filter, this.o.subjectFor);
        const labels = { db: ref.db, table: ref.table };
        this.state = {
          id: p.id,
          table: ref,
          tablesLeft: p.tables.length,
          rowsRead: p.rowsRead,
          estimatedRows: t.estimatedRows,
          lastError: "",
        };
        let after = decodeKey(p.after);
        for (;;) {
          if (this.stop.signal.aborted) throw new AbortedError();
          const id = `${p.id}.${randomUUID().slice(0, 8)}`;
          const done = new Promise<number>((resolve, reject) => {
            this.current = {
              id,
              table: t,
              lowSeen: false,
              highSeen: false,
              touched: new Set(),
              rows: null,
              resolve,
              reject,
            };
          });
          done.catch(() => {});
          const chunk = this.current!;
          const keyless = t.chunkKey.length === 0;
          // Keyless: writers of the table wait from before LOW to after HIGH (one whole read).
          if (keyless) await conn.query(`LOCK TABLES ${quoteTable(ref)} READ, ${signal} WRITE`);
          let read: { rows: Record<string, unknown>[]; last: unknown[] | null };
          try {
            await conn.query(
              `INSERT INTO ${signal} (id, snapshot_id, kind, table_name) VALUES (?, ?, 'low', ?)`,
              [`${id}:low`, p.id, name],
            );
            read = keyless
              ? await readWhole(conn, t, this.o.keylessMaxRows)
              : await readChunk(conn, t, after, this.o.chunkRows);
            chunk.rows = read.rows;
            await conn.query(
              `INSERT INTO ${signal} (id, snapshot_id, kind, table_name) VALUES (?, ?, 'high', ?)`,
              [`${id}:high`, p.id, name],
            );
          } finally {
            if (keyless) await conn.query("UNLOCK TABLES");
          }
          const { rows, last } = read;
          try {
            await done;
          } catch (err) {
            if (!(err instanceof RetryChunk)) throw err;
            t = await describeSnapshotTable(conn, ref, this.o.filter, this.o.subjectFor);
            continue; // the same chunk again, with the new definition
          }
          // The chunk is journaled before the progress says so: a crash in between reads it again.
          this.o.flush();
          p.rowsRead += rows.length;
          p.after = encodeKey(last);
          this.o.metrics.rows.inc(labels, rows.length);
          this.state.rowsRead = p.rowsRead;
          this.o.metrics.progress.set(labels, Math.min(1, p.rowsRead / Math.max(1, t.estimatedRows)));
          if (keyless || rows.length < this.o.chunkRows) break;
          after = last;
          this.o.journal.setMeta(PROGRESS_KEY, JSON.stringify(p));
        }
        this.o.metrics.progress.set(labels, 1);
        this.o.log.info({ snapshot: p.id, table: name, rows: p.rowsRead }, "table snapshot done");
        p.tables.shift();
        p.after = null;
        p.rowsRead = 0;
        this.o.journal.setMeta(PROGRESS_KEY, p.tables.length > 0 ? JSON.stringify(p) : null);
        await conn.query(`DELETE FROM ${signal} WHERE snapshot_id = ?`, [p.id]);
      }
      if (this.state) this.state.tablesLeft = 0;
    } finally {
      this.current = null;
      await conn.close();
    }
  }
}

function keylessTooLarge(name: string, rows: number, max: number): string {
  return `${name}: has no primary key or NOT NULL unique key, so it would be read whole under a table read lock, and it has about ${rows} rows, more than capture.snapshot.keylessMaxRows (${max}): add a primary key, or raise the limit`;
}

/** A keyless table in one read (under the caller's lock), refused past `max` rows. */
async function readWhole(
  conn: MysqlSession,
  t: SnapshotTable,
  max: number,
): Promise<{ rows: Record<string, unknown>[]; last: null }> {
  const { rows } = await readChunk(conn, t, null, max + 1);
  if (rows.length > max)
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      keylessTooLarge(formatTableRef(t.info), rows.length, max),
    ]);
  return { rows, last: null };
}

/** The chunk must be read again (its table's definition changed inside the window). */
class RetryChunk extends Error {}
