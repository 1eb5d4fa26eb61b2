import { decodeBatch, encodeBatch, encodeDdl, encodeHeartbeat, sortablePosition, toValue, type ValueKind } from "@dfs/codec";
import { type ChangeBatch, Op, type RowChange, type SourcePosition, type Value } from "@dfs/proto";
import type { Checkpoint, JournalEntry } from "./journal.js";
import type { TableInfo } from "./tables.js";

/** Where the reader is in the binlog, as zongji reports it after the current event. */
export interface ReadPosition {
  file: string;
  pos: number;
  gtid: string | null;
}

/** The typed calls the binlog reader makes, one per kind of event that matters. */
export interface BinlogHandler {
  onBegin(gtid: string, at: ReadPosition, timestampMs: number): void;
  onRows(op: Op, table: TableInfo, rows: unknown[], timestampMs: number): void;
  /** COMMIT, XID, or a ROLLBACK that ended a group of non-transactional changes (which stay done). */
  onCommit(at: ReadPosition, timestampMs: number): void;
  onDdl(statement: string, db: string, tables: string[], at: ReadPosition, timestampMs: number): void;
  /** A standalone event that moved the position without data (GRANT, FLUSH, filtered DDL...). */
  onPosition(at: ReadPosition): void;
  /** The server said it has nothing newer: the reader is caught up. */
  onCaughtUp(): void;
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
  /** Returns the checkpoint the journal holds (null before the first transaction). */
  nextScn: number;
  txnOrdinal: number;
  serverIdentity: string;
}

interface OpenBatch {
  table: TableInfo;
  rows: RowChange[];
  bytes: number;
  chunk: number;
}

interface OpenTxn {
  ordinal: number;
  gtid: string;
  start: ReadPosition;
  startSortable: string;
  rowIndex: number;
  msgIndex: number;
  timestampMs: number;
  /** Chunks written per table so far, so chunk numbers stay stable. */
  chunks: Map<string, number>;
  /** Closed batches and their entries, waiting for the commit (or a memory flush). */
  entries: JournalEntry[];
  bytes: number;
  batch: OpenBatch | null;
}

/** Approximate encoded size of a value, to cut batches by bytes without encoding twice. */
function sizeOf(v: unknown): number {
  if (typeof v === "string") return v.length + 4;
  if (v instanceof Uint8Array) return v.byteLength + 4;
  return 10;
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
  private lastEventMs = 0;
  private caughtUpMs = 0;
  /** Rows and transactions seen, for metrics and status. */
  rowsSeen = 0;
  txnsSeen = 0;

  constructor(options: AssemblerOptions) {
    this.o = options;
    this.nextScn = options.nextScn;
    this.txnOrdinal = options.txnOrdinal;
  }

  get inTransaction(): boolean {
    return this.txn !== null;
  }

  get hasPending(): boolean {
    return this.pending.length > 0 || this.pendingCheckpoint !== null;
  }

  onBegin(gtid: string, at: ReadPosition, timestampMs: number): void {
    if (this.txn) return; // BEGIN after a GTID event: the same transaction
    this.lastEventMs = timestampMs;
    this.txn = {
      ordinal: this.txnOrdinal + 1,
      gtid,
      start: at,
      startSortable: sortablePosition(at.file, at.pos),
      rowIndex: 0,
      msgIndex: 0,
      timestampMs,
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
    const n = keys.length;
    for (const row of rows) {
      if (!txn.batch) txn.batch = { table, rows: [], bytes: 0, chunk: this.nextChunk(txn, table) };
      const batch = txn.batch;
      let bytes = 8;
      const image = (obj: Record<string, unknown>): Value[] => {
        const out = new Array<Value>(n);
        for (let i = 0; i < n; i++) {
          const v = obj[keys[i]!];
          bytes += sizeOf(v);
          out[i] = toValue(kinds[i] as ValueKind, v);
        }
        return out;
      };
      const change: RowChange = { op, rowIndex: txn.rowIndex++, before: [], after: [] };
      if (op === Op.OP_UPDATE) {
        const r = row as { before: Record<string, unknown>; after: Record<string, unknown> };
        change.before = image(r.before);
        change.after = image(r.after);
      } else if (op === Op.OP_DELETE) {
        change.before = image(row as Record<string, unknown>);
      } else {
        change.after = image(row as Record<string, unknown>);
      }
      batch.rows.push(change);
      batch.bytes += bytes;
      txn.bytes += bytes;
      this.rowsSeen++;
      if (batch.rows.length >= this.o.maxRows || batch.bytes >= this.o.maxBytes) this.closeBatch(txn, false);
    }
    // A large transaction: write what is closed as uncommitted chunks to bound memory. The last
    // closed entry stays in memory so the commit can still mark it as the transaction's last.
    if (txn.bytes >= this.o.maxBufferBytes) {
      this.closeBatch(txn, false);
      this.flush();
      const keep = txn.entries.pop();
      this.o.write(txn.entries, null);
      txn.entries = keep ? [keep] : [];
      txn.bytes = keep ? keep.payload.byteLength : 0;
    }
  }

  onCommit(at: ReadPosition, timestampMs: number): void {
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
    this.pending.push(...txn.entries);
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onDdl(statement: string, db: string, tables: string[], at: ReadPosition, timestampMs: number): void {
    const gtid = this.txn?.gtid ?? "";
    // DDL commits implicitly: rows before it (never seen in practice) are committed with it.
    if (this.txn && (this.txn.entries.length > 0 || this.txn.batch)) this.onCommit(at, timestampMs);
    this.txn = null;
    this.lastEventMs = timestampMs;
    const scn = this.nextScn++;
    const position = this.positionOf(at, at, gtid);
    const payload = encodeDdl({
      sourceId: this.o.sourceId,
      serverUuid: this.o.serverUuid,
      db,
      statement,
      position,
      scn: BigInt(scn),
      commitTime: BigInt(Math.floor(timestampMs / 1000)),
      captureTimeMs: BigInt(Date.now()),
      tables,
    });
    this.txnOrdinal++;
    this.pending.push({
      scn,
      kind: "ddl",
      subject: this.o.ddlSubject,
      msgId: `${this.o.sourceId}:${position.sortable}:ddl`,
      rows: 0,
      pos: position.sortable,
      payload,
    });
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onPosition(at: ReadPosition): void {
    if (this.txn) return;
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onCaughtUp(): void {
    this.caughtUpMs = Date.now();
  }

  /** Queues a heartbeat at the current checkpoint; skipped inside a transaction. */
  heartbeat(current: ReadPosition): void {
    if (this.txn) return;
    const scn = this.nextScn++;
    const now = Date.now();
    const position = this.positionOf(current, current, "");
    const payload = encodeHeartbeat({
      sourceId: this.o.sourceId,
      position,
      scn: BigInt(scn),
      sourceTimeMs: BigInt(Math.max(this.lastEventMs, this.caughtUpMs)),
      captureTimeMs: BigInt(now),
    });
    this.pending.push({
      scn,
      kind: "heartbeat",
      subject: this.o.heartbeatSubject,
      msgId: `${this.o.sourceId}:hb:${this.o.journalId.slice(0, 8)}:${scn}`,
      rows: 0,
      pos: position.sortable,
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
    this.o.write(entries, checkpoint);
  }

  /**
   * Forgets everything not yet written (the reader restarts from the journal's checkpoint);
   * complete transactions must be flushed first.
   */
  reset(nextScn: number, txnOrdinal: number): void {
    this.txn = null;
    this.pending = [];
    this.pendingCheckpoint = null;
    this.nextScn = nextScn;
    this.txnOrdinal = txnOrdinal;
  }

  private beginImplicit(timestampMs: number): OpenTxn {
    // Row events outside a transaction marker (old servers, non-transactional engines).
    this.onBegin("", { file: "", pos: 0, gtid: null }, timestampMs);
    return this.txn!;
  }

  private nextChunk(txn: OpenTxn, table: TableInfo): number {
    const key = `${table.db}.${table.table}`;
    const n = txn.chunks.get(key) ?? 0;
    txn.chunks.set(key, n + 1);
    return n;
  }

  private closeBatch(txn: OpenTxn, last: boolean): void {
    const batch = txn.batch;
    if (!batch) {
      if (last && txn.entries.length > 0) this.markLast(txn);
      return;
    }

    txn.batch = null;
    const scn = this.nextScn++;
    const t = batch.table;
    const position = this.positionOf(txn.start, txn.start, txn.gtid);
    const msg: ChangeBatch = {
      sourceId: this.o.sourceId,
      serverUuid: this.o.serverUuid,
      db: t.db,
      table: t.table,
      schemaVersion: t.schemaVersion,
      columns: t.columns,
      primaryKey: t.primaryKey,
      position,
      scn: BigInt(scn),
      txnOrdinal: BigInt(txn.ordinal),
      chunk: batch.chunk,
      txnLast: last,
      commitTime: BigInt(Math.floor(txn.timestampMs / 1000)),
      captureTimeMs: BigInt(Date.now()),
      rows: batch.rows,
    };
    txn.entries.push({
      scn,
      kind: "batch",
      subject: t.subject,
      msgId: `${this.o.sourceId}:${txn.startSortable}:${txn.msgIndex++}`,
      rows: batch.rows.length,
      pos: txn.startSortable,
      payload: encodeBatch(msg),
    });
  }

  /**
   * Sets txn_last on the transaction's final entry when that batch was closed before the commit
   * arrived (full batch, or a later table's rows). It is always still in memory (see onRows).
   */
  private markLast(txn: OpenTxn): void {
    const entry = txn.entries[txn.entries.length - 1]!;
    if (entry.kind !== "batch") return;
    const msg = decodeBatch(entry.payload);
    msg.txnLast = true;
    entry.payload = encodeBatch(msg);
  }

  private positionOf(at: ReadPosition, start: ReadPosition, gtid: string): SourcePosition {
    return {
      gtid,
      file: at.file,
      pos: BigInt(at.pos),
      startFile: start.file,
      startPos: BigInt(start.pos),
      sortable: at.file ? sortablePosition(at.file, at.pos) : "",
    };
  }

  private checkpointAt(at: ReadPosition): Checkpoint {
    return {
      file: at.file,
      pos: at.pos,
      gtid: at.gtid,
      committedScn: this.nextScn - 1,
      txnOrdinal: this.txnOrdinal,
      serverIdentity: this.o.serverIdentity,
    };
  }
}
