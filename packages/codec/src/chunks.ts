import { createHash, type Hash } from "node:crypto";
import { DataError, ErrorCode } from "@dfs/common";

/**
 * Messages larger than the NATS server's max_payload (1 MiB by default; a row may be 1 GiB) travel
 * as chunks: consecutive messages on the message's own subject, each a slice of its bytes, with
 * headers that say which slice it is, of what, and the whole message's checksum. The publisher
 * makes them (capture's journal keeps the message whole); the consumer joins them back into the
 * exact bytes before anything decodes them. Capture is the stream's only writer and publishes each
 * chunk expecting the previous one's id, so a message's chunks sit at consecutive stream
 * sequences, in order, nothing between them.
 */
export const ChunkHeaders = {
  /** "<index>/<count>": which slice (from 0) of how many. */
  chunk: "Dfs-Chunk",
  /** Bytes of the whole message. */
  bytes: "Dfs-Chunk-Bytes",
  /** SHA-256 of the whole message, hex. */
  sha256: "Dfs-Chunk-Sha256",
  /** The whole message's id (its Nats-Msg-Id, had it been sent whole). */
  of: "Dfs-Chunk-Of",
} as const;

/** What a chunk's headers say. */
export interface ChunkHeader {
  index: number;
  count: number;
  /** Bytes of the whole message. */
  bytes: number;
  sha256: string;
  /** The whole message's id: chunks of one message share it. */
  of: string;
}

/** Most bytes of one joined message: past this a header is taken as corrupt, not as a size to allocate. */
export const MAX_JOINED_BYTES = 4 * 1024 * 1024 * 1024 - 1;

/** How many chunks a message of `bytes` needs with at most `maxChunk` bytes each (1 = none). */
export function chunkCount(bytes: number, maxChunk: number): number {
  return Math.max(1, Math.ceil(bytes / Math.max(1, maxChunk)));
}

/**
 * Slice `index` of `count` of a message: slices are ceil(bytes / count) long except the last, so
 * that the split depends only on the message's size and the count (a publisher resuming a message
 * after a restart cuts it exactly as before). A view, not a copy.
 */
export function chunkSlice(payload: Uint8Array, index: number, count: number): Uint8Array {
  const [start, end] = sliceRange(payload.byteLength, index, count);
  return payload.subarray(start, end);
}

/**
 * Where slice `index` of `count` of a message of `bytes` starts and ends ([start, end)): the
 * split chunkSlice makes, for a message that is not in memory whole (capture's journal stores a
 * large one in parts, cut the same way).
 */
export function sliceRange(bytes: number, index: number, count: number): [start: number, end: number] {
  const size = Math.ceil(bytes / count);
  const start = Math.min(bytes, index * size);
  return [start, Math.max(start, Math.min(bytes, (index + 1) * size))];
}

/** The message id of a chunk: the whole message's id with the slice appended (stable across replays). */
export function chunkMsgId(of: string, index: number, count: number): string {
  return `${of}:chunk:${index}/${count}`;
}

/** The headers of chunk `index` of `count` (sha256 computed once per message by the caller). */
export function chunkHeaders(h: ChunkHeader): Record<string, string> {
  return {
    [ChunkHeaders.chunk]: `${h.index}/${h.count}`,
    [ChunkHeaders.bytes]: String(h.bytes),
    [ChunkHeaders.sha256]: h.sha256,
    [ChunkHeaders.of]: h.of,
  };
}

export function sha256Hex(payload: Uint8Array): string {
  return createHash("sha256").update(payload).digest("hex");
}

/**
 * The chunk a message's headers describe, or null when it is a whole message (no Dfs-Chunk).
 * Headers that are there but malformed are a DataError: such a message cannot be joined.
 */
export function parseChunkHeader(get: (name: string) => string | undefined): ChunkHeader | null {
  const chunk = get(ChunkHeaders.chunk);
  if (!chunk) return null;
  const m = /^(\d+)\/(\d+)$/.exec(chunk);
  const bytes = Number(get(ChunkHeaders.bytes));
  const sha256 = get(ChunkHeaders.sha256) ?? "";
  const of = get(ChunkHeaders.of) ?? "";
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (
    !m ||
    !(count >= 1 && index < count) ||
    !Number.isSafeInteger(bytes) ||
    bytes < 0 ||
    bytes > MAX_JOINED_BYTES ||
    !/^[0-9a-f]{64}$/.test(sha256) ||
    of === ""
  )
    throw new DataError(
      ErrorCode.DATA_INVALID,
      `malformed chunk headers: ${ChunkHeaders.chunk}=${chunk} ${ChunkHeaders.bytes}=${get(ChunkHeaders.bytes)} ${ChunkHeaders.of}=${of}`,
    );
  return { index, count, bytes, sha256, of };
}

/** A chunk as the joiner takes it: its header, its stream sequence and its bytes. */
export interface ChunkPiece {
  header: ChunkHeader;
  seq: number;
  data: Uint8Array;
}

/** What adding a chunk did. */
export type JoinResult =
  /** More chunks are needed. */
  | { kind: "partial" }
  /** The message is whole: its bytes, and the stream sequences of its first and last chunks. */
  | { kind: "whole"; data: Buffer; firstSeq: number; lastSeq: number }
  /**
   * Delivery skipped chunks (the sequence does not follow the previous chunk's, or the message's
   * first chunks never came): the partial message is dropped; the caller re-reads from its
   * checkpoint, or, when the stream no longer holds the missing chunks, the message is lost as
   * any message the stream deleted.
   */
  | { kind: "gap"; reason: string }
  /** A redelivered chunk already joined: ignored. */
  | { kind: "duplicate" };

interface Partial {
  of: string;
  count: number;
  bytes: number;
  sha256: string;
  next: number;
  buffer: Buffer;
  written: number;
  hash: Hash;
  firstSeq: number;
  lastSeq: number;
}

/**
 * Joins consecutive chunks into the message they came from. Holds at most one partial message (its
 * final size, allocated at its first chunk). A chunk never becomes part of another message's bytes:
 * each is checked against the partial message's identity, count, index, stream sequence and size,
 * and the whole against its SHA-256, so a missing or foreign chunk is never joined into a
 * truncated value. A stream whose consecutive chunks contradict each other is corrupt (a DataError);
 * a skipped sequence is a gap (re-read).
 */
export class ChunkJoiner {
  private partial: Partial | null = null;

  /** Whether a message is partly joined. */
  get joining(): boolean {
    return this.partial !== null;
  }

  /** Bytes held for the partial message. */
  get heldBytes(): number {
    return this.partial?.buffer.byteLength ?? 0;
  }

  /** Forgets the partial message (reading starts again from a checkpoint). */
  reset(): void {
    this.partial = null;
  }

  /**
   * A whole message came while one was partly joined: the partial one is incomplete. When the
   * whole message follows the last chunk directly, the stream itself is broken (DataError);
   * otherwise delivery skipped (gap).
   */
  interrupted(seq: number): JoinResult {
    const p = this.partial;
    if (!p) return { kind: "partial" };
    this.partial = null;
    if (seq === p.lastSeq + 1)
      throw corrupt(p, `a whole message at seq ${seq} interrupts it after chunk ${p.next - 1}`);
    return { kind: "gap", reason: `chunks after seq ${p.lastSeq} of ${p.of} were not delivered` };
  }

  add(c: ChunkPiece): JoinResult {
    const h = c.header;
    const p = this.partial;
    if (p && c.seq <= p.lastSeq) return { kind: "duplicate" };
    if (p && c.seq !== p.lastSeq + 1) {
      // Delivery skipped: the partial message is dropped, and this chunk is taken as if alone (a
      // first chunk starts the next message; the caller re-reads anyway).
      this.partial = null;
      const alone = this.add(c);
      if (alone.kind === "whole") return alone; // the builder's sequence check sees the skip
      return { kind: "gap", reason: `chunk seq ${c.seq} does not follow seq ${p.lastSeq} of ${p.of}` };
    }
    if (!p) {
      if (h.index !== 0)
        return {
          kind: "gap",
          reason: `chunk ${h.index}/${h.count} of ${h.of} came without its first chunks`,
        };
      this.partial = {
        of: h.of,
        count: h.count,
        bytes: h.bytes,
        sha256: h.sha256,
        next: 0,
        buffer: Buffer.allocUnsafe(h.bytes),
        written: 0,
        hash: createHash("sha256"),
        firstSeq: c.seq,
        lastSeq: c.seq - 1,
      };
      return this.append(this.partial, c);
    }
    if (h.of !== p.of || h.count !== p.count || h.bytes !== p.bytes || h.sha256 !== p.sha256) {
      this.partial = null;
      throw corrupt(p, `seq ${c.seq} is chunk ${h.index}/${h.count} of ${h.of}`);
    }
    if (h.index !== p.next) {
      this.partial = null;
      throw corrupt(p, `seq ${c.seq} is chunk ${h.index}, expected chunk ${p.next}`);
    }
    return this.append(p, c);
  }

  private append(p: Partial, c: ChunkPiece): JoinResult {
    const want = chunkSliceLength(p.bytes, p.count, p.next);
    if (c.data.byteLength !== want) {
      this.partial = null;
      throw corrupt(p, `chunk ${p.next} at seq ${c.seq} holds ${c.data.byteLength} bytes, expected ${want}`);
    }
    p.buffer.set(c.data, p.written);
    p.hash.update(c.data);
    p.written += c.data.byteLength;
    p.next++;
    p.lastSeq = c.seq;
    if (p.next < p.count) return { kind: "partial" };
    this.partial = null;
    const digest = p.hash.digest("hex");
    if (p.written !== p.bytes || digest !== p.sha256)
      throw corrupt(
        p,
        `joined ${p.written} bytes with SHA-256 ${digest}, expected ${p.bytes} bytes ${p.sha256}`,
      );
    return { kind: "whole", data: p.buffer, firstSeq: p.firstSeq, lastSeq: p.lastSeq };
  }
}

function chunkSliceLength(bytes: number, count: number, index: number): number {
  const [start, end] = sliceRange(bytes, index, count);
  return end - start;
}

function corrupt(p: Partial, what: string): DataError {
  return new DataError(
    ErrorCode.DATA_INVALID,
    `chunked message ${p.of} (${p.count} chunks from seq ${p.firstSeq}) is corrupt in the stream: ${what}; it cannot be joined, and re-reading cannot mend it`,
    { details: { of: p.of, firstSeq: p.firstSeq } },
  );
}
