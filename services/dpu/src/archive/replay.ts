import { type ArchiveFilter, ArchiveReader } from "@dfs/archive";
import { type DecodedChange, formatTableRef, tableKey } from "@dfs/codec";
import { DataError, ErrorCode, type Logger } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { describeTable, type MysqlEndpoint, MysqlSession, quoteId } from "@dfs/mysql";
import { MysqlSink } from "../mysql-sink.js";
import type { Change } from "../sink.js";

export interface ArchiveReplayOptions {
  dir: string;
  filter: ArchiveFilter;
  /** The database server to replay into. */
  target: MysqlEndpoint;
  /** Replay every source database into this one (default: the same names). */
  database?: string;
  /** Rows per target transaction (whole source transactions, so it may hold more). */
  batchRows?: number;
  log: Logger;
  signal: AbortSignal;
}

export interface ArchiveReplayResult {
  transactions: number;
  changes: number;
  ddl: number;
}

/**
 * Replays a range of the archive into a database through the MySQL sink's own apply path: each
 * archived change becomes the same `Change` the DPU builds from the stream, and `MysqlSink.replay`
 * plans and writes it as the DPU would (upserts, deletes by key, whole-image matches for tables
 * without a key), whole source transactions per target transaction, DDL in its place. A table the
 * target lacks is created from the definition the archive kept. A change the target refuses stops
 * the replay with the error (nothing is skipped silently).
 */
export async function replayArchive(cfg: DfsConfig, o: ArchiveReplayOptions): Promise<ArchiveReplayResult> {
  const reader = new ArchiveReader(o.dir);
  const mapDb = (db: string) => o.database ?? db;
  const sink = new MysqlSink({
    target: o.target,
    mapDb,
    consumer: `${cfg.source.id}:archive-replay`,
    metaDatabase: cfg.dpu.metaDatabase,
    statementRows: cfg.dpu.batch.statementRows,
    connections: 1,
    retry: cfg.dpu.retry,
    log: o.log,
    signal: o.signal,
    deadLetter: async (rejected) => {
      const r = rejected[0]!;
      throw new DataError(ErrorCode.DATA_INVALID, `${formatTableRef(r.change.ref)}: ${r.error}`);
    },
  });
  const admin = await MysqlSession.open(o.target, { role: "target" });
  const result: ArchiveReplayResult = { transactions: 0, changes: 0, ddl: 0 };
  try {
    await sink.open();
    const ready = new Set<string>();
    const batchRows = o.batchRows ?? cfg.dpu.batch.maxRows;
    let pending: Change[] = [];
    let lastTxn = "";
    const flush = async () => {
      if (pending.length === 0) return;
      await sink.replay(pending);
      result.changes += pending.length;
      pending = [];
    };
    for (const e of reader.entries(o.filter)) {
      const txn = `${e.txn.archiveFile}:${e.txn.id}`;
      if (txn !== lastTxn) {
        // A target transaction ends only between source transactions.
        if (pending.length >= batchRows) await flush();
        result.transactions++;
        lastTxn = txn;
      }
      if (e.kind === "ddl") {
        await flush();
        await sink.applyDdl({ db: e.db, statement: e.statement, tables: e.tables }, e.txn.seq);
        for (const t of e.tables) ready.delete(tableKey(t));
        result.ddl++;
        continue;
      }
      const key = tableKey(e.change.ref);
      if (!ready.has(key)) {
        await ensureTable(admin, reader, e.change, mapDb, e.txn.seq, o.log);
        ready.add(key);
      }
      pending.push(await changeOf(sink, e.change, e.txn.seq));
    }
    await flush();
    result.transactions -= result.ddl;
    return result;
  } finally {
    await sink.close();
    await admin.close();
  }
}

/** An archived change as the DPU's transaction builder would have made it from the stream. */
async function changeOf(sink: MysqlSink, d: DecodedChange, seq: number): Promise<Change> {
  const target = await sink.describe(d.ref);
  if (!target)
    throw new DataError(ErrorCode.OBJECT_MISSING, `target table for ${formatTableRef(d.ref)} does not exist`);
  const columns = d.batch.columns.map((c) => c.name).filter((n) => target.columns.has(n));
  return Object.assign(d as Change, { seq, target, columns, keys: null });
}

/**
 * Creates the target table from the archive's definition when the target lacks it. The definition
 * is the source's CREATE TABLE as the archive first met the table, which can be newer than the
 * range's first rows (the archive caught up a backlog after later DDL): a table whose columns are
 * not those of the rows is dropped again and the replay stops, naming both, rather than replay into
 * a table the source did not have then.
 */
async function ensureTable(
  s: MysqlSession,
  reader: ArchiveReader,
  first: DecodedChange,
  mapDb: (db: string) => string,
  seq: number,
  log: Logger,
): Promise<void> {
  const ref = first.ref;
  const target = { db: mapDb(ref.db), table: ref.table };
  if (await describeTable(s, target)) return;
  const sql = reader.definition(ref, seq);
  if (!sql) return; // the sink's describe reports the missing table
  log.info({ table: formatTableRef(target) }, "creating the table from the archive's definition");
  await s.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(target.db)}`);
  await s.query(`USE ${quoteId(target.db)}`);
  await s.query(sql.replace(/^CREATE TABLE /i, "CREATE TABLE IF NOT EXISTS "));
  const made = (await describeTable(s, target))?.columns.map((c) => c.name) ?? [];
  const rows = first.batch.columns.map((c) => c.name);
  if (made.join("\u0000") === rows.join("\u0000")) return;
  await s.query(`DROP TABLE ${quoteId(target.db)}.${quoteId(target.table)}`);
  throw new DataError(
    ErrorCode.OBJECT_MISSING,
    `${formatTableRef(target)} does not exist, and the archive's definition of ${formatTableRef(ref)} (columns ${made.join(", ")}) is not the table its rows at the range's start had (columns ${rows.join(", ")}): the definition was taken from the source after later DDL. Create the table as it was then, or replay from before its CREATE TABLE (the archive's DDL then makes it)`,
  );
}
