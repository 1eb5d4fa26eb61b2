import { rmSync } from "node:fs";
import { join } from "node:path";
import type { DecodedChange, Position, TableRef } from "@dfs/codec";
import type Database from "better-sqlite3";
import {
  type ArchiveFile,
  type ArchivePeriod,
  fileName,
  initialized,
  listFiles,
  openFile,
  periodLabel,
  TXN_DDL,
  TXN_DML,
} from "./format.js";
import { type PackedChanges, type PackedSchema, packChanges } from "./pack.js";

export interface ArchiveWriterOptions {
  dir: string;
  period: ArchivePeriod;
  /** A new file starts once the current one is this large. */
  maxFileBytes: number;
  retention: { maxAgeMs?: number | undefined; maxBytes?: number | undefined };
  /** Whose checkpoint the archive keeps (the DPU's consumer). */
  consumer: string;
  /** Wall clock in ms (tests move it). */
  now?: () => number;
  /** Told about files started and deleted. */
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/** A change as the sink hands it over: the decoded change and its stream message's sequence. */
export interface ArchivedChange extends DecodedChange {
  readonly seq: number;
}

/** A schema change as the sink hands it over. */
export interface ArchivedDdl {
  seq: number;
  db: string;
  statement: string;
  tables: readonly TableRef[];
  gtid: string;
  position: Position;
  commitTime: number;
}

/**
 * The exactly-once records written with the data: the low-water mark (every stream message at or
 * below it is archived; applied records at or below it are dropped), and/or one applied record
 * (the source transactions a write holds when it is not all of the messages up to a point).
 */
export interface CheckpointWrite {
  lowWater?: number;
  applied?: { seq: number; firstRow: number; maxSeq: number; units: string };
}

const INSERT_CHANGES = "INSERT INTO changes (id, txn, schema, row_index, op, pk, pk_old, row) VALUES ";
const CHANGE_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)";
const CHANGE_PARAMS = 8;
const ROWS_PER_INSERT = 50;

interface Statements {
  txn: Database.Statement;
  change: Database.Statement;
  changes: Database.Statement;
  schema: Database.Statement;
  lowWater: Database.Statement;
  dropApplied: Database.Statement;
  applied: Database.Statement;
}

/**
 * Writes the archive: one SQLite file at a time, each write (changes or DDL with the checkpoint)
 * one SQLite transaction. A new file starts when a write's first commit time falls in a later
 * period than the current file's, or the current file reached maxFileBytes; its first transaction
 * carries the checkpoint along, so the newest file always holds it. Retention deletes whole old
 * files, never the current one.
 */
export class ArchiveWriter {
  private db: Database.Database | null = null;
  private file: ArchiveFile | null = null;
  private st: Statements | null = null;
  private pageSize = 4096;
  private schemaBySig = new Map<string, number>();
  private nextChange = 1;
  private nextTxn = 1;
  /** The low-water mark last written, and whether the current file holds a checkpoint row. */
  private lowWater = 0;
  private fileHasCheckpoint = false;
  /** Source transactions of the open write (capture group ordinal:first row -> txn id). */
  private openTxns = new Map<string, number>();
  private largeOpen = false;
  /** Parameters of the changes not inserted yet (multi-row INSERTs cost far less per row). */
  private readonly params: unknown[] = [];

  private constructor(private readonly o: ArchiveWriterOptions) {}

  /** Opens the archive folder: the newest file becomes the current one (none: made at the first write). */
  static open(o: ArchiveWriterOptions): ArchiveWriter {
    const w = new ArchiveWriter(o);
    const files = listFiles(o.dir);
    const newest = files[files.length - 1];
    if (newest) w.use(newest, false);
    w.lowWater = w.readCheckpoint().lowWater;
    w.applyRetention();
    return w;
  }

  /** The file being written (null before the first write). */
  get current(): ArchiveFile | null {
    return this.file;
  }

  /** The low-water mark and the applied records above it, over every file (the newest decides). */
  readCheckpoint(): { lowWater: number; units: string[] } {
    let lowWater = 0;
    const records: { maxSeq: number; units: string }[] = [];
    for (const f of listFiles(this.o.dir)) {
      const db = f.path === this.file?.path ? this.db! : openFile(f.path, { create: false, readonly: true });
      try {
        if (!initialized(db)) continue;
        const row = db
          .prepare("SELECT low_water AS w FROM checkpoint WHERE consumer = ?")
          .get(this.o.consumer) as { w: number } | undefined;
        if (row) lowWater = Math.max(lowWater, row.w);
        const rows = db
          .prepare("SELECT max_seq AS maxSeq, units FROM applied WHERE consumer = ?")
          .all(this.o.consumer) as { maxSeq: number; units: string }[];
        records.push(...rows);
      } finally {
        if (db !== this.db) db.close();
      }
    }
    return { lowWater, units: records.filter((r) => r.maxSeq > lowWater).map((r) => r.units) };
  }

  /** Changes (whole source transactions, in order) and the checkpoint, in one SQLite transaction. */
  write(changes: readonly ArchivedChange[], cp: CheckpointWrite): void {
    this.writePacked(packChanges(changes), cp);
  }

  /** `write` of changes packed already (packChanges; how a worker thread gets them). */
  writePacked(changes: PackedChanges, cp: CheckpointWrite): void {
    this.roll(this.firstCommitTime(changes));
    const db = this.db!;
    db.transaction(() => {
      this.insertChanges(changes);
      this.checkpoint(cp);
    })();
    this.openTxns.clear();
  }

  /** A schema change and the checkpoint, in one SQLite transaction. */
  writeDdl(ddl: ArchivedDdl, cp: CheckpointWrite): void {
    this.roll(ddl.commitTime);
    const db = this.db!;
    db.transaction(() => {
      const p = ddl.position;
      this.st!.txn.run(
        this.nextTxn++,
        TXN_DDL,
        ddl.seq,
        0,
        ddl.gtid,
        p.file,
        p.pos,
        p.hasFile ? p.sortable : "",
        ddl.commitTime,
        this.nextChange,
        ddl.db,
        ddl.statement,
        JSON.stringify(ddl.tables.map((t) => [t.db, t.table])),
      );
      this.checkpoint(cp);
    })();
  }

  /** The checkpoint alone (heartbeats, an idle DPU). */
  saveCheckpoint(cp: CheckpointWrite): void {
    if (!this.db) this.roll(Math.floor(this.now() / 1000));
    this.db!.transaction(() => this.checkpoint(cp))();
  }

  /** A source transaction larger than a group: parts go into one open SQLite transaction. */
  writePart(changes: readonly ArchivedChange[]): void {
    this.writePartPacked(packChanges(changes));
  }

  writePartPacked(changes: PackedChanges): void {
    if (!this.largeOpen) {
      this.roll(this.firstCommitTime(changes));
      this.db!.exec("BEGIN");
      this.largeOpen = true;
    }
    this.insertChanges(changes);
  }

  commitLarge(cp: CheckpointWrite): void {
    if (!this.largeOpen) {
      this.saveCheckpoint(cp);
      return;
    }
    try {
      this.checkpoint(cp);
      this.db!.exec("COMMIT");
    } finally {
      this.largeOpen = false;
      this.openTxns.clear();
    }
  }

  abortLarge(): void {
    if (this.largeOpen && this.db?.inTransaction) this.db.exec("ROLLBACK");
    this.largeOpen = false;
    this.openTxns.clear();
    this.params.length = 0;
    // The ids handed out in the rolled-back transaction are free again, table shapes forgotten.
    if (this.db) this.readCounters(this.db);
    this.schemaBySig = new Map();
  }

  /** Whether the current file has a definition of the table. */
  hasDefinition(ref: TableRef): boolean {
    if (!this.db) return false;
    return (
      this.db.prepare("SELECT 1 FROM definitions WHERE db = ? AND tbl = ? LIMIT 1").get(ref.db, ref.table) !==
      undefined
    );
  }

  /** Keeps a source table's CREATE TABLE (for a replay into an empty database). */
  recordDefinition(ref: TableRef, seq: number, createSql: string): void {
    if (!this.db) this.roll(Math.floor(this.now() / 1000));
    this.db!.prepare("INSERT INTO definitions (db, tbl, seq, create_sql) VALUES (?, ?, ?, ?)").run(
      ref.db,
      ref.table,
      seq,
      createSql,
    );
  }

  close(): void {
    if (this.largeOpen) this.abortLarge();
    this.db?.close();
    this.db = null;
    this.st = null;
  }

  private now(): number {
    return this.o.now ? this.o.now() : Date.now();
  }

  /** Starts a new file when the period moved on or the current file is full; then retention. */
  private roll(commitTime: number): void {
    const label = periodLabel(this.o.period, commitTime);
    const cur = this.file;
    if (cur && this.db) {
      const bytes = (this.db.pragma("page_count", { simple: true }) as number) * this.pageSize;
      const later = this.o.period !== "size" && label > cur.label;
      if (!later && bytes < this.o.maxFileBytes) return;
    }
    const previous = this.db;
    const number = (cur?.number ?? listFiles(this.o.dir).at(-1)?.number ?? 0) + 1;
    const name = fileName(number, label);
    const next: ArchiveFile = { path: join(this.o.dir, name), name, number, label, bytes: 0 };
    this.use(next, true);
    if (previous) {
      // Definitions go along, so that a file alone can still be replayed into an empty database.
      const defs = previous
        .prepare(
          "SELECT db, tbl, seq, create_sql AS sql FROM definitions WHERE id IN (SELECT MAX(id) FROM definitions GROUP BY db, tbl)",
        )
        .all() as { db: string; tbl: string; seq: number; sql: string }[];
      const insert = this.db!.prepare(
        "INSERT INTO definitions (db, tbl, seq, create_sql) VALUES (?, ?, ?, ?)",
      );
      this.db!.transaction(() => {
        for (const d of defs) insert.run(d.db, d.tbl, d.seq, d.sql);
      })();
      previous.close();
    }
    this.o.log?.("archive file started", { file: next.path });
    this.applyRetention();
  }

  private use(f: ArchiveFile, create: boolean): void {
    const db = openFile(f.path, { create });
    this.db = db;
    this.file = f;
    this.schemaBySig = new Map();
    this.pageSize = db.pragma("page_size", { simple: true }) as number;
    this.fileHasCheckpoint =
      db.prepare("SELECT 1 FROM checkpoint WHERE consumer = ?").get(this.o.consumer) !== undefined;
    this.readCounters(db);
    this.st = {
      txn: db.prepare(
        "INSERT INTO txns (id, kind, seq, first_row, gtid, file, pos, sortable, commit_time, first_change, db, statement, tables) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      change: db.prepare(`${INSERT_CHANGES}${CHANGE_ROW}`),
      changes: db.prepare(`${INSERT_CHANGES}${Array(ROWS_PER_INSERT).fill(CHANGE_ROW).join(", ")}`),
      schema: db.prepare("INSERT INTO schemas (db, tbl, version, columns, pkey) VALUES (?, ?, ?, ?, ?)"),
      lowWater: db.prepare(
        "INSERT INTO checkpoint (consumer, low_water, updated_at) VALUES (?, ?, ?) ON CONFLICT (consumer) DO UPDATE SET low_water = excluded.low_water, updated_at = excluded.updated_at",
      ),
      dropApplied: db.prepare("DELETE FROM applied WHERE consumer = ? AND max_seq <= ?"),
      applied: db.prepare(
        "INSERT OR IGNORE INTO applied (consumer, stream_seq, first_row, max_seq, units) VALUES (?, ?, ?, ?, ?)",
      ),
    };
  }

  private readCounters(db: Database.Database): void {
    const c = db.prepare("SELECT IFNULL(MAX(id), 0) AS m FROM changes").get() as { m: number };
    const t = db.prepare("SELECT IFNULL(MAX(id), 0) AS m FROM txns").get() as { m: number };
    this.nextChange = c.m + 1;
    this.nextTxn = t.m + 1;
  }

  private checkpoint(cp: CheckpointWrite): void {
    const st = this.st!;
    // A new file's first transaction carries the low-water mark along, moved or not.
    if (cp.lowWater !== undefined || !this.fileHasCheckpoint) {
      const low = Math.max(cp.lowWater ?? 0, this.lowWater);
      st.lowWater.run(this.o.consumer, low, this.now());
      st.dropApplied.run(this.o.consumer, low);
      this.lowWater = low;
      this.fileHasCheckpoint = true;
    }
    const a = cp.applied;
    if (a) st.applied.run(this.o.consumer, a.seq, a.firstRow, a.maxSeq, a.units);
  }

  private insertChanges(changes: PackedChanges): void {
    const st = this.st!;
    const p = this.params;
    p.length = 0;
    // The archive's id of each packed transaction (0: not met yet in this write).
    const txnIds = new Int32Array(changes.txns.length);
    const schemaIds = changes.schemas.map((s) => this.schemaOf(s));
    // Bound as BLOBs: a Buffer over the packed bytes (a worker thread receives a plain Uint8Array).
    const rows = Buffer.from(changes.rows.buffer, changes.rows.byteOffset, changes.rows.byteLength);
    let start = 0;
    for (let i = 0; i < changes.count; i++) {
      const end = changes.ends[i]!;
      const t = changes.txn[i]!;
      let txn = txnIds[t]!;
      if (txn === 0) {
        const x = changes.txns[t]!;
        const open = this.openTxns.get(x.key);
        if (open !== undefined) txn = open;
        else {
          txn = this.nextTxn++;
          this.openTxns.set(x.key, txn);
          // first_change: this change's id (changes come in order, so a transaction's rows follow).
          st.txn.run(
            txn,
            TXN_DML,
            x.seq,
            x.firstRow,
            x.gtid,
            x.file,
            x.pos,
            x.sortable,
            x.commitTime,
            this.nextChange,
            null,
            null,
            null,
          );
        }
        txnIds[t] = txn;
      }
      p.push(
        this.nextChange++,
        txn,
        schemaIds[changes.schema[i]!],
        changes.rowIndex[i],
        changes.ops[i],
        changes.pk[i],
        changes.pkOld[i],
        rows.subarray(start, end),
      );
      start = end;
      if (p.length === ROWS_PER_INSERT * CHANGE_PARAMS) this.flushChanges();
    }
    this.flushChanges();
  }

  /** Rows gathered for `changes`: a full multi-row INSERT, or one INSERT each for the rest. */
  private flushChanges(): void {
    const p = this.params;
    if (p.length === ROWS_PER_INSERT * CHANGE_PARAMS) this.st!.changes.run(p);
    else for (let i = 0; i < p.length; i += CHANGE_PARAMS) this.st!.change.run(p.slice(i, i + CHANGE_PARAMS));
    p.length = 0;
  }

  /** The `schemas` row of a table shape (looked up once per shape and file). */
  private schemaOf(s: PackedSchema): number {
    const sig = `${s.db}\u0000${s.tbl}\u0000${s.version}\u0000${s.columns}\u0000${s.pkey}`;
    let id = this.schemaBySig.get(sig);
    if (id === undefined) {
      const found = this.db!.prepare(
        "SELECT id FROM schemas WHERE db = ? AND tbl = ? AND version = ? AND columns = ? AND pkey = ?",
      ).get(s.db, s.tbl, s.version, s.columns, s.pkey) as { id: number } | undefined;
      id =
        found?.id ?? Number(this.st!.schema.run(s.db, s.tbl, s.version, s.columns, s.pkey).lastInsertRowid);
      this.schemaBySig.set(sig, id);
    }
    return id;
  }

  private firstCommitTime(changes: PackedChanges): number {
    const t = changes.txns[changes.txn[0] ?? 0];
    return t ? t.commitTime : Math.floor(this.now() / 1000);
  }

  /** Deletes whole old files past the age or size limit; never the current one. */
  private applyRetention(): void {
    const { maxAgeMs, maxBytes } = this.o.retention;
    if (maxAgeMs === undefined && maxBytes === undefined) return;
    const files = listFiles(this.o.dir).filter((f) => f.path !== this.file?.path);
    const drop = new Set<ArchiveFile>();
    if (maxAgeMs !== undefined) {
      const oldest = (this.now() - maxAgeMs) / 1000;
      for (const f of files) {
        const db = openFile(f.path, { create: false, readonly: true });
        try {
          if (!initialized(db)) continue;
          const r = db.prepare("SELECT MAX(commit_time) AS t FROM txns").get() as { t: number | null };
          if (r.t !== null && r.t < oldest) drop.add(f);
        } finally {
          db.close();
        }
      }
    }
    if (maxBytes !== undefined) {
      let total = listFiles(this.o.dir).reduce((n, f) => n + f.bytes, 0);
      for (const f of files) {
        if (drop.has(f)) total -= f.bytes;
      }
      for (const f of files) {
        if (total <= maxBytes) break;
        if (drop.has(f)) continue;
        drop.add(f);
        total -= f.bytes;
      }
    }
    for (const f of drop) {
      for (const extra of ["", "-wal", "-shm"]) rmSync(f.path + extra, { force: true });
      this.o.log?.("archive file deleted by retention", { file: f.path, bytes: f.bytes });
    }
  }
}
