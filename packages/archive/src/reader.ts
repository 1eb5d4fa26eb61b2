import { existsSync } from "node:fs";
import { type DecodedChange, decodeBatchChanges, Position, type TableRef } from "@dfs/codec";
import { ChangeBatch } from "@dfs/proto";
import type Database from "better-sqlite3";
import { type ArchiveFile, FORMAT_VERSION, initialized, listFiles, openFile, TXN_DDL } from "./format.js";

/** What to read: every condition given must hold. Ranges include their start and exclude their end. */
export interface ArchiveFilter {
  /** Only these tables (and the DDL that names one of them; DDL is left out when a key is asked for). */
  tables?: readonly TableRef[];
  /** Only changes of this key (keyText form, see parseKeyArg), usually with `tables`. */
  key?: string;
  /** Commit time, seconds since the epoch. */
  since?: number;
  until?: number;
  /** Source transactions starting at or after / before these binlog positions. */
  fromPos?: Position;
  toPos?: Position;
  /** Stop after this many row changes. */
  limit?: number;
  /** Only entries after this transaction (in stream order: a later file, or a later one in its file). */
  after?: { archiveFile: string; id: number };
}

/** Where a source transaction (or DDL) is in the source's history. */
export interface TxnInfo {
  /** File of the archive and the transaction's id in it. */
  archiveFile: string;
  id: number;
  /** Stream sequence of its (first) message. */
  seq: number;
  gtid: string;
  /** Where it started in the binlog (the previous commit's end). */
  position: Position;
  /** Commit time on the source, seconds since the epoch. */
  commitTime: number;
}

export type ArchiveEntry =
  | { kind: "change"; txn: TxnInfo; change: DecodedChange }
  | { kind: "ddl"; txn: TxnInfo; db: string; statement: string; tables: TableRef[] };

interface SchemaRow {
  id: number;
  db: string;
  tbl: string;
  version: number;
  columns: string;
  pkey: string;
}

interface TxnRow {
  id: number;
  kind: number;
  seq: number;
  gtid: string;
  file: string;
  pos: number;
  commit_time: number;
  first_change: number;
  db: string | null;
  statement: string | null;
  tables: string | null;
}

interface ChangeRow {
  id: number;
  txn: number;
  schema: number;
  row: Buffer;
}

/** Reads an archive folder (while a DPU writes it: WAL readers see committed transactions only). */
export class ArchiveReader {
  constructor(readonly dir: string) {}

  files(): ArchiveFile[] {
    return listFiles(this.dir);
  }

  /**
   * Runs `read` on each file, oldest first, each in one read transaction (one snapshot). A file that retention deletes meanwhile is skipped (from
   * where it went: what it held is no longer in the archive); any other failure names the file.
   */
  *eachFile<T>(read: (db: Database.Database, f: ArchiveFile) => Iterable<T>): Generator<T> {
    for (const f of this.files()) {
      let db: Database.Database;
      try {
        db = openFile(f.path, { create: false, readonly: true });
      } catch (err) {
        if (!existsSync(f.path) || (err as { code?: string }).code === "SQLITE_CANTOPEN") continue;
        throw fileError(f, err);
      }
      try {
        // One read transaction: everything read from a file comes from one snapshot of it, even
        // while the writer goes on committing to it.
        db.exec("BEGIN");
        if (!initialized(db)) continue; // being created: nothing committed in it yet
        checkFormat(db, f);
        yield* read(db, f);
      } catch (err) {
        if (!existsSync(f.path)) continue;
        throw fileError(f, err);
      } finally {
        db.close();
      }
    }
  }

  /** The entries that match, in stream order (oldest first). */
  *entries(filter: ArchiveFilter = {}): Generator<ArchiveEntry> {
    let left = filter.limit ?? Number.POSITIVE_INFINITY;
    for (const e of this.eachFile((db, f) => readFile(db, f, filter))) {
      if (left <= 0) return;
      if (e.kind === "change") left--;
      yield e;
    }
  }

  /** The highest low-water mark the files hold for `consumer` (0: none): every stream message up to it is archived. */
  checkpoint(consumer: string): number {
    let low = 0;
    for (const w of this.eachFile((db) => {
      const r = db.prepare("SELECT low_water AS w FROM checkpoint WHERE consumer = ?").get(consumer) as
        | { w: number }
        | undefined;
      return r ? [r.w] : [];
    }))
      low = Math.max(low, w);
    return low;
  }

  /** CREATE TABLE of a source table as the archive saw it: the newest at or before `seq`, else the oldest. */
  definition(ref: TableRef, seq: number): string | null {
    let before: { seq: number; sql: string } | null = null;
    let after: { seq: number; sql: string } | null = null;
    for (const d of this.eachFile(
      (db) =>
        db
          .prepare("SELECT seq, create_sql AS sql FROM definitions WHERE db = ? AND tbl = ? ORDER BY id")
          .all(ref.db, ref.table) as { seq: number; sql: string }[],
    )) {
      if (d.seq <= seq && (!before || d.seq >= before.seq)) before = d;
      if (d.seq > seq && (!after || d.seq < after.seq)) after = d;
    }
    return (before ?? after)?.sql ?? null;
  }
}

function fileError(f: ArchiveFile, err: unknown): Error {
  if (err instanceof Error && err.message.startsWith(f.path)) return err;
  return new Error(`${f.path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function checkFormat(db: Database.Database, f: ArchiveFile): void {
  const row = db.prepare("SELECT v FROM meta WHERE k = 'format'").get() as { v: string } | undefined;
  const v = Number(row?.v ?? 0);
  if (v < 1 || v > FORMAT_VERSION)
    throw new Error(`${f.path}: archive format ${row?.v ?? "unknown"} (this dfs reads 1..${FORMAT_VERSION})`);
}

/** The number an archive file's name starts with (its place in the archive). */
function fileNumber(name: string): number {
  return Number(/^\d+/.exec(name)?.[0] ?? Number.NaN);
}

function* readFile(db: Database.Database, f: ArchiveFile, filter: ArchiveFilter): Generator<ArchiveEntry> {
  const after = filter.after ? fileNumber(filter.after.archiveFile) : null;
  if (after !== null && f.number < after) return;
  const schemas = new Map<number, { row: SchemaRow; header: Uint8Array }>();
  for (const s of db.prepare("SELECT * FROM schemas").all() as SchemaRow[])
    schemas.set(s.id, { row: s, header: headerOf(s) });
  const wanted = filter.tables
    ? [...schemas.values()]
        .filter((s) => filter.tables!.some((t) => t.db === s.row.db && t.table === s.row.tbl))
        .map((s) => s.row.id)
    : null;
  // No rows of the tables in this file: only their DDL can be (unless a key is asked for).
  if (wanted && wanted.length === 0 && filter.key !== undefined) return;

  const where: string[] = [];
  const params: unknown[] = [];
  const cond = (sql: string, value: unknown) => {
    where.push(sql);
    params.push(value);
  };
  if (filter.since !== undefined) cond("commit_time >= ?", filter.since);
  if (filter.until !== undefined) cond("commit_time < ?", filter.until);
  if (filter.fromPos) cond("sortable >= ?", filter.fromPos.sortable);
  if (filter.toPos) cond("sortable < ?", filter.toPos.sortable);
  if (after !== null && f.number === after) cond("id > ?", filter.after!.id);
  const txns = db
    .prepare(`SELECT * FROM txns${where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY id`)
    .all(...params) as TxnRow[];
  if (txns.length === 0) return;
  const byId = new Map(txns.map((t) => [t.id, t]));
  const info = (t: TxnRow): TxnInfo => ({
    archiveFile: f.name,
    id: t.id,
    seq: t.seq,
    gtid: t.gtid,
    position: t.file ? Position.fromRecord({ file: t.file, pos: t.pos }) : Position.NONE,
    commitTime: t.commit_time,
  });
  const inSchemas = wanted ? ` AND schema IN (${wanted.map(() => "?").join(",")})` : "";
  const rows: Iterable<ChangeRow> =
    wanted && wanted.length === 0
      ? []
      : filter.key !== undefined
        ? (db
            .prepare(
              `SELECT id, txn, schema, row FROM changes WHERE (pk = ? OR pk_old = ?)${inSchemas} ORDER BY id`,
            )
            .iterate(filter.key, filter.key, ...(wanted ?? [])) as Iterable<ChangeRow>)
        : (db
            .prepare(`SELECT id, txn, schema, row FROM changes WHERE id >= ?${inSchemas} ORDER BY id`)
            .iterate(txns[0]!.first_change, ...(wanted ?? [])) as Iterable<ChangeRow>);
  const last = txns[txns.length - 1]!.id;
  // DDL: all of it, or with `tables` the statements that name one of them; none for a key.
  const withDdl = filter.key === undefined;
  const ddlWanted = (d: ArchiveEntry & { kind: "ddl" }) =>
    !filter.tables || d.tables.some((x) => filter.tables!.some((t) => t.db === x.db && t.table === x.table));
  let next = 0; // the next txn (of `txns`) whose DDL may be due
  const ddlUpTo = function* (txnId: number): Generator<ArchiveEntry> {
    for (; next < txns.length && txns[next]!.id <= txnId; next++) {
      const t = txns[next]!;
      if (t.kind !== TXN_DDL || !withDdl) continue;
      const d = ddlEntry(t, info(t));
      if (ddlWanted(d)) yield d;
    }
  };
  for (const r of rows) {
    if (r.txn > last) break;
    const t = byId.get(r.txn);
    if (!t) continue;
    yield* ddlUpTo(r.txn);
    const s = schemas.get(r.schema)!;
    yield { kind: "change", txn: info(t), change: decodeRow(s.header, r.row) };
  }
  yield* ddlUpTo(last);
}

function ddlEntry(t: TxnRow, txn: TxnInfo): ArchiveEntry & { kind: "ddl" } {
  const tables = (JSON.parse(t.tables ?? "[]") as [string, string][]).map(([db, table]) => ({ db, table }));
  return { kind: "ddl", txn, db: t.db ?? "", statement: t.statement ?? "", tables };
}

/** The envelope header of a stored table shape: archived rows decode against it. */
function headerOf(s: SchemaRow): Uint8Array {
  const columns = (JSON.parse(s.columns) as [string, string, string][]).map(([name, type, charset]) => ({
    name,
    type,
    charset,
  }));
  return ChangeBatch.encode(
    ChangeBatch.fromPartial({
      db: s.db,
      table: s.tbl,
      schemaVersion: s.version,
      columns,
      primaryKey: JSON.parse(s.pkey) as string[],
    }),
  ).finish();
}

/** A stored row (a RowChange field as the envelope carried it) decoded with the stream's decoder. */
function decodeRow(header: Uint8Array, row: Uint8Array): DecodedChange {
  const bytes = Buffer.concat([header, row]);
  return decodeBatchChanges(bytes).changes[0]!;
}
