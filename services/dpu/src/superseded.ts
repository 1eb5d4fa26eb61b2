/**
 * Whether a dead letter is stale: a change to the same row later in the stream (applied, or to be
 * applied) already brings the row to a newer image, so replaying the dead letter now would move
 * the row back to an older one. The stream is walked on the table's own subject only (a message
 * get with `next_by_subj` per message), from the dead letter's sequence on. A message larger than
 * max_payload is in the stream as chunks (consecutive sequences): it is joined before it is read.
 */
import {
  type ChunkHeader,
  ChunkJoiner,
  type DecodedChange,
  decodeBatch,
  decodeChanges,
  parseChunkHeader,
  type SqlValue,
  type TableRef,
} from "@dfs/codec";
import { subjects } from "@dfs/nats";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

export type Supersession =
  | { kind: "none" }
  /** A later message changes one of the rows. */
  | { kind: "superseded"; seq: number }
  /** The stream no longer holds every later message of the table: it cannot be told. */
  | { kind: "unknown"; reason: string };

/** A row's identity as text: the key columns' values (bytes as hex). */
export function rowKey(
  image: Readonly<Record<string, SqlValue>> | null,
  key: readonly string[],
): string | null {
  if (!image || key.length === 0) return null;
  return JSON.stringify(
    key.map((c) => {
      const v = image[c];
      return v === null || v === undefined
        ? null
        : v instanceof Uint8Array
          ? `0x${Buffer.from(v).toString("hex")}`
          : String(v);
    }),
  );
}

/** The keys a change touches: its before image's row and its after image's row. */
export function keysOf(change: Pick<DecodedChange, "before" | "after">, key: readonly string[]): string[] {
  const out: string[] = [];
  for (const img of [change.before, change.after]) {
    const k = rowKey(img, key);
    if (k !== null && !out.includes(k)) out.push(k);
  }
  return out;
}

/**
 * Looks for a change after row `rowIndex` of stream message `afterSeq` (-1: the whole message) on
 * `table`'s subject that changes a row in `keys` (key columns `key`). Messages that cannot be
 * decoded count as "unknown" (they might).
 */
export async function findNewerChange(
  nc: NatsConnection,
  sourceId: string,
  table: TableRef,
  at: { seq: number; rowIndex: number },
  key: readonly string[],
  keys: ReadonlySet<string>,
): Promise<Supersession> {
  const afterSeq = at.rowIndex < 0 ? at.seq : at.seq - 1;
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const stream = subjects.streamName(sourceId);
  const info = await jsm.streams.info(stream);
  if (info.state.first_seq > afterSeq + 1 && info.state.last_seq > afterSeq)
    return {
      kind: "unknown",
      reason: `stream messages ${afterSeq + 1}..${info.state.first_seq - 1} after it are gone (expired or deleted), so a newer change to its row cannot be ruled out`,
    };
  const subject = subjects.data(sourceId, table.db, table.table);
  let seq = afterSeq + 1;
  while (seq <= info.state.last_seq) {
    // The next message of this table at or after seq (nats-server 2.9+ STREAM.MSG.GET next_by_subj).
    const m = await jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as never);
    if (!m || m.seq > info.state.last_seq) break;
    // A chunk: the message it belongs to, joined; its sequence is its last chunk's (as the DPU's).
    let data = m.data;
    let msgSeq = m.seq;
    let chunk: ChunkHeader | null;
    try {
      chunk = parseChunkHeader((name) => m.header.get(name) || undefined);
    } catch {
      return { kind: "unknown", reason: `stream message ${m.seq} of the table has malformed chunk headers` };
    }
    if (chunk) {
      const whole = await joinAround(jsm, stream, m.seq, chunk);
      if (!whole)
        return {
          kind: "unknown",
          reason: `stream message ${m.seq} is a chunk of a message the stream no longer holds whole`,
        };
      data = whole.data;
      msgSeq = whole.lastSeq;
    }
    let changes: DecodedChange[];
    try {
      changes = decodeChanges(decodeBatch(data));
    } catch {
      return { kind: "unknown", reason: `stream message ${msgSeq} of the table cannot be decoded` };
    }
    // In the dead letter's own message, only the rows after it (one transaction may change a row twice).
    const from = msgSeq === at.seq ? at.rowIndex + 1 : 0;
    for (let i = from; i < changes.length; i++)
      for (const k of keysOf(changes[i]!, key)) if (keys.has(k)) return { kind: "superseded", seq: msgSeq };
    seq = msgSeq + 1;
  }
  return { kind: "none" };
}

/**
 * The message chunk `h` at `seq` belongs to, joined from its chunks (capture publishes them at
 * consecutive sequences), or null when one of them is gone or is not the message's.
 */
async function joinAround(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
  h: ChunkHeader,
): Promise<{ data: Uint8Array; lastSeq: number } | null> {
  const joiner = new ChunkJoiner();
  const first = seq - h.index;
  for (let i = 0; i < h.count; i++) {
    const m = await jsm.streams.getMessage(stream, { seq: first + i }).catch(() => null);
    if (!m) return null;
    try {
      const c = parseChunkHeader((name) => m.header.get(name) || undefined);
      if (!c || c.of !== h.of) return null;
      const r = joiner.add({ header: c, seq: m.seq, data: m.data });
      if (r.kind === "whole") return { data: r.data, lastSeq: r.lastSeq };
      if (r.kind !== "partial") return null;
    } catch {
      return null; // chunks that contradict each other
    }
  }
  return null;
}
