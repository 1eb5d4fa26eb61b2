import {
  encodeBatchWithRows,
  encodeDdl,
  encodeHeartbeat,
  messageIds,
  type Position,
  RowsWriter,
  type TableRef,
  tableKey,
} from "@dfs/codec";
import { AssertionError } from "@dfs/common";
import { Op } from "@dfs/proto";
import type { Checkpoint, JournalEntry, OpCounts } from "./journal.js";
import type { TableInfo } from "./tables.js";

/** A schema statement to journal as DDL: executed in database `db`, touching `tables`. */
export interface SchemaStatement {
  statement: string;
  db: string;
  tables: TableRef[];
}

/**
 * The typed calls the binlog reader makes, one per kind of event that matters. Positions are
 * where the reader is after the event (zongji moves them only at commits).
 */
export interface BinlogHandler {
  onBegin(gtid: string, at: Position, timestampMs: number): void;
  onRows(op: Op, table: TableInfo, rows: unknown[], timestampMs: number): void;
  /** COMMIT, XID, or a ROLLBACK that ended a group of non-transactional changes (which stay done). */
  onCommit(at: Position, timestampMs: number): void;
  onDdl(statement: string, db: string, tables: TableRef[], at: Position, timestampMs: number): void;
  /** The position moved between transactions (binlog rotation). */
  onPosition(at: Position): void;
  /**
   * A statement that ends its event group without data for us (GRANT, FLUSH, DDL of excluded
   * tables): the group its GTID event opened is over.
   */
  onStandalone(at: Position, timestampMs: number): void;
  /** The server said it has nothing newer: the reader is caught up. */
  onCaughtUp(): void;
  /** Rows written to capture's own signal table (snapshot watermarks); never journaled. */
  onSignal?(rows: unknown[]): void;
}

export interface AssemblerOptions {
  sourceId: string;
  serverUuid: string;
  journalId: string;
  maxRows: number;
  maxBytes: number;
  /** Decoded bytes of an open transaction held in memory before they are written as chunks. */
  maxBufferBytes: number;
  ddlSubject: string;
  heartbeatSubject: string;
  /** Writes entries and (for complete transactions) the new checkpoint in one journal transaction. */
  write(entries: JournalEntry[], checkpoint: Checkpoint | null): void;
  /** The next SCN to assign and the ordinal of the last complete transaction (from the journal). */
  nextScn: number;
  txnOrdinal: number;
  /** The journal's checkpoint: where a transaction without its own start position begins. */
  position: Position;
}

interface OpenBatch {
  table: TableInfo;
  rows: number;
  chunk: number;
  /** Rows per op, for the metrics. */
  ops: OpCounts;
  firstKey: string;
}

/** The key of a row as "col=value, ...", shortened, for the monitor (never every column). */
function keyText(table: TableInfo, row: Record<string, unknown> | undefined): string {
  if (!row) return "";
  const names = table.primaryKey.length > 0 ? table.primaryKey : [];
  const parts = names.map((n) => {
    const v = row[n];
    const s = Buffer.isBuffer(v) ? `0x${v.subarray(0, 16).toString("hex")}` : String(v);
    return `${n}=${s.length > 40 ? `${s.slice(0, 40)}…` : s}`;
  });
  return parts.join(", ");
}

interface OpenTxn {
  ordinal: number;
  gtid: string;
  start: Position;
  rowIndex: number;
  msgIndex: number;
  timestampMs: number;
  /** Makes message ids of snapshot chunks (transactions of their own) distinct from the binlog's. */
  snapshotChunk: string;
  /** Chunks written per table so far, so chunk numbers stay stable. */
  chunks: Map<string, number>;
  /** Closed batches and their entries, waiting for the commit (or a memory flush). */
  entries: JournalEntry[];
  bytes: number;
  batch: OpenBatch | null;
}

/**
 * Turns binlog events into journal entries: this is where a binlog row becomes a journal row.
 * Rows of one table are batched into one message until the table changes, the batch is full, or
 * the transaction commits, so per-table order and the transaction's overall order are kept.
 * Complete transactions are handed to the journal in groups (one fsync per group).
 */
export class Assembler implements BinlogHandler {
  private readonly o: AssemblerOptions;
  private txn: OpenTxn | null = null;
  private nextScn: number;
  private txnOrdinal: number;
  /** Complete transactions not yet written: flushed together by flush(). */
  private pending: JournalEntry[] = [];
  private pendingCheckpoint: Checkpoint | null = null;
  private pendingBytesValue = 0;
  /** Encoded rows of the open batch (one batch is open at a time). */
  private readonly rows = new RowsWriter();
  private lastEventMs = 0;
  private caughtUpMs = 0;
  /** Where the last complete transaction ended: the start of one without a position of its own. */
  private lastPosition: Position;
  /** Rows and transactions seen, for metrics and status. */
  rowsSeen = 0;
  txnsSeen = 0;

  constructor(options: AssemblerOptions) {
    this.o = options;
    this.nextScn = options.nextScn;
    this.txnOrdinal = options.txnOrdinal;
    this.lastPosition = options.position;
  }

  get inTransaction(): boolean {
    return this.txn !== null;
  }

  /** Bytes of complete transactions waiting for the next journal commit. */
  get pendingBytes(): number {
    return this.pendingBytesValue;
  }

  get hasPending(): boolean {
    return this.pending.length > 0 || this.pendingCheckpoint !== null;
  }

  onBegin(gtid: string, at: Position, timestampMs: number): void {
    if (this.txn) return; // BEGIN after a GTID event: the same transaction
    this.lastEventMs = timestampMs;
    this.txn = {
      ordinal: this.txnOrdinal + 1,
      gtid,
      start: at.hasFile ? at : this.lastPosition,
      rowIndex: 0,
      msgIndex: 0,
      timestampMs,
      snapshotChunk: "",
      chunks: new Map(),
      entries: [],
      bytes: 0,
      batch: null,
    };
  }

  onRows(op: Op, table: TableInfo, rows: unknown[], timestampMs: number): void {
    const txn = this.txn ?? this.beginImplicit(timestampMs);
    this.lastEventMs = timestampMs;
    if (txn.batch && txn.batch.table !== table) this.closeBatch(txn, false);
    const { keys, kinds } = table;
    const w = this.rows;
    for (const row of rows) {
      // A full batch closes when the next row arrives, so the commit can still mark the open
      // batch as the transaction's last.
      if (txn.batch && (txn.batch.rows >= this.o.maxRows || w.length >= this.o.maxBytes))
        this.closeBatch(txn, false);
      if (!txn.batch) {
        const image = (op === Op.OP_UPDATE ? (row as { after: unknown }).after : row) as Record<
          string,
          unknown
        >;
        txn.batch = {
          table,
          rows: 0,
          chunk: this.nextChunk(txn, table),
          ops: { c: 0, u: 0, d: 0, r: 0 },
          firstKey: keyText(table, image),
        };
      }
      const batch = txn.batch;
      const rowIndex = txn.rowIndex++;
      if (op === Op.OP_UPDATE) {
        const r = row as { before: Record<string, unknown>; after: Record<string, unknown> };
        w.writeRow(op, rowIndex, kinds, keys, r.before, r.after);
        batch.ops.u++;
      } else if (op === Op.OP_DELETE) {
        w.writeRow(op, rowIndex, kinds, keys, row as Record<string, unknown>, null);
        batch.ops.d++;
      } else {
        w.writeRow(op, rowIndex, kinds, keys, null, row as Record<string, unknown>);
        if (op === Op.OP_READ) batch.ops.r++;
        else batch.ops.c++;
      }
      batch.rows++;
      this.rowsSeen++;
    }
    // A large transaction: write its closed batches as uncommitted chunks to bound memory. The
    // open batch stays in memory, so the commit can mark it as the last.
    if (txn.bytes + w.length >= this.o.maxBufferBytes && txn.entries.length > 0) {
      this.flush();
      this.o.write(txn.entries, null);
      txn.entries = [];
      txn.bytes = 0;
    }
  }

  onCommit(at: Position, timestampMs: number): void {
    const txn = this.txn;
    if (!txn) {
      this.onPosition(at);
      return;
    }
    this.lastEventMs = timestampMs;
    this.closeBatch(txn, true);
    this.txn = null;
    this.txnOrdinal = txn.ordinal;
    this.txnsSeen++;
    this.queue(txn.entries);
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onDdl(statement: string, db: string, tables: TableRef[], at: Position, timestampMs: number): void {
    const gtid = this.txn?.gtid ?? "";
    // DDL commits implicitly: rows before it (never seen in practice) are committed with it.
    if (this.txn && (this.txn.entries.length > 0 || this.txn.batch)) this.onCommit(at, timestampMs);
    this.txn = null;
    this.lastEventMs = timestampMs;
    this.queueDdl({ statement, db, tables }, at, timestampMs, gtid, messageIds.ddl(this.o.sourceId, at));
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  /**
   * The definitions of every captured database and table when a journal starts, as DDL at the
   * start position: with them the stream is a complete schema history from its first message.
   */
  schemaSnapshot(statements: readonly SchemaStatement[], at: Position): void {
    const now = Date.now();
    for (const [i, st] of statements.entries())
      this.queueDdl(st, at, now, at.gtid, messageIds.schema(this.o.sourceId, at, i));
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  private queueDdl(
    st: SchemaStatement,
    at: Position,
    timestampMs: number,
    gtid: string,
    msgId: string,
  ): void {
    const scn = this.nextScn++;
    const position = at.toWire(gtid);
    const payload = encodeDdl({
      sourceId: this.o.sourceId,
      serverUuid: this.o.serverUuid,
      db: st.db,
      statement: st.statement,
      position,
      scn: BigInt(scn),
      commitTime: BigInt(Math.floor(timestampMs / 1000)),
      captureTimeMs: BigInt(Date.now()),
      tables: st.tables,
    });
    this.txnOrdinal++;
    this.queue({
      scn,
      kind: "ddl",
      subject: this.o.ddlSubject,
      msgId,
      ref: null,
      ops: null,
      sortable: at.sortable,
      payload,
    });
  }

  onPosition(at: Position): void {
    if (this.txn) return;
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onStandalone(at: Position, timestampMs: number): void {
    const txn = this.txn;
    if (txn && (txn.entries.length > 0 || txn.batch)) {
      this.onCommit(at, timestampMs); // rows before an implicit commit (not seen in practice)
      return;
    }
    this.txn = null;
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onCaughtUp(): void {
    this.caughtUpMs = Date.now();
  }

  /**
   * The source time up to which the binlog has been read: the last event's timestamp (the binlog
   * keeps seconds), or the moment the server last said there was nothing newer. 0 = not known yet.
   */
  get sourceTimeMs(): number {
    return Math.max(this.lastEventMs, this.caughtUpMs);
  }

  /**
   * Rows a snapshot read, as a transaction of their own at `at` (between two binlog
   * transactions: called right after a commit). Op r; message ids carry the chunk id.
   */
  snapshotRows(table: TableInfo, rows: Record<string, unknown>[], at: Position, chunkId: string): void {
    if (this.txn) throw new AssertionError("snapshot rows must be written between transactions");
    const now = Date.now();
    this.onBegin("", at, now);
    this.txn!.snapshotChunk = chunkId;
    if (rows.length > 0) this.onRows(Op.OP_READ, table, rows, now);
    this.onCommit(at, now);
  }

  /** Queues a heartbeat at the current checkpoint; skipped inside a transaction. */
  heartbeat(current: Position): void {
    if (this.txn) return;
    const scn = this.nextScn++;
    const now = Date.now();
    const position = current.toWire("");
    const payload = encodeHeartbeat({
      sourceId: this.o.sourceId,
      position,
      scn: BigInt(scn),
      sourceTimeMs: BigInt(this.sourceTimeMs),
      captureTimeMs: BigInt(now),
    });
    this.queue({
      scn,
      kind: "heartbeat",
      subject: this.o.heartbeatSubject,
      msgId: messageIds.heartbeat(this.o.sourceId, this.o.journalId, scn),
      ref: null,
      ops: null,
      sortable: current.sortable,
      payload,
    });
    this.pendingCheckpoint = this.checkpointAt(current);
  }

  /** Writes every complete transaction held in memory, with the checkpoint after the last one. */
  flush(): void {
    if (!this.hasPending) return;
    const entries = this.pending;
    const checkpoint = this.pendingCheckpoint;
    this.pending = [];
    this.pendingCheckpoint = null;
    this.pendingBytesValue = 0;
    this.o.write(entries, checkpoint);
  }

  /**
   * Forgets everything not yet written (the reader restarts from the journal's checkpoint);
   * complete transactions must be flushed first.
   */
  reset(nextScn: number, txnOrdinal: number, position: Position): void {
    this.lastPosition = position;
    this.txn = null;
    this.rows.reset();
    this.pending = [];
    this.pendingCheckpoint = null;
    this.pendingBytesValue = 0;
    this.nextScn = nextScn;
    this.txnOrdinal = txnOrdinal;
  }

  private queue(entries: JournalEntry | JournalEntry[]): void {
    for (const e of Array.isArray(entries) ? entries : [entries]) {
      this.pending.push(e);
      this.pendingBytesValue += e.payload.byteLength;
    }
  }

  private beginImplicit(timestampMs: number): OpenTxn {
    // Row events outside a transaction marker (old servers, non-transactional engines): the
    // transaction starts where the last one ended.
    this.onBegin("", this.lastPosition, timestampMs);
    return this.txn!;
  }

  private nextChunk(txn: OpenTxn, table: TableInfo): number {
    const key = tableKey(table);
    const n = txn.chunks.get(key) ?? 0;
    txn.chunks.set(key, n + 1);
    return n;
  }

  private closeBatch(txn: OpenTxn, last: boolean): void {
    const batch = txn.batch;
    if (!batch) return;
    txn.batch = null;
    const scn = this.nextScn++;
    const t = batch.table;
    const payload = encodeBatchWithRows(
      {
        sourceId: this.o.sourceId,
        serverUuid: this.o.serverUuid,
        db: t.db,
        table: t.table,
        schemaVersion: t.schemaVersion,
        columns: t.columns,
        primaryKey: t.primaryKey,
        position: txn.start.toWire(txn.gtid),
        scn: BigInt(scn),
        txnOrdinal: BigInt(txn.ordinal),
        chunk: batch.chunk,
        txnLast: last,
        commitTime: BigInt(Math.floor(txn.timestampMs / 1000)),
        captureTimeMs: BigInt(Date.now()),
      },
      this.rows.view(), // copied into the payload, so no copy of its own
    );
    this.rows.reset();
    txn.bytes += payload.byteLength;
    txn.entries.push({
      scn,
      kind: "batch",
      subject: t.subject,
      msgId: messageIds.batch(this.o.sourceId, txn.start, txn.msgIndex++, txn.snapshotChunk),
      ref: { db: t.db, table: t.table },
      ops: batch.ops,
      sortable: txn.start.sortable,
      payload,
      firstKey: batch.firstKey,
    });
  }

  private checkpointAt(at: Position): Checkpoint {
    if (at.hasFile) this.lastPosition = at;
    return { position: at, committedScn: this.nextScn - 1, txnOrdinal: this.txnOrdinal };
  }
}
