import { encodeBatchWithRows, encodeDdl, encodeHeartbeat, RowsWriter, sortablePosition } from "@dfs/codec";
import { Op, type SourcePosition } from "@dfs/proto";
import type { Checkpoint, JournalEntry } from "./journal.js";
import type { TableInfo } from "./tables.js";

/** A schema statement to journal as DDL: executed in database `db`, touching `tables` ("db.table"). */
export interface SchemaStatement {
  statement: string;
  db: string;
  tables: string[];
}

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
  /** The position moved between transactions (binlog rotation). */
  onPosition(at: ReadPosition): void;
  /**
   * A statement that ends its event group without data for us (GRANT, FLUSH, DDL of excluded
   * tables): the group its GTID event opened is over.
   */
  onStandalone(at: ReadPosition, timestampMs: number): void;
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
  /** Returns the checkpoint the journal holds (null before the first transaction). */
  nextScn: number;
  txnOrdinal: number;
  serverIdentity: string;
}

interface OpenBatch {
  table: TableInfo;
  rows: number;
  chunk: number;
  /** Rows per op, for the metrics. */
  c: number;
  u: number;
  d: number;
  r: number;
  firstKey: string;
}

/** "c=3,u=1" from the op counts of a batch. */
function formatOps(b: OpenBatch): string {
  const parts: string[] = [];
  if (b.c) parts.push(`c=${b.c}`);
  if (b.u) parts.push(`u=${b.u}`);
  if (b.d) parts.push(`d=${b.d}`);
  if (b.r) parts.push(`r=${b.r}`);
  return parts.join(",");
}

/** The op counts of a journal entry's `ops`. */
export function parseOps(ops: string): [op: string, rows: number][] {
  if (!ops) return [];
  return ops.split(",").map((p) => [p.slice(0, 1), Number(p.slice(2))]);
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
  start: ReadPosition;
  startSortable: string;
  rowIndex: number;
  msgIndex: number;
  timestampMs: number;
  /** Makes message ids of synthetic transactions (snapshot chunks) distinct from the binlog's. */
  idTag: string;
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

  /** Bytes of complete transactions waiting for the next journal commit. */
  get pendingBytes(): number {
    return this.pendingBytesValue;
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
      idTag: "",
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
          c: 0,
          u: 0,
          d: 0,
          r: 0,
          firstKey: keyText(table, image),
        };
      }
      const batch = txn.batch;
      const rowIndex = txn.rowIndex++;
      if (op === Op.OP_UPDATE) {
        const r = row as { before: Record<string, unknown>; after: Record<string, unknown> };
        w.writeRow(op, rowIndex, kinds, keys, r.before, r.after);
        batch.u++;
      } else if (op === Op.OP_DELETE) {
        w.writeRow(op, rowIndex, kinds, keys, row as Record<string, unknown>, null);
        batch.d++;
      } else {
        w.writeRow(op, rowIndex, kinds, keys, null, row as Record<string, unknown>);
        if (op === Op.OP_READ) batch.r++;
        else batch.c++;
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
    this.queue(txn.entries);
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onDdl(statement: string, db: string, tables: string[], at: ReadPosition, timestampMs: number): void {
    const gtid = this.txn?.gtid ?? "";
    // DDL commits implicitly: rows before it (never seen in practice) are committed with it.
    if (this.txn && (this.txn.entries.length > 0 || this.txn.batch)) this.onCommit(at, timestampMs);
    this.txn = null;
    this.lastEventMs = timestampMs;
    this.queueDdl({ statement, db, tables }, at, timestampMs, gtid, "ddl");
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  /**
   * The definitions of every captured database and table when a journal starts, as DDL at the
   * start position: with them the stream is a complete schema history from its first message.
   */
  schemaSnapshot(statements: readonly SchemaStatement[], at: ReadPosition): void {
    const now = Date.now();
    for (const [i, st] of statements.entries()) this.queueDdl(st, at, now, at.gtid ?? "", `schema:${i}`);
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  private queueDdl(
    st: SchemaStatement,
    at: ReadPosition,
    timestampMs: number,
    gtid: string,
    idSuffix: string,
  ): void {
    const scn = this.nextScn++;
    const position = this.positionOf(at, at, gtid);
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
      msgId: `${this.o.sourceId}:${position.sortable}:${idSuffix}`,
      rows: 0,
      pos: position.sortable,
      payload,
      ops: "",
    });
  }

  onPosition(at: ReadPosition): void {
    if (this.txn) return;
    this.pendingCheckpoint = this.checkpointAt(at);
  }

  onStandalone(at: ReadPosition, timestampMs: number): void {
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
  snapshotRows(table: TableInfo, rows: Record<string, unknown>[], at: ReadPosition, chunkId: string): void {
    if (this.txn) throw new Error("snapshot rows must be written between transactions");
    const now = Date.now();
    this.onBegin("", at, now);
    this.txn!.idTag = `s${chunkId}.`;
    if (rows.length > 0) this.onRows(Op.OP_READ, table, rows, now);
    this.onCommit(at, now);
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
      sourceTimeMs: BigInt(this.sourceTimeMs),
      captureTimeMs: BigInt(now),
    });
    this.queue({
      scn,
      kind: "heartbeat",
      subject: this.o.heartbeatSubject,
      msgId: `${this.o.sourceId}:hb:${this.o.journalId.slice(0, 8)}:${scn}`,
      rows: 0,
      pos: position.sortable,
      payload,
      ops: "",
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
  reset(nextScn: number, txnOrdinal: number): void {
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
        position: this.positionOf(txn.start, txn.start, txn.gtid),
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
      msgId: `${this.o.sourceId}:${txn.startSortable}:${txn.idTag}${txn.msgIndex++}`,
      rows: batch.rows,
      pos: txn.startSortable,
      payload,
      ops: formatOps(batch),
      firstKey: batch.firstKey,
    });
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
