import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

/**
 * The archive's file format: one SQLite database per period (docs/backup.md). Version 1.
 *
 * - `txns`: one row per source transaction (kind 0) or DDL statement (kind 1), in stream order:
 *   the stream sequence of its message, its first row in the capture group, GTID, start position
 *   (file, pos, and `sortable` that compares as text), commit time (seconds); DDL keeps its
 *   statement, default database and touched tables. `first_change` is the id of its first row in
 *   `changes` (row ids are assigned in order, so a range of transactions is a range of rows).
 * - `schemas`: a table's shape as the envelope had it (columns with their SQL types, primary key,
 *   schema version); every change points at one.
 * - `changes`: one row per row change: op (c/u/d/r), the key as text (`pk`, and `pk_old` when an
 *   update moved it), and `row`, the RowChange exactly as the envelope carried it (protobuf, typed
 *   values: BIGINT UNSIGNED, DECIMAL text, bytes, temporals as text, JSON text). Nothing is
 *   converted on the way in, so nothing can be lost: reading decodes it with the stream's own decoder.
 * - `definitions`: CREATE TABLE statements of the source tables, as the archive first saw them
 *   (for a replay into an empty database).
 * - `checkpoint`, `applied`: the DPU's exactly-once records, as in a target database.
 */
export const FORMAT_VERSION = 1;

export const FILE_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schemas (
  id INTEGER PRIMARY KEY, db TEXT NOT NULL, tbl TEXT NOT NULL, version INTEGER NOT NULL,
  columns TEXT NOT NULL, pkey TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txns (
  id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, seq INTEGER NOT NULL, first_row INTEGER NOT NULL,
  gtid TEXT NOT NULL, file TEXT NOT NULL, pos INTEGER NOT NULL, sortable TEXT NOT NULL,
  commit_time INTEGER NOT NULL, first_change INTEGER NOT NULL,
  db TEXT, statement TEXT, tables TEXT);
CREATE INDEX IF NOT EXISTS txns_sortable ON txns (sortable);
CREATE INDEX IF NOT EXISTS txns_time ON txns (commit_time);
CREATE TABLE IF NOT EXISTS changes (
  id INTEGER PRIMARY KEY, txn INTEGER NOT NULL, schema INTEGER NOT NULL, row_index INTEGER NOT NULL,
  op TEXT NOT NULL, pk TEXT, pk_old TEXT, row BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS changes_key ON changes (schema, pk);
CREATE TABLE IF NOT EXISTS definitions (
  id INTEGER PRIMARY KEY, db TEXT NOT NULL, tbl TEXT NOT NULL, seq INTEGER NOT NULL, create_sql TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (consumer TEXT PRIMARY KEY, low_water INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS applied (
  consumer TEXT NOT NULL, stream_seq INTEGER NOT NULL, first_row INTEGER NOT NULL,
  max_seq INTEGER NOT NULL, units TEXT NOT NULL, PRIMARY KEY (consumer, stream_seq, first_row));
`;

/** kind of a `txns` row. */
export const TXN_DML = 0;
export const TXN_DDL = 1;

/** How files are cut: by source commit hour or day (UTC), or by size only. */
export type ArchivePeriod = "hour" | "day" | "size";

/** One file of an archive: `<number>-<period label>.sqlite`, numbered in the order written. */
export interface ArchiveFile {
  path: string;
  name: string;
  number: number;
  /** The period it was started for ("2024-06-01", "2024-06-01T13", or "" for size-only files). */
  label: string;
  bytes: number;
}

const FILE_NAME = /^(\d{6,})(?:-([0-9T-]+))?\.sqlite$/;

/** The label of a period that contains `seconds` (commit time, UTC). */
export function periodLabel(period: ArchivePeriod, seconds: number): string {
  if (period === "size") return "";
  const iso = new Date(seconds * 1000).toISOString();
  return period === "day" ? iso.slice(0, 10) : iso.slice(0, 13);
}

export function fileName(number: number, label: string): string {
  return `${String(number).padStart(6, "0")}${label ? `-${label}` : ""}.sqlite`;
}

/** The archive's files, oldest first (by number). A missing folder has none. */
export function listFiles(dir: string): ArchiveFile[] {
  if (!existsSync(dir)) return [];
  const out: ArchiveFile[] = [];
  for (const name of readdirSync(dir)) {
    const m = FILE_NAME.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    // A file (or its -wal, removed when the writer closes it) may go while this looks: retention.
    const main = statSync(path, { throwIfNoEntry: false });
    if (!main) continue;
    let bytes = main.size;
    for (const extra of ["-wal", "-shm"])
      bytes += statSync(path + extra, { throwIfNoEntry: false })?.size ?? 0;
    out.push({ path, name, number: Number(m[1]), label: m[2] ?? "", bytes });
  }
  return out.sort((a, b) => a.number - b.number);
}

/**
 * Opens (creating when asked) one archive file in WAL mode. synchronous=NORMAL: in WAL mode a
 * commit survives a crash of the process; a power loss may lose the last commits, but the
 * checkpoint row goes with them, so the DPU reads those messages again (the stream keeps them).
 */
export function openFile(path: string, o: { create: boolean; readonly?: boolean }): Database.Database {
  if (o.create) mkdirSync(join(path, ".."), { recursive: true });
  const db = new Database(path, { fileMustExist: !o.create, readonly: o.readonly === true });
  db.pragma("busy_timeout = 5000");
  if (!o.readonly) {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    // The key index's pages stay in memory while a file is written (32 MiB at most).
    db.pragma("cache_size = -32768");
    // One transaction: a reader sees a new file either without tables or whole, format row included.
    db.transaction(() => {
      db.exec(FILE_SCHEMA);
      db.prepare("INSERT OR IGNORE INTO meta (k, v) VALUES ('format', ?)").run(String(FORMAT_VERSION));
    })();
  }
  return db;
}

/** Whether a file has its tables yet (a file being created by the writer may not, for a moment). */
export function initialized(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
}
