import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { formatTableRef, MAX_JOINED_BYTES, Position, sha256Hex, type TableRef } from "@dfs/codec";
import { assert, DataError, ErrorCode } from "@dfs/common";
import Database from "better-sqlite3";
import { partCount, partOf, StoredPayload } from "./journal-parts.js";

/** Kinds of journal entry; the same as the Dfs-Kind header. */
export type EntryKind = "batch" | "ddl" | "heartbeat";
/**
 * Largest payload one entry may hold: a larger message could not be joined by a consumer
 * (MAX_JOINED_BYTES, 4 GiB - 1, Node 20's largest Buffer). Payloads past PART_BYTES are stored in
 * parts (journal-parts.ts), so SQLite's limit on one row (2^29 - 24 bytes in better-sqlite3) does
 * not bound an entry.
 */
export const MAX_ENTRY_BYTES = MAX_JOINED_BYTES;
const EMPTY = Buffer.alloc(0);
/** Most payload bytes of recently appended entries kept in memory for the publisher. */
const RECENT_MAX_BYTES = 16 * 1024 * 1024;
const KIND_CODE: Record<EntryKind, number> = { batch: 0, ddl: 1, heartbeat: 2 };
const CODE_KIND: EntryKind[] = ["batch", "ddl", "heartbeat"];

/** Rows of a batch per op. */
export interface OpCounts {
  c: number;
  u: number;
  d: number;
  r: number;
}

/** One message to publish, as stored in the journal. */
export interface JournalEntry {
  scn: number;
  kind: EntryKind;
  subject: string;
  msgId: string;
  /** The table of a batch; null for DDL and heartbeats. */
  ref: TableRef | null;
  /** Rows of a batch per op (null for DDL and heartbeats): for the metrics. */
  ops: OpCounts | null;
  /** Position.sortable of the source position, for the Dfs-Pos header. */
  sortable: string;
  /** The payload, whole; empty when `stored` holds it (an entry read back whose payload is in parts). */
  payload: Uint8Array;
  /**
   * An entry read back from the journal whose payload is stored in parts: read a range at a time,
   * never whole (`payload` is then empty). Absent for entries in memory and payloads stored whole.
   */
  stored?: StoredPayload;
  /** SHA-256 of the payload (hex), when known: the journal computes it for a payload it stores in parts. */
  sha256?: string;
  /** Key of a batch's first row, for the monitor's recent changes (in memory only). */
  firstKey?: string;
}

/** Bytes of an entry's payload, wherever it is. */
export function entryBytes(e: JournalEntry): number {
  return e.stored ? e.stored.byteLength : e.payload.byteLength;
}

/** An `entries` row as read. */
interface EntryRow {
  scn: number;
  kind: number;
  subject: string;
  msg_id: string;
  pos: string;
  payload: Buffer;
  db: string;
  tbl: string;
  op_c: number;
  op_u: number;
  op_d: number;
  op_r: number;
  parts: number;
  size: number;
  sha256: string;
}

function entryOf(r: EntryRow, readPart: (scn: number, part: number) => Buffer | undefined): JournalEntry {
  const kind = CODE_KIND[r.kind]!;
  const batch = kind === "batch";
  const ref = batch && r.db !== "" ? { db: r.db, table: r.tbl } : null;
  const e: JournalEntry = {
    scn: r.scn,
    kind,
    subject: r.subject,
    msgId: r.msg_id,
    ref,
    ops: batch ? { c: r.op_c, u: r.op_u, d: r.op_d, r: r.op_r } : null,
    sortable: r.pos,
    payload: r.payload,
  };
  if (r.parts > 0) {
    const what = `journal entry scn ${r.scn} (${ref ? formatTableRef(ref) : kind})`;
    e.stored = new StoredPayload(r.size, r.sha256, r.parts, (i) => readPart(r.scn, i), what);
    e.sha256 = r.sha256;
  }
  return e;
}

/** Rows of an entry (0 for DDL and heartbeats). */
export function entryRows(e: JournalEntry): number {
  const o = e.ops;
  return o ? o.c + o.u + o.d + o.r : 0;
}

/**
 * Where to resume reading the binlog: just after the last transaction whose every row is in the
 * journal. Written in the same SQLite transaction as those rows.
 */
export interface Checkpoint {
  /** The resume point, with the GTID set executed there and the server it belongs to. */
  position: Position;
  /** Every entry with scn <= committedScn belongs to a complete transaction. */
  committedScn: number;
  /** Ordinal of the last complete transaction. */
  txnOrdinal: number;
}

export interface JournalStats {
  entries: number;
  bytes: number;
  committedScn: number;
  publishedScn: number;
}

/** Columns added after the first version of the journal, with their types. */
const NEW_COLUMNS: [string, string][] = [
  ["db", "TEXT NOT NULL DEFAULT ''"],
  ["tbl", "TEXT NOT NULL DEFAULT ''"],
  ["op_c", "INTEGER NOT NULL DEFAULT 0"],
  ["op_u", "INTEGER NOT NULL DEFAULT 0"],
  ["op_d", "INTEGER NOT NULL DEFAULT 0"],
  ["op_r", "INTEGER NOT NULL DEFAULT 0"],
  // A payload stored in parts (entry_parts): how many, its bytes and SHA-256; payload is empty then.
  ["parts", "INTEGER NOT NULL DEFAULT 0"],
  ["size", "INTEGER NOT NULL DEFAULT 0"],
  ["sha256", "TEXT NOT NULL DEFAULT ''"],
];
/** Payload bytes of an entries row, wherever they are stored (LENGTH of a blob reads no content). */
const ROW_BYTES = "LENGTH(payload) + size";

/**
 * The durable journal: a SQLite database in WAL mode with synchronous=FULL, so a change is on
 * disk (fsync'd) before it is published. Only the capture's main thread writes to it.
 */
export class Journal {
  readonly path: string;
  /** Random id of this journal file; SCNs are comparable only within one journal. */
  readonly journalId: string;
  private readonly db: Database.Database;
  private readonly insertEntry: Database.Statement;
  private readonly insertPart: Database.Statement;
  private readonly readPart: Database.Statement;
  private readonly writeCheckpoint: Database.Statement;
  private readonly readEntries: Database.Statement;
  private readonly deleteUpTo: { run(scn: number): void };
  private readonly setPublished: Database.Statement;
  private checkpointValue: Checkpoint | null;
  private publishedValue: number;
  /** Unpublished payload bytes, kept in memory so backpressure checks cost nothing. */
  private bytes = 0;
  private count = 0;
  /**
   * The entries appended last, in SCN order, as written: the publisher reads them from here
   * instead of back from SQLite (a new Buffer per payload). Bounded by RECENT_MAX_BYTES; what is
   * older (a resync after a failure, a restart) is read from the table.
   */
  private recent: JournalEntry[] = [];
  private recentHead = 0;
  private recentBytes = 0;

  constructor(path: string) {
    this.path = path;
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // Payloads are messages of up to a few hundred KiB: 16 KiB pages write them in a quarter of the
    // overflow pages (measured: a third less system time per 110 MB journaled than 4 KiB pages).
    // Takes effect when the journal is created; an existing journal keeps its page size.
    this.db.pragma("page_size = 16384");
    this.db.pragma("journal_mode = WAL");
    // FULL: the WAL is fsync'd at every commit. This is the durability promise of C2.
    this.db.pragma("synchronous = FULL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS entries (
        scn INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,
        subject TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        rows INTEGER NOT NULL,
        pos TEXT NOT NULL,
        payload BLOB NOT NULL
      );
      CREATE TABLE IF NOT EXISTS checkpoint (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        file TEXT NOT NULL,
        pos INTEGER NOT NULL,
        gtid TEXT,
        committed_scn INTEGER NOT NULL,
        txn_ordinal INTEGER NOT NULL,
        server_identity TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS published (id INTEGER PRIMARY KEY CHECK (id = 1), scn INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS entry_parts (
        scn INTEGER NOT NULL,
        part INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (scn, part)
      );
    `);
    // Journals written by earlier versions get the newer columns (empty for their entries).
    const columns = new Set(
      (this.db.prepare("PRAGMA table_info(entries)").all() as { name: string }[]).map((c) => c.name),
    );
    for (const [name, type] of NEW_COLUMNS)
      if (!columns.has(name)) this.db.exec(`ALTER TABLE entries ADD COLUMN ${name} ${type}`);
    this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('journal_id', ?)").run(randomUUID());
    this.journalId = (
      this.db.prepare("SELECT value FROM meta WHERE key = 'journal_id'").get() as { value: string }
    ).value;
    this.insertEntry = this.db.prepare(
      `INSERT INTO entries (scn, kind, subject, msg_id, rows, pos, payload, db, tbl, op_c, op_u, op_d, op_r, parts, size, sha256)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertPart = this.db.prepare("INSERT INTO entry_parts (scn, part, data) VALUES (?, ?, ?)");
    this.readPart = this.db.prepare("SELECT data FROM entry_parts WHERE scn = ? AND part = ?").pluck();
    this.writeCheckpoint = this.db.prepare(
      `INSERT INTO checkpoint (id, file, pos, gtid, committed_scn, txn_ordinal, server_identity, updated_ms)
       VALUES (1, @file, @pos, @gtid, @committedScn, @txnOrdinal, @server, @now)
       ON CONFLICT (id) DO UPDATE SET file = excluded.file, pos = excluded.pos, gtid = excluded.gtid,
         committed_scn = excluded.committed_scn, txn_ordinal = excluded.txn_ordinal,
         server_identity = excluded.server_identity, updated_ms = excluded.updated_ms`,
    );
    this.readEntries = this.db.prepare(
      `SELECT scn, kind, subject, msg_id, pos, payload, db, tbl, op_c, op_u, op_d, op_r, parts, size, sha256
         FROM entries WHERE scn > ? AND scn <= ? ORDER BY scn LIMIT ?`,
    );
    const deleteEntries = this.db.prepare("DELETE FROM entries WHERE scn <= ?");
    const deleteParts = this.db.prepare("DELETE FROM entry_parts WHERE scn <= ?");
    this.deleteUpTo = {
      run: (scn: number) => {
        deleteEntries.run(scn);
        deleteParts.run(scn);
      },
    };
    this.setPublished = this.db.prepare(
      "INSERT INTO published (id, scn) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET scn = excluded.scn",
    );
    this.checkpointValue = this.loadCheckpoint();
    this.publishedValue =
      (this.db.prepare("SELECT scn FROM published WHERE id = 1").get() as { scn: number } | undefined)?.scn ??
      0;
    this.discardIncomplete();
  }

  private loadCheckpoint(): Checkpoint | null {
    const row = this.db.prepare("SELECT * FROM checkpoint WHERE id = 1").get() as
      | {
          file: string;
          pos: number;
          gtid: string | null;
          committed_scn: number;
          txn_ordinal: number;
          server_identity: string;
        }
      | undefined;
    if (!row) return null;
    return {
      position: Position.fromRecord({
        file: row.file,
        pos: row.pos,
        gtid: row.gtid,
        server: row.server_identity,
      }),
      committedScn: row.committed_scn,
      txnOrdinal: row.txn_ordinal,
    };
  }

  /**
   * Drops entries of a transaction whose commit never reached the journal (chunks of a large
   * transaction written before a crash). Reading resumes before that transaction, so its rows
   * come again with the same SCNs and message ids.
   */
  discardIncomplete(): void {
    const committed = this.checkpointValue?.committedScn ?? 0;
    this.db.transaction(() => {
      this.db.prepare("DELETE FROM entries WHERE scn > ?").run(committed);
      this.db.prepare("DELETE FROM entry_parts WHERE scn > ?").run(committed);
    })();
    this.clearRecent();
    const agg = this.db
      .prepare(`SELECT COUNT(*) AS n, COALESCE(SUM(${ROW_BYTES}), 0) AS b FROM entries WHERE scn > ?`)
      .get(this.publishedValue) as { n: number; b: number };
    this.count = agg.n;
    this.bytes = agg.b;
  }

  get checkpoint(): Checkpoint | null {
    return this.checkpointValue;
  }

  /** The next SCN to assign: SCNs continue after the last complete transaction. */
  get nextScn(): number {
    return (this.checkpointValue?.committedScn ?? 0) + 1;
  }

  get publishedScn(): number {
    return this.publishedValue;
  }

  /**
   * Appends entries and, when given, moves the checkpoint, in one SQLite transaction (one fsync).
   * Entries must come in SCN order.
   */
  append(entries: readonly JournalEntry[], checkpoint: Checkpoint | null): void {
    for (const e of entries) {
      const bytes = e.payload.byteLength;
      if (bytes > MAX_ENTRY_BYTES)
        throw new DataError(
          ErrorCode.DATA_INVALID,
          `a message of ${bytes} bytes (${e.ref ? formatTableRef(e.ref) : e.kind}, scn ${e.scn}) is larger than the journal's largest entry (${MAX_ENTRY_BYTES} bytes, the largest message a consumer can join): a row this large cannot be journaled`,
        );
      // The publisher chunks a payload this large and needs its checksum: computed once, here.
      if (partCount(bytes) > 0) e.sha256 ??= sha256Hex(e.payload);
    }
    const tx = this.db.transaction(() => {
      for (const e of entries) {
        const o = e.ops;
        const parts = partCount(e.payload.byteLength);
        this.insertEntry.run(
          e.scn,
          KIND_CODE[e.kind],
          e.subject,
          e.msgId,
          entryRows(e),
          e.sortable,
          parts > 0 ? EMPTY : e.payload,
          e.ref?.db ?? "",
          e.ref?.table ?? "",
          o?.c ?? 0,
          o?.u ?? 0,
          o?.d ?? 0,
          o?.r ?? 0,
          parts,
          parts > 0 ? e.payload.byteLength : 0,
          parts > 0 ? e.sha256 : "",
        );
        for (let i = 0; i < parts; i++) this.insertPart.run(e.scn, i, partOf(e.payload, i, parts));
      }
      if (checkpoint) {
        const p = checkpoint.position;
        this.writeCheckpoint.run({
          file: p.file,
          pos: p.pos,
          gtid: p.gtid || null,
          committedScn: checkpoint.committedScn,
          txnOrdinal: checkpoint.txnOrdinal,
          server: p.server,
          now: Date.now(),
        });
      }
    });
    tx();
    for (const e of entries) {
      this.bytes += e.payload.byteLength;
      this.count += 1;
      this.remember(e);
    }
    if (checkpoint) {
      assert(
        checkpoint.committedScn >= (this.checkpointValue?.committedScn ?? 0),
        "journal checkpoint must not go backwards",
      );
      this.checkpointValue = checkpoint;
    }
  }

  private clearRecent(): void {
    this.recent = [];
    this.recentHead = 0;
    this.recentBytes = 0;
  }

  /** Drops the oldest entry of the in-memory cache. */
  private forgetOldestRecent(): void {
    this.recentBytes -= this.recent[this.recentHead]!.payload.byteLength;
    this.recent[this.recentHead++] = undefined as unknown as JournalEntry;
  }

  private remember(e: JournalEntry): void {
    const last = this.recent[this.recent.length - 1];
    if (last && e.scn !== last.scn + 1) {
      // Not contiguous (cannot happen while SCNs are assigned in order): start the cache over.
      this.clearRecent();
    }
    this.recent.push(e);
    this.recentBytes += e.payload.byteLength;
    while (this.recentBytes > RECENT_MAX_BYTES && this.recentHead < this.recent.length - 1)
      this.forgetOldestRecent();
    if (this.recentHead > 1024 && this.recentHead * 2 > this.recent.length) {
      this.recent = this.recent.slice(this.recentHead);
      this.recentHead = 0;
    }
  }

  /**
   * Committed entries after `afterScn`, in order: at most `limit`, and, past the first, at most
   * `maxBytes` of payload (large entries are read one page at a time, not 32 of them at once).
   */
  read(afterScn: number, limit: number, maxBytes = Number.POSITIVE_INFINITY): JournalEntry[] {
    const upTo = this.checkpointValue?.committedScn ?? 0;
    const first = this.recent[this.recentHead];
    if (first && afterScn + 1 >= first.scn) {
      const from = this.recentHead + (afterScn + 1 - first.scn);
      const out: JournalEntry[] = [];
      let bytes = 0;
      for (let i = from; i < this.recent.length && out.length < limit; i++) {
        const e = this.recent[i]!;
        if (e.scn > upTo || (out.length > 0 && bytes + e.payload.byteLength > maxBytes)) break;
        out.push(e);
        bytes += e.payload.byteLength;
      }
      // Entries before the reader's cursor are not needed again (a resync goes to the table).
      while (this.recentHead < from && this.recentHead < this.recent.length - 1) this.forgetOldestRecent();
      return out;
    }
    const out: JournalEntry[] = [];
    let bytes = 0;
    // Row by row: a row past the byte bound is never read (its payload is not allocated).
    const readPart = (scn: number, part: number) => this.readPart.get(scn, part) as Buffer | undefined;
    for (const r of this.readEntries.iterate(afterScn, upTo, limit) as IterableIterator<EntryRow>) {
      const e = entryOf(r, readPart);
      out.push(e);
      bytes += entryBytes(e);
      if (bytes >= maxBytes) break;
    }
    return out;
  }

  /**
   * Records that every entry up to `scn` is acknowledged by JetStream and deletes them: the
   * journal stays bounded by what is not yet published.
   */
  markPublished(scn: number): void {
    if (scn <= this.publishedValue) return;
    const freed = this.db
      .prepare(`SELECT COUNT(*) AS n, COALESCE(SUM(${ROW_BYTES}), 0) AS b FROM entries WHERE scn <= ?`)
      .get(scn) as { n: number; b: number };
    this.db.transaction(() => {
      this.setPublished.run(scn);
      this.deleteUpTo.run(scn);
    })();
    this.publishedValue = scn;
    while (this.recentHead < this.recent.length && this.recent[this.recentHead]!.scn <= scn)
      this.forgetOldestRecent();
    this.bytes -= freed.b;
    this.count -= freed.n;
  }

  /** A small value kept with the journal (the snapshot's progress); null when absent. */
  getMeta(key: string): string | null {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as
      | { value: string }
      | undefined;
    return row?.value ?? null;
  }

  setMeta(key: string, value: string | null): void {
    if (value === null) this.db.prepare("DELETE FROM meta WHERE key = ?").run(key);
    else
      this.db
        .prepare(
          "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .run(key, value);
  }

  stats(): JournalStats {
    return {
      entries: this.count,
      bytes: this.bytes,
      committedScn: this.checkpointValue?.committedScn ?? 0,
      publishedScn: this.publishedValue,
    };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
