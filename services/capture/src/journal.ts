import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { assert } from "@dfs/common";
import Database from "better-sqlite3";

/** Kinds of journal entry; the same as the Dfs-Kind header. */
export type EntryKind = "batch" | "ddl" | "heartbeat";
const KIND_CODE: Record<EntryKind, number> = { batch: 0, ddl: 1, heartbeat: 2 };
const CODE_KIND: EntryKind[] = ["batch", "ddl", "heartbeat"];

/** One message to publish, as stored in the journal. */
export interface JournalEntry {
  scn: number;
  kind: EntryKind;
  subject: string;
  msgId: string;
  /** Rows in a batch (0 for DDL and heartbeats). */
  rows: number;
  /** Sortable source position, for diagnostics and the Dfs-Pos header. */
  pos: string;
  payload: Uint8Array;
  /** Rows per op in a batch, e.g. "c=3,u=1" (empty for DDL and heartbeats): for the metrics. */
  ops: string;
  /** Key of a batch's first row, for the monitor's recent changes (in memory only). */
  firstKey?: string;
}

/**
 * Where to resume reading the binlog: just after the last transaction whose every row is in the
 * journal. Written in the same SQLite transaction as those rows.
 */
export interface Checkpoint {
  file: string;
  pos: number;
  /** Executed GTID set / MariaDB GTID position after that transaction, when known. */
  gtid: string | null;
  /** Every entry with scn <= committedScn belongs to a complete transaction. */
  committedScn: number;
  /** Ordinal of the last complete transaction. */
  txnOrdinal: number;
  /** Identity of the server the journal was read from (server uuid or MariaDB server id). */
  serverIdentity: string;
}

export interface JournalStats {
  entries: number;
  bytes: number;
  committedScn: number;
  publishedScn: number;
}

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
  private readonly writeCheckpoint: Database.Statement;
  private readonly readEntries: Database.Statement;
  private readonly deleteUpTo: Database.Statement;
  private readonly setPublished: Database.Statement;
  private checkpointValue: Checkpoint | null;
  private publishedValue: number;
  /** Unpublished payload bytes, kept in memory so backpressure checks cost nothing. */
  private bytes = 0;
  private count = 0;

  constructor(path: string) {
    this.path = path;
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
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
    `);
    // Journals written before per-op counts existed get the column (empty for their entries).
    const columns = this.db.prepare("PRAGMA table_info(entries)").all() as { name: string }[];
    if (!columns.some((c) => c.name === "ops"))
      this.db.exec("ALTER TABLE entries ADD COLUMN ops TEXT NOT NULL DEFAULT ''");
    this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('journal_id', ?)").run(randomUUID());
    this.journalId = (
      this.db.prepare("SELECT value FROM meta WHERE key = 'journal_id'").get() as { value: string }
    ).value;
    this.insertEntry = this.db.prepare(
      "INSERT INTO entries (scn, kind, subject, msg_id, rows, pos, payload, ops) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.writeCheckpoint = this.db.prepare(
      `INSERT INTO checkpoint (id, file, pos, gtid, committed_scn, txn_ordinal, server_identity, updated_ms)
       VALUES (1, @file, @pos, @gtid, @committedScn, @txnOrdinal, @serverIdentity, @now)
       ON CONFLICT (id) DO UPDATE SET file = excluded.file, pos = excluded.pos, gtid = excluded.gtid,
         committed_scn = excluded.committed_scn, txn_ordinal = excluded.txn_ordinal,
         server_identity = excluded.server_identity, updated_ms = excluded.updated_ms`,
    );
    this.readEntries = this.db.prepare(
      "SELECT scn, kind, subject, msg_id, rows, pos, payload, ops FROM entries WHERE scn > ? AND scn <= ? ORDER BY scn LIMIT ?",
    );
    this.deleteUpTo = this.db.prepare("DELETE FROM entries WHERE scn <= ?");
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
      file: row.file,
      pos: row.pos,
      gtid: row.gtid,
      committedScn: row.committed_scn,
      txnOrdinal: row.txn_ordinal,
      serverIdentity: row.server_identity,
    };
  }

  /**
   * Drops entries of a transaction whose commit never reached the journal (chunks of a large
   * transaction written before a crash). Reading resumes before that transaction, so its rows
   * come again with the same SCNs and message ids.
   */
  discardIncomplete(): void {
    const committed = this.checkpointValue?.committedScn ?? 0;
    this.db.prepare("DELETE FROM entries WHERE scn > ?").run(committed);
    const agg = this.db
      .prepare("SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(payload)), 0) AS b FROM entries WHERE scn > ?")
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
    const tx = this.db.transaction(() => {
      for (const e of entries) {
        this.insertEntry.run(e.scn, KIND_CODE[e.kind], e.subject, e.msgId, e.rows, e.pos, e.payload, e.ops);
      }
      if (checkpoint) this.writeCheckpoint.run({ ...checkpoint, now: Date.now() });
    });
    tx();
    for (const e of entries) {
      this.bytes += e.payload.byteLength;
      this.count += 1;
    }
    if (checkpoint) {
      assert(
        checkpoint.committedScn >= (this.checkpointValue?.committedScn ?? 0),
        "journal checkpoint must not go backwards",
      );
      this.checkpointValue = checkpoint;
    }
  }

  /** Committed entries after `afterScn`, in order. */
  read(afterScn: number, limit: number): JournalEntry[] {
    const upTo = this.checkpointValue?.committedScn ?? 0;
    const rows = this.readEntries.all(afterScn, upTo, limit) as {
      scn: number;
      kind: number;
      subject: string;
      msg_id: string;
      rows: number;
      pos: string;
      payload: Buffer;
      ops: string;
    }[];
    return rows.map((r) => ({
      scn: r.scn,
      kind: CODE_KIND[r.kind]!,
      subject: r.subject,
      msgId: r.msg_id,
      rows: r.rows,
      pos: r.pos,
      payload: r.payload,
      ops: r.ops,
    }));
  }

  /**
   * Records that every entry up to `scn` is acknowledged by JetStream and deletes them: the
   * journal stays bounded by what is not yet published.
   */
  markPublished(scn: number): void {
    if (scn <= this.publishedValue) return;
    const freed = this.db
      .prepare("SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(payload)), 0) AS b FROM entries WHERE scn <= ?")
      .get(scn) as { n: number; b: number };
    this.db.transaction(() => {
      this.setPublished.run(scn);
      this.deleteUpTo.run(scn);
    })();
    this.publishedValue = scn;
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
