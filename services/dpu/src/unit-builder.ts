import {
  decodeBatch,
  decodeChanges,
  decodeDdl,
  decodeHeartbeat,
  formatTableRef,
  Position,
  type TableRef,
} from "@dfs/codec";
import { DataError, errorMessage } from "@dfs/common";
import type { Change, DdlChange, Rejected, Sink } from "./sink.js";
import type { MessageSource, StreamMessage } from "./stream-reader.js";

/** Changes of consecutive messages, applied in one target transaction. */
export interface ChangeUnit {
  kind: "changes";
  messages: StreamMessage[];
  changes: Change[];
  /** Stream sequence of the last message: the checkpoint after the unit. */
  lastSeq: number;
  /** Capture times (ms) of its batches, for the end-to-end latency histogram. */
  captureTimesMs: number[];
  /** Source time of the last heartbeat in the unit (ms), 0 when none: the pipeline lag. */
  heartbeatSourceMs: number;
  /** Source position of the last message that carried one. */
  position: Position | null;
}

/** A schema change: applied on its own, after everything before it. */
export interface DdlUnit {
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

export type Step = ChangeUnit | DdlUnit | Reread | null;

export interface UnitBuilderOptions {
  source: MessageSource;
  sink: Pick<Sink, "describe">;
  maxMessages: number;
  maxRows: number;
  /** A change that cannot be applied as it is (no target table): dead-letter it, with the reason. */
  deadLetter(rejected: Rejected[]): Promise<void>;
  /** A message that cannot be decoded: dead-letter it whole, with the reason. */
  deadLetterMessage(table: TableRef, m: StreamMessage, error: string): Promise<void>;
  /** Told what was dead-lettered here (metrics, the activity log). */
  rejected?(rejected: readonly Rejected[]): void;
}

/**
 * Takes the next unit off the delivered messages, in stream order: messages up to a DDL (a
 * barrier) or the batch limits. Delivery must be gap-free: the next message is the one after the
 * last taken, unless the ones in between are gone from the stream. Messages at or below the
 * checkpoint (a redelivery after a restart) are acknowledged and dropped.
 */
export class UnitBuilder {
  deadLettered = 0;

  constructor(private readonly o: UnitBuilderOptions) {}

  /** The next step after `appliedSeq`, or null when nothing is delivered yet. */
  async next(appliedSeq: number): Promise<Step> {
    const { source } = this.o;
    const unit: ChangeUnit = {
      kind: "changes",
      messages: [],
      changes: [],
      lastSeq: appliedSeq,
      captureTimesMs: [],
      heartbeatSourceMs: 0,
      position: null,
    };
    for (let m = source.peek(); m !== undefined; m = source.peek()) {
      if (m.seq <= appliedSeq) {
        source.take().ack(); // already in the target
        continue;
      }
      const expected = unit.lastSeq + 1;
      if (m.seq !== expected) {
        if (unit.messages.length > 0) break; // apply what is contiguous first
        if (await source.anyStored(expected, m.seq)) return { kind: "reread", seenSeq: m.seq };
      }
      if (m.kind === "ddl") {
        if (unit.messages.length > 0) break;
        source.take();
        const ev = decodeDdl(m.data);
        const ddl = { db: ev.db, statement: ev.statement, tables: ev.tables };
        return { kind: "ddl", message: m, ddl, position: Position.fromWire(ev.position) };
      }
      if (unit.messages.length >= this.o.maxMessages || unit.changes.length >= this.o.maxRows) break;
      source.take();
      unit.messages.push(m);
      unit.lastSeq = m.seq;
      if (m.kind === "batch") await this.addBatch(unit, m);
      else if (m.kind === "heartbeat") {
        const hb = decodeHeartbeat(m.data);
        unit.heartbeatSourceMs = Number(hb.sourceTimeMs);
        if (hb.position?.file) unit.position = Position.fromWire(hb.position);
      }
    }
    return unit.messages.length > 0 ? unit : null;
  }

  /** The changes of one batch, each with its target table; what cannot be applied is dead-lettered. */
  private async addBatch(unit: ChangeUnit, m: StreamMessage): Promise<void> {
    const batch = decodeBatch(m.data);
    const ref = { db: batch.db, table: batch.table };
    unit.captureTimesMs.push(Number(batch.captureTimeMs));
    if (batch.position?.file) unit.position = Position.fromWire(batch.position, batch.serverUuid);
    let decoded: ReturnType<typeof decodeChanges>;
    try {
      decoded = decodeChanges(batch);
    } catch (err) {
      if (!(err instanceof DataError)) throw err;
      await this.o.deadLetterMessage(ref, m, errorMessage(err));
      this.deadLettered += batch.rows.length;
      return;
    }
    const target = await this.o.sink.describe(ref);
    const changes: Change[] = decoded.map((d) => ({ ...d, seq: m.seq, target: target! }));
    if (target) {
      unit.changes.push(...changes);
      return;
    }
    // No such table in the target and none to copy from the source: these rows cannot be applied.
    const missing = { ref, columns: new Set<string>(), key: [], keyKind: "none" as const };
    const rejected = changes.map((change) => ({
      change: { ...change, target: missing },
      error: `target table for ${formatTableRef(ref)} does not exist`,
      errno: 1146,
    }));
    await this.o.deadLetter(rejected);
    this.deadLettered += rejected.length;
    this.o.rejected?.(rejected);
  }
}
