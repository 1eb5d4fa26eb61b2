import {
  encodeBatchWithRows,
  encodeDdl,
  encodeHeartbeat,
  messageIds,
  Position,
  RowsWriter,
  type TableRef,
  tableKey,
} from "@dfs/codec";
import { AssertionError } from "@dfs/common";
import { Op, type SourceTxn } from "@dfs/proto";
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
  /** Most rows and bytes of one table in one message. */
  maxRows: number;
  maxBytes: number;
  /** Decoded bytes of an open group held in memory before they are written as chunks. */
  maxBufferBytes: number;
  ddlSubject: string;
  heartbeatSubject: string;
  /** Writes entries and (for complete groups) the new checkpoint in one journal transaction. */
  write(entries: JournalEntry[], checkpoint: Checkpoint | null): void;
  /** The next SCN to assign and the ordinal of the last complete group (from the journal). */
  nextScn: number;
  txnOrdinal: number;
  /** The journal's checkpoint: where a transaction without its own start position begins. */
  position: Position;
}

/** One table's open message within a group. */
interface OpenBatch {
  table: TableInfo;
  writer: RowsWriter;
  rows: number;
  chunk: number;
  /** Rows per op, for the metrics. */
  ops: OpCounts;
  firstKey: string;
  /** The source transactions with rows in this batch (its source_txns), and the group's index of the last. */
  txns: SourceTxn[];
  lastTxn: number;
}

/**
 * A group ends at a commit once it holds this many messages' worth of rows (capture.batch.maxRows
 * each). Grouping pays for small transactions (many share a message); past a message's worth it
 * buys nothing, and a group stays below the DPU's group bound (dpu.batch.maxRows), so the DPU can
 * gather several into one target transaction, pipelined and split across connections, instead of
 * streaming one oversized group alone (ten messages' worth did that to every bulk group).
 */
const GROUP_MESSAGES = 1;

/** Writers up to this size are reused; one a large row grew is dropped (8 kept would pin 8 large rows). */
const REUSE_WRITER_BYTES = 2 * 1024 * 1024;

/** The key of a row as "col=value, ...", shortened, for the monitor (never every column). */
function keyText(table: TableInfo, row: Record<string, unknown> | undefined): string {
  if (!row) return "";
  const parts = table.primaryKey.map((n) => {
    const v = row[n];
    const s = Buffer.isBuffer(v) ? `0x${v.subarray(0, 16).toString("hex")}` : String(v);
    return `${n}=${s.length > 40 ? `${s.slice(0, 40)}…` : s}`;
  });
  return parts.join(", ");
}

/**
 * A group: consecutive source transactions that go into the stream together (as one stream
 * "transaction": one txn_ordinal, txn_last on its last message), one open message per table.
 */
interface OpenGroup {
  ordinal: number;
  start: Position;
  gtid: string;
  timestampMs: number;
  rowIndex: number;
  msgIndex: number;
  /** Makes message ids of snapshot chunks (groups of their own) distinct from the binlog's. */
  snapshotChunk: string;
  /** Chunks written per table so far, so chunk numbers stay stable. */
  chunks: Map<string, number>;
  /** Open messages, by table and schema version, in the order their first rows came. */
  batches: Map<string, OpenBatch>;
  /** Closed messages waiting for the group's end (or a memory flush). */
  entries: JournalEntry[];
  /** Bytes of the closed messages, and of the rows in open ones. */
  bytes: number;
  /** The group's source transactions (index = RowChange.source_txn's group-wide number). */
  txns: SourceTxn[];
  /** A source transaction is open (its commit not seen yet). */
  inTxn: boolean;
  /** The group is to end at the next commit (a flush came while a transaction was open). */
  closeAtCommit: boolean;
}

/**
 * Turns binlog events into journal entries: this is where a binlog row becomes a journal row.
 *
 * Source transactions are gathered into groups: the small transactions that commit within one
 * group commit (capture.journal.groupCommitMs) share one message per table, so that an OLTP source
 * committing thousands of small transactions a second makes a few messages per group instead of a
 * few per transaction. A group ends at a flush (never inside a source transaction), at DDL, at a
 * heartbeat and before a snapshot chunk; its messages are journaled together with the checkpoint
 * after its last transaction. Each row keeps its own transaction (source_txns: GTID, position,
 * commit time). Per-table order and the overall order of transactions are kept, and a group
 * larger than capture.maxBufferBytes is written in chunks before its end.
 */
export class Assembler implements BinlogHandler {
  private readonly o: AssemblerOptions;
  private group: OpenGroup | null = null;
  private nextScn: number;
  private txnOrdinal: number;
  /** Complete groups not yet written: flushed together by flush(). */
  private pending: JournalEntry[] = [];
  private pendingCheckpoint: Checkpoint | null = null;
  private pendingBytesValue = 0;
  /** Writers of closed batches, reused. */
  private readonly writers: RowsWriter[] = [];
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

  /** Whether a source transaction is open. */
  get inTransaction(): boolean {
    return this.group?.inTxn ?? false;
  }

  /** Bytes of complete groups waiting for the next journal commit, and of the open group. */
  get pendingBytes(): number {
    return this.pendingBytesValue + (this.group?.bytes ?? 0);
  }

  /** Whether anything waits for a flush: complete groups, or an open group to close. */
  get hasPending(): boolean {
    return this.pending.length > 0 || this.pendingCheckpoint !== null || this.group !== null;
  }

  onBegin(gtid: string, at: Position, timestampMs: number): void {
    if (this.group?.inTxn) return; // BEGIN after a GTID event: the same transaction
    this.lastEventMs = timestampMs;
    const start = at.hasFile ? at : this.lastPosition;
    const g = this.group ?? this.openGroup(gtid, start, timestampMs);
    g.inTxn = true;
    g.txns.push({
      gtid,
      startFile: start.file,
      startPos: BigInt(start.pos),
      commitTime: BigInt(Math.floor(timestampMs / 1000)),
      firstRow: g.rowIndex,
    });
  }

  onRows(op: Op, table: TableInfo, rows: unknown[], timestampMs: number): void {
    if (!this.group?.inTxn) this.onBegin("", this.lastPosition, timestampMs); // rows without BEGIN
    const g = this.group!;
    this.lastEventMs = timestampMs;
    const { keys, kinds } = table;
    const txnIndex = g.txns.length - 1;
    const key = batchKey(table);
    let batch = g.batches.get(key);
    for (const row of rows) {
      if (batch && (batch.rows >= this.o.maxRows || batch.writer.length >= this.o.maxBytes)) {
        this.closeBatch(g, batch, false);
        batch = undefined;
      }
      if (!batch) {
        const image = (op === Op.OP_UPDATE ? (row as { after: unknown }).after : row) as Record<
          string,
          unknown
        >;
        batch = this.openBatch(g, table, key, keyText(table, image));
      }
      if (batch.lastTxn !== txnIndex) {
        batch.txns.push(g.txns[txnIndex]!);
        batch.lastTxn = txnIndex;
      }
      const local = batch.txns.length - 1;
      const rowIndex = g.rowIndex++;
      const w = batch.writer;
      const before = g.bytes;
      const size = w.length;
      if (op === Op.OP_UPDATE) {
        const r = row as { before: Record<string, unknown>; after: Record<string, unknown> };
        w.writeRow(op, rowIndex, kinds, keys, r.before, r.after, local);
        batch.ops.u++;
      } else if (op === Op.OP_DELETE) {
        w.writeRow(op, rowIndex, kinds, keys, row as Record<string, unknown>, null, local);
        batch.ops.d++;
      } else {
        w.writeRow(op, rowIndex, kinds, keys, null, row as Record<string, unknown>, local);
        if (op === Op.OP_READ) batch.ops.r++;
        else batch.ops.c++;
      }
      g.bytes = before + (w.length - size);
      batch.rows++;
      this.rowsSeen++;
    }
    if (g.bytes >= this.o.maxBufferBytes) this.spill(g);
  }

  /**
   * A large group: its closed messages are written as uncommitted chunks to bound memory (read
   * again after a crash, since the checkpoint only moves at the group's end). Open messages stay
   * open, so that the group's end can mark the last one, unless they alone fill half the buffer.
   */
  private spill(g: OpenGroup): void {
    const closedBytes = () => g.entries.reduce((n, e) => n + e.payload.byteLength, 0);
    if (g.bytes - closedBytes() >= this.o.maxBufferBytes / 2)
      for (const b of [...g.batches.values()]) this.closeBatch(g, b, false);
    if (g.entries.length === 0) return;
    const written = closedBytes();
    this.writePending();
    this.o.write(g.entries, null);
    g.entries = [];
    g.bytes -= written;
  }

  onCommit(at: Position, timestampMs: number): void {
    const g = this.group;
    if (!g?.inTxn) {
      this.onPosition(at);
      return;
    }
    this.lastEventMs = timestampMs;
    g.inTxn = false;
    this.txnsSeen++;
    this.lastPosition = at;
    // A group ends at a flush that came meanwhile, or when it is big enough to be a unit of its own.
    if (g.closeAtCommit || g.rowIndex >= this.o.maxRows * GROUP_MESSAGES) this.closeGroup(at);
  }

  onDdl(statement: string, db: string, tables: TableRef[], at: Position, timestampMs: number): void {
    const txn = this.group?.inTxn ? this.group.txns.at(-1) : undefined;
    const gtid = txn?.gtid ?? "";
    // Where the DDL started (its GTID event, as for a transaction of rows), not `at`, its end.
    const start = txn?.startFile ? Position.at(txn.startFile, txn.startPos) : this.lastPosition;
    // DDL commits implicitly: rows before it (never seen in practice) are committed with it.
    if (this.group) {
      this.group.inTxn = false;
      this.closeGroup(at);
    }
    this.lastEventMs = timestampMs;
    this.queueDdl(
      { statement, db, tables },
      at,
      timestampMs,
      gtid,
      messageIds.ddl(this.o.sourceId, at),
      start,
    );
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
    start: Position = at,
  ): void {
    const scn = this.nextScn++;
    const payload = encodeDdl({
      sourceId: this.o.sourceId,
      serverUuid: this.o.serverUuid,
      db: st.db,
      statement: st.statement,
      position: at.toWire(gtid, start),
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
    if (this.group) return; // the group's end sets the checkpoint
    this.lastPosition = at.hasFile ? at : this.lastPosition;
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onStandalone(at: Position, timestampMs: number): void {
    const g = this.group;
    if (g?.inTxn) {
      // An event group without rows for us ends (rows before an implicit commit: not seen in practice).
      const hadRows = g.txns.length > 0 && g.txns.at(-1)!.firstRow < g.rowIndex;
      if (hadRows) this.onCommit(at, timestampMs);
      else {
        g.txns.pop();
        g.inTxn = false;
        if (g.rowIndex === 0) this.group = null;
      }
    }
    if (!this.group) this.onPosition(at);
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
   * Rows a snapshot read, as a group of their own at `at` (between two binlog transactions: called
   * right after a commit). Op r; message ids carry the chunk id.
   */
  snapshotRows(table: TableInfo, rows: Record<string, unknown>[], at: Position, chunkId: string): void {
    if (this.group?.inTxn) throw new AssertionError("snapshot rows must be written between transactions");
    if (this.group) this.closeGroup(this.lastPosition);
    const now = Date.now();
    this.onBegin("", at, now);
    this.group!.snapshotChunk = chunkId;
    if (rows.length > 0) this.onRows(Op.OP_READ, table, rows, now);
    this.group!.inTxn = false;
    this.closeGroup(at);
  }

  /** Queues a heartbeat at the current position; skipped inside a transaction. */
  heartbeat(current: Position): void {
    if (this.group?.inTxn) return;
    if (this.group) this.closeGroup(this.lastPosition);
    const scn = this.nextScn++;
    const now = Date.now();
    const payload = encodeHeartbeat({
      sourceId: this.o.sourceId,
      position: current.toWire(""),
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

  /**
   * Writes every complete group held in memory, with the checkpoint after the last one. An open
   * group ends here, or, when a source transaction is open, at that transaction's commit.
   */
  flush(): void {
    const g = this.group;
    if (g) {
      if (g.inTxn) g.closeAtCommit = true;
      else this.closeGroup(this.lastPosition);
    }
    this.writePending();
  }

  /** Writes the complete groups held in memory, with the checkpoint after the last one. */
  private writePending(): void {
    if (this.pending.length === 0 && this.pendingCheckpoint === null) return;
    const entries = this.pending;
    const checkpoint = this.pendingCheckpoint;
    this.pending = [];
    this.pendingCheckpoint = null;
    this.pendingBytesValue = 0;
    this.o.write(entries, checkpoint);
  }

  /**
   * Forgets everything not yet written (the reader restarts from the journal's checkpoint);
   * complete groups must be flushed first.
   */
  reset(nextScn: number, txnOrdinal: number, position: Position): void {
    if (this.group) for (const b of this.group.batches.values()) this.release(b.writer);
    this.group = null;
    this.lastPosition = position;
    this.pending = [];
    this.pendingCheckpoint = null;
    this.pendingBytesValue = 0;
    this.nextScn = nextScn;
    this.txnOrdinal = txnOrdinal;
  }

  private openGroup(gtid: string, start: Position, timestampMs: number): OpenGroup {
    this.group = {
      ordinal: this.txnOrdinal + 1,
      start,
      gtid,
      timestampMs,
      rowIndex: 0,
      msgIndex: 0,
      snapshotChunk: "",
      chunks: new Map(),
      batches: new Map(),
      entries: [],
      bytes: 0,
      txns: [],
      inTxn: false,
      closeAtCommit: false,
    };
    return this.group;
  }

  /** Ends the group: its messages in order, the last marked txn_last, and the checkpoint at `at`. */
  private closeGroup(at: Position): void {
    const g = this.group!;
    this.group = null;
    const open = [...g.batches.values()];
    for (const [i, b] of open.entries()) this.closeBatch(g, b, i === open.length - 1);
    if (g.entries.length === 0) {
      // No rows (transactions of excluded tables): only the position moves.
      this.pendingCheckpoint = this.checkpointAt(at);
      return;
    }
    if (open.length === 0) {
      // Every message was closed as full before the end: mark the last one txn_last.
      const last = g.entries[g.entries.length - 1]!;
      last.payload = withTxnLast(last.payload);
    }
    this.txnOrdinal = g.ordinal;
    this.queue(g.entries);
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  private queue(entries: JournalEntry | JournalEntry[]): void {
    for (const e of Array.isArray(entries) ? entries : [entries]) {
      this.pending.push(e);
      this.pendingBytesValue += e.payload.byteLength;
    }
  }

  private openBatch(g: OpenGroup, table: TableInfo, key: string, firstKey: string): OpenBatch {
    const t = tableKey(table);
    const chunk = g.chunks.get(t) ?? 0;
    g.chunks.set(t, chunk + 1);
    const b: OpenBatch = {
      table,
      writer: this.writers.pop() ?? new RowsWriter(),
      rows: 0,
      chunk,
      ops: { c: 0, u: 0, d: 0, r: 0 },
      firstKey,
      txns: [],
      lastTxn: -1,
    };
    g.batches.set(key, b);
    return b;
  }

  /** Keeps a writer for reuse, unless a large row grew it: large buffers go back to the system. */
  private release(w: RowsWriter): void {
    w.reset();
    if (this.writers.length < 8 && w.capacity <= REUSE_WRITER_BYTES) this.writers.push(w);
  }

  private closeBatch(g: OpenGroup, batch: OpenBatch, last: boolean): void {
    g.batches.delete(batchKey(batch.table));
    const scn = this.nextScn++;
    const t = batch.table;
    const open = batch.writer.length;
    const payload = encodeBatchWithRows(
      {
        sourceId: this.o.sourceId,
        serverUuid: this.o.serverUuid,
        db: t.db,
        table: t.table,
        schemaVersion: t.schemaVersion,
        columns: t.columns,
        primaryKey: t.primaryKey,
        position: g.start.toWire(g.gtid),
        scn: BigInt(scn),
        txnOrdinal: BigInt(g.ordinal),
        chunk: batch.chunk,
        txnLast: last,
        commitTime: BigInt(Math.floor(g.timestampMs / 1000)),
        captureTimeMs: BigInt(Date.now()),
        sourceTxns: batch.txns,
      },
      batch.writer.view(), // copied into the payload, so no copy of its own
    );
    this.release(batch.writer);
    g.bytes += payload.byteLength - open;
    g.entries.push({
      scn,
      kind: "batch",
      subject: t.subject,
      msgId: messageIds.batch(this.o.sourceId, g.start, g.msgIndex++, g.snapshotChunk),
      ref: { db: t.db, table: t.table },
      ops: batch.ops,
      sortable: g.start.sortable,
      payload,
      firstKey: batch.firstKey,
    });
  }

  private checkpointAt(at: Position): Checkpoint {
    if (at.hasFile) this.lastPosition = at;
    return { position: at, committedScn: this.nextScn - 1, txnOrdinal: this.txnOrdinal };
  }
}

/** Rows of one table share a message while its columns stay the same. */
function batchKey(t: TableInfo): string {
  return `${tableKey(t)}\u0000${t.schemaVersion}`;
}

/** A batch with txn_last set (the one field 12 of a ChangeBatch, appended: the last value wins). */
function withTxnLast(payload: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(payload.byteLength + 2);
  out.set(payload, 0);
  out[payload.byteLength] = (12 << 3) | 0;
  out[payload.byteLength + 1] = 1;
  return out;
}
