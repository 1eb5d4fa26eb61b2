import {
  type DecodedChange,
  decodeBatch,
  decodeBatchChanges,
  decodeDdl,
  decodeHeartbeat,
  formatTableRef,
  Position,
  type TableRef,
} from "@dfs/codec";
import { AssertionError, ConfigError, DataError, ErrorCode, errorMessage, type Logger } from "@dfs/common";
import type { ChangeBatch } from "@dfs/proto";
import { Admission, deadLetterTable } from "./admit.js";
import {
  type Change,
  type DdlChange,
  type Rejected,
  type Sink,
  type TargetTable,
  type TxnChanges,
  unitKey,
  unitSeq,
} from "./sink.js";
import type { MessageSource, StreamMessage } from "./stream-reader.js";

/** Whole source transactions (and heartbeats) to apply together: group commit. */
export interface Group {
  kind: "group";
  /** Its source transactions, in source order (those applied before a restart left out). */
  txns: TxnChanges[];
  rows: number;
  /** Every message up to this sequence belongs to the group (or was applied before it). */
  lastSeq: number;
  /** The message at lastSeq: acknowledging it acknowledges the group (AckPolicy.All). */
  lastMessage: StreamMessage | null;
  /** Capture times (ms) of its batches, for the end-to-end latency histogram. */
  captureTimesMs: number[];
  /** Source time of its last heartbeat (ms), 0 when none: the pipeline lag. */
  heartbeatSourceMs: number;
  /** Source position of its last message that carried one. */
  position: Position | null;
}

/** A part of a stream transaction (capture group) too large for a group; `last` commits it. */
export interface LargePart {
  kind: "large";
  changes: Change[];
  last: boolean;
  /** Sequence and message of the part's last message. */
  lastSeq: number;
  lastMessage: StreamMessage;
  captureTimesMs: number[];
  position: Position | null;
  /** Source transactions whose rows came in this or earlier parts (counted once the last commits). */
  sourceTxns: number;
}

/** A schema change: applied on its own, after everything before it. */
export interface DdlStep {
  kind: "ddl";
  message: StreamMessage;
  ddl: DdlChange;
  position: Position;
}

/** Delivery skipped a message the stream still holds: read again from the checkpoint. */
export interface Reread {
  kind: "reread";
  seenSeq: number;
}

export type Step = Group | LargePart | DdlStep | Reread | null;

export interface TxnBuilderOptions {
  source: MessageSource;
  sink: Pick<Sink, "describe">;
  /** A group closes at the first source transaction boundary past any of these. */
  maxMessages: number;
  maxRows: number;
  maxBytes: number;
  /** How long a group waits for more when nothing more is delivered yet (0 = not at all). */
  maxWaitMs: number;
  /** A change that cannot be applied as it is (no target table): dead-letter it, with the reason. */
  deadLetter(rejected: Rejected[]): Promise<void>;
  /** A message that cannot be decoded: dead-letter it whole, with the reason. */
  deadLetterMessage(table: TableRef, m: StreamMessage, error: string): Promise<void>;
  /** Told what was dead-lettered here (metrics, the activity log). */
  rejected?(rejected: readonly Rejected[]): void;
  /** Whether this DPU's table group applies a table (absent: every table). */
  accepts?(ref: TableRef): boolean;
  /** Messages found gone up to this sequence are accepted as lost (dpu.acceptLossThrough); others stop the DPU. */
  acceptLossThrough?: number;
  /** Told of every gap of messages gone from the stream (the lost-messages metric). */
  onLost?(count: number): void;
  /** The source whose stream this is: messages of another source are refused (absent: not checked). */
  sourceId?: string;
  log: Logger;
}

/** The source transaction being gathered: its changes so far. */
interface OpenTxn {
  ordinal: bigint;
  changes: Change[];
  bytes: number;
  lastMessage: StreamMessage | null;
  /** Some of it was applied already as large parts (a target transaction is open). */
  large: boolean;
  captureTimesMs: number[];
  position: Position | null;
  /** First rows of the source transactions seen (for a large one's count). */
  firstRows: Set<number>;
}

/**
 * Gathers the delivered messages into whole source transactions and groups them, in stream order.
 * A source transaction is the run of batch messages with one txn_ordinal, up to the one marked
 * txn_last: it is never split between groups (a reader of the target never sees half of it),
 * and one larger than a group is streamed in parts into one target transaction. A DDL message is
 * a barrier. Delivery must be gap-free: the next message is the one after the last taken, unless
 * the ones in between are gone from the stream. Messages at or below the checkpoint, and source
 * transactions a lane already committed above it, are dropped.
 */
export class TxnBuilder {
  private cursor = 0;
  /** Source transactions (unitKey) a lane committed above the checkpoint: not applied again. */
  private skip = new Set<string>();
  private open: OpenTxn | null = null;
  /** Writable columns per batch schema and target table, so each change shares one array. */
  private readonly columnsCache = new WeakMap<TargetTable, Map<string, readonly string[]>>();
  /** Refuses messages that cannot be capture's (see admit.ts). */
  private readonly admission: Admission;
  deadLettered = 0;

  constructor(private readonly o: TxnBuilderOptions) {
    this.admission = new Admission(o.sourceId);
  }

  /**
   * Starts over after `lowWater` (a start, a re-read, a new position), skipping the transactions
   * in `applied` (lanes committed them above it); without `applied`, the ones known stay skipped.
   */
  reset(lowWater: number, applied?: ReadonlySet<string>): void {
    this.cursor = lowWater;
    this.o.source.reset?.(lowWater);
    this.skip = new Set([...(applied ?? this.skip)].filter((k) => unitSeq(k) > lowWater));
    this.open = null;
    this.admission.reset();
  }

  /** Whether a source transaction is being gathered (its first messages taken, not its last). */
  get gathering(): boolean {
    return this.open !== null;
  }

  async next(): Promise<Step> {
    const { source } = this.o;
    const g: Group = {
      kind: "group",
      txns: [],
      rows: 0,
      lastSeq: 0,
      lastMessage: null,
      captureTimesMs: [],
      heartbeatSourceMs: 0,
      position: null,
    };
    let messages = 0;
    let bytes = 0;
    const waitUntil = Date.now() + this.o.maxWaitMs;
    for (;;) {
      const m = source.peek();
      if (m === undefined) {
        const hasWork = g.lastMessage !== null;
        if (this.o.maxWaitMs > 0 && hasWork && Date.now() < waitUntil && source.waitForMore) {
          await source.waitForMore(waitUntil - Date.now());
          continue;
        }
        break;
      }
      if (m.seq <= this.cursor) {
        source.take(); // already applied or taken (a redelivery)
        continue;
      }
      const expected = this.cursor + 1;
      const first = m.firstSeq ?? m.seq; // a message joined from chunks starts at its first chunk
      if (first !== expected) {
        if (g.lastMessage !== null || this.open) break; // apply what is complete first
        if (await source.anyStored(expected, first)) return { kind: "reread", seenSeq: m.seq };
        this.lost(expected, first - 1);
      }
      // A message that cannot be capture's is dead-lettered with the reason and passed over; it
      // neither ends nor joins the source transaction being gathered.
      const refused =
        this.admission.refuse(m) ?? (m.kind === "batch" ? null : this.checkOther(m, g.lastMessage !== null));
      if (refused === "later") break;
      if (refused !== null) {
        source.take();
        this.cursor = m.seq;
        await this.refuse(m, refused);
        this.passOver(g, m);
        messages++;
        continue;
      }
      if (m.kind !== "batch" && this.open) this.endOpen(g, "the next message is not a batch");
      if (m.kind === "ddl") {
        if (g.lastMessage !== null) break;
        source.take();
        this.cursor = m.seq;
        const ev = decodeDdl(m.data); // checked by checkOther
        const ddl: DdlChange = {
          db: ev.db,
          statement: ev.statement,
          tables: ev.tables,
          gtid: ev.position?.gtid ?? "",
          position: ev.position?.startFile
            ? Position.fromRecord({ file: ev.position.startFile, pos: ev.position.startPos })
            : Position.fromWire(ev.position),
          commitTime: Number(ev.commitTime),
        };
        return { kind: "ddl", message: m, ddl, position: Position.fromWire(ev.position) };
      }
      if (m.kind !== "batch") {
        source.take();
        this.cursor = m.seq;
        g.lastSeq = m.seq;
        g.lastMessage = m;
        messages++;
        const hb = decodeHeartbeat(m.data); // checked by checkOther
        g.heartbeatSourceMs = Number(hb.sourceTimeMs);
        if (hb.position?.file) g.position = Position.fromWire(hb.position);
        continue;
      }
      // A new source transaction starts only while the group has room.
      const full = messages >= this.o.maxMessages || g.rows >= this.o.maxRows || bytes >= this.o.maxBytes;
      if (!this.open && full) break;
      source.take();
      this.cursor = m.seq;
      messages++;
      bytes += m.data.byteLength;
      const batch = await this.decode(m);
      if (batch === null) {
        this.passOver(g, m);
        continue;
      }
      if (this.open && batch.ordinal !== null && batch.ordinal !== this.open.ordinal)
        this.endOpen(g, "the next transaction began");
      if (!this.open) this.open = newTxn(batch.ordinal ?? 0n);
      const txn = this.open;
      await this.add(txn, m, batch);
      if (batch.txnLast) {
        this.open = null;
        if (txn.large) return this.part(txn, true);
        this.finish(g, txn);
        continue;
      }
      if (txn.changes.length >= this.o.maxRows || txn.bytes >= this.o.maxBytes) {
        if (g.lastMessage !== null) break; // the group first; the transaction goes on next time
        txn.large = true;
        return this.part(txn, false);
      }
    }
    return g.lastMessage !== null ? g : null;
  }

  /**
   * A whole stream transaction joins the group as its source transactions (except those a lane
   * applied before a restart).
   */
  private finish(g: Group, txn: OpenTxn): void {
    const seq = txn.lastMessage!.seq;
    for (const unit of sourceTxns(seq, txn.changes)) {
      if (this.skip.size > 0 && this.skip.delete(unitKey(unit.seq, unit.row))) continue;
      g.txns.push(unit);
      g.rows += unit.changes.length;
    }
    for (const t of txn.captureTimesMs) g.captureTimesMs.push(t);
    g.lastSeq = seq;
    g.lastMessage = txn.lastMessage;
    if (txn.position) g.position = txn.position;
  }

  /** Emits what a large transaction has gathered so far as a part. */
  private part(txn: OpenTxn, last: boolean): LargePart {
    // Source transactions a lane committed before a restart (when it was not large) stay applied.
    const changes =
      this.skip.size === 0
        ? txn.changes
        : txn.changes.filter((c) => !this.skip.has(unitKey(txn.lastMessage!.seq, firstRowOf(c))));
    for (const c of txn.changes) txn.firstRows.add(firstRowOf(c));
    const part: LargePart = {
      kind: "large",
      sourceTxns: txn.firstRows.size,
      changes,
      last,
      lastSeq: txn.lastMessage!.seq,
      lastMessage: txn.lastMessage!,
      captureTimesMs: txn.captureTimesMs,
      position: txn.position,
    };
    txn.changes = [];
    txn.bytes = 0;
    txn.captureTimesMs = [];
    return part;
  }

  /**
   * Messages `from`..`to` were never delivered and the stream no longer has them (expired by its
   * limits, deleted): the target would miss their changes. Never passed silently: the DPU stops
   * with the reason, unless the operator accepted this loss (dpu.acceptLossThrough).
   */
  private lost(from: number, to: number): void {
    const count = to - from + 1;
    this.o.onLost?.(count);
    const what = from === to ? `message ${from}` : `messages ${from}..${to} (${count})`;
    if (to <= (this.o.acceptLossThrough ?? 0)) {
      this.o.log.warn(
        { from, to, count },
        `stream ${what} gone before they were applied: accepted as lost (dpu.acceptLossThrough)`,
      );
      return;
    }
    throw new DataError(
      ErrorCode.STREAM_LOST,
      `stream ${what} ${count === 1 ? "expired or was deleted before this DPU applied it" : "expired or were deleted before this DPU applied them"} (applied through ${from - 1}): the target misses ${count === 1 ? "its" : "their"} changes. Raise the stream's limits (nats.stream.maxAge, maxBytes) so this does not recur; then re-snapshot the affected tables and set dpu.acceptLossThrough: ${to} to go on (docs/dpu.md, "Lost messages")`,
    );
  }

  /**
   * The open transaction's final batch is missing: capture never writes another message inside a
   * transaction, so this is taken as its end (with a warning), never dropped. Half of a large one
   * is already in an open target transaction: that cannot be taken as ended, the DPU stops.
   */
  private endOpen(g: Group, why: string): void {
    const txn = this.open!;
    this.open = null;
    if (txn.large)
      throw new AssertionError(
        `a large source transaction has no final batch (${why}); stopping before committing half of it`,
      );
    this.o.log.warn(
      { seq: txn.lastMessage?.seq, why },
      "a source transaction had no final batch; taking it as ended",
    );
    this.finish(g, txn);
  }

  /**
   * A DDL or heartbeat message's payload: why it cannot be capture's (undecodable, another source,
   * an SCN that differs from its header), null when it may be, or "later" when a DDL must wait for
   * the group before it (it is checked again then).
   */
  private checkOther(m: StreamMessage, groupHasWork: boolean): string | null | "later" {
    if (m.kind === "ddl" && groupHasWork) return "later";
    try {
      const p = m.kind === "ddl" ? decodeDdl(m.data) : decodeHeartbeat(m.data);
      if (m.kind === "ddl" && (p as { statement?: string }).statement === "")
        return "a DDL event without a statement";
      return this.admission.checkPayload(m, { sourceId: p.sourceId, scn: p.scn });
    } catch (err) {
      if (err instanceof DataError || err instanceof ConfigError || err instanceof AssertionError)
        return errorMessage(err);
      throw err;
    }
  }

  /** Dead-letters a message that cannot be capture's, whole, with the reason. */
  private async refuse(m: StreamMessage, why: string): Promise<void> {
    this.o.log.warn(
      { seq: m.seq, subject: m.subject, why },
      "a stream message was refused; dead-lettering it",
    );
    await this.o.deadLetterMessage(deadLetterTable(m), m, why);
    this.deadLettered++;
  }

  /**
   * A refused message taken: outside a source transaction the group acknowledges it (as a
   * heartbeat); inside one, the transaction's last message does.
   */
  private passOver(g: Group, m: StreamMessage): void {
    if (this.open) return;
    g.lastSeq = m.seq;
    g.lastMessage = m;
  }

  /**
   * The batch's changes, or why it cannot be decoded (its header's fields when those can be);
   * null when it cannot be capture's at all (dead-lettered here, with the reason).
   */
  private async decode(m: StreamMessage): Promise<{
    ordinal: bigint | null;
    txnLast: boolean;
    header: ChangeBatch | null;
    changes: DecodedChange[];
  } | null> {
    let decoded: { header: ChangeBatch; changes: DecodedChange[] } | null = null;
    let error: unknown = null;
    try {
      decoded = decodeBatchChanges(m.data);
    } catch (err) {
      if (!(err instanceof DataError)) throw err;
      error = err;
    }
    // The header alone (the generic decoder) when the rows do not decode: it says where it belongs.
    let header = decoded?.header ?? null;
    if (!header) {
      try {
        header = decodeBatch(m.data);
      } catch {
        header = null; // not even the header
      }
    }
    const refused =
      header === null || header.db === "" || header.table === ""
        ? `not a change batch: ${errorMessage(error)}`
        : decoded?.changes.length === 0
          ? "a change batch without rows (capture never publishes one)"
          : this.admission.checkPayload(m, {
              sourceId: header.sourceId,
              scn: header.scn,
              table: { db: header.db, table: header.table },
            });
    if (refused !== null) {
      await this.refuse(m, refused);
      return null;
    }
    if (decoded) return { ordinal: decoded.header.txnOrdinal, txnLast: decoded.header.txnLast, ...decoded };
    // Capture's message, with rows this DPU cannot decode: dead-lettered whole as it came, with the
    // reason; it still ends its source transaction when it is the last.
    await this.o.deadLetterMessage({ db: header!.db, table: header!.table }, m, errorMessage(error));
    this.deadLettered++;
    return { ordinal: header!.txnOrdinal, txnLast: header!.txnLast, header: null, changes: [] };
  }

  /** Adds a decoded batch to a transaction; rows of a table the target lacks are dead-lettered. */
  private async add(
    txn: OpenTxn,
    m: StreamMessage,
    b: { header: ChangeBatch | null; changes: DecodedChange[] },
  ): Promise<void> {
    txn.bytes += m.data.byteLength;
    txn.lastMessage = m;
    const header = b.header;
    if (!header) return;
    txn.captureTimesMs.push(Number(header.captureTimeMs));
    if (header.position?.file) txn.position = Position.fromWire(header.position, header.serverUuid);
    if (b.changes.length === 0) return;
    const ref = b.changes[0]!.ref;
    // Another group's table: its rows are that group's; the transaction's bounds still count here.
    if (this.o.accepts && !this.o.accepts(ref)) return;
    const target = await this.o.sink.describe(ref);
    if (target) {
      const columns = this.columnsOf(header, target);
      // The decoded changes become Changes in place (no copy of every row).
      for (const d of b.changes) {
        const c = d as Change;
        c.seq = m.seq;
        c.target = target;
        c.columns = columns;
        c.keys = null;
        txn.changes.push(c);
      }
      return;
    }
    // No such table in the target and none to copy from the source: these rows cannot be applied.
    const missing: TargetTable = { ref, columns: new Set(), key: [], keyKind: "none", uniqueKeys: [] };
    const rejected = b.changes.map((d) => ({
      // In place, like the applied ones: a decoded change cuts its raw row lazily (a copy would lose it).
      change: Object.assign(d as Change, { seq: m.seq, target: missing, columns: [], keys: null }),
      error: `target table for ${formatTableRef(ref)} does not exist`,
      errno: 1146,
    }));
    await this.o.deadLetter(rejected);
    this.deadLettered += rejected.length;
    this.o.rejected?.(rejected);
  }

  /** The batch's columns the target has, in order: one shared array per schema and target table. */
  private columnsOf(header: ChangeBatch, target: TargetTable): readonly string[] {
    let byTable = this.columnsCache.get(target);
    if (!byTable) {
      byTable = new Map();
      this.columnsCache.set(target, byTable);
    }
    const sig = header.columns.map((c) => c.name).join("\u0000");
    let cols = byTable.get(sig);
    if (!cols) {
      cols = header.columns.map((c) => c.name).filter((n) => target.columns.has(n));
      byTable.set(sig, cols);
    }
    return cols;
  }
}

function newTxn(ordinal: bigint): OpenTxn {
  return {
    ordinal,
    changes: [],
    bytes: 0,
    lastMessage: null,
    large: false,
    captureTimesMs: [],
    position: null,
    firstRows: new Set(),
  };
}

/** The group-wide index of the first row of a change's source transaction (0 without source_txns). */
function firstRowOf(c: Change): number {
  return c.batch.sourceTxns[c.sourceTxn]?.firstRow ?? 0;
}

/**
 * A stream transaction's source transactions, by their first row, each with its changes in
 * binlog order (rowIndex): capture puts each table's rows of a group into one message, so the
 * changes arrive table by table.
 */
function sourceTxns(seq: number, changes: Change[]): TxnChanges[] {
  let single = true;
  for (const c of changes)
    if (c.batch.sourceTxns.length > 1) {
      single = false;
      break;
    }
  if (single) {
    // One source transaction (or an older stream without source_txns).
    const row = changes.length > 0 ? firstRowOf(changes[0]!) : 0;
    if (!changes.every((c) => firstRowOf(c) === row)) single = false;
    else return [{ seq, row, changes: sortedByRow(changes) }];
  }
  const byRow = new Map<number, Change[]>();
  for (const c of changes) {
    const row = firstRowOf(c);
    const list = byRow.get(row);
    if (list) list.push(c);
    else byRow.set(row, [c]);
  }
  return [...byRow.entries()]
    .sort(([a], [b]) => a - b)
    .map(([row, list]) => ({ seq, row, changes: sortedByRow(list) }));
}

function sortedByRow(changes: Change[]): Change[] {
  for (let i = 1; i < changes.length; i++)
    if (changes[i]!.rowIndex < changes[i - 1]!.rowIndex)
      return changes.sort((a, b) => a.rowIndex - b.rowIndex);
  return changes;
}
