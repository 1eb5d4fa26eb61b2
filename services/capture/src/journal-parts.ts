import { chunkCount, sliceRange } from "@dfs/codec";
import { DataError, ErrorCode } from "@dfs/common";

/**
 * A journal entry's payload larger than this is stored as parts: rows of the `entry_parts` table,
 * each one slice of its bytes, cut as chunks are cut (`sliceRange`: ceil(bytes / parts) each, the
 * last shorter). better-sqlite3 limits a row (SQLITE_LIMIT_LENGTH) to the smaller of V8's longest
 * string and Buffer, 2^29 - 24 bytes on 64-bit Node, and SQLite's own compiled maximum is 10^9
 * bytes: a 1 GiB row's message does not fit in one SQLite row, and parts remove that bound. Parts
 * also let the publisher read back a large entry (after a restart) a part at a time instead of
 * allocating it whole.
 */
export const PART_BYTES = 16 * 1024 * 1024;

/** Parts of a payload of `bytes` (0 = stored whole in the entry's row). */
export function partCount(bytes: number): number {
  return bytes > PART_BYTES ? chunkCount(bytes, PART_BYTES) : 0;
}

/** Part `index` of a payload stored in `parts` parts: a view, not a copy. */
export function partOf(payload: Uint8Array, index: number, parts: number): Uint8Array {
  const [start, end] = sliceRange(payload.byteLength, index, parts);
  return payload.subarray(start, end);
}

/**
 * The payload of an entry read back from the journal whose bytes are stored in parts: it is never
 * read whole. `slice` reads the parts a range needs, one at a time, and keeps the last one read,
 * so that reading the payload front to back (the publisher's chunks) reads each part once and
 * holds one part (plus the views the caller keeps).
 */
export class StoredPayload {
  private last: { index: number; data: Buffer } | null = null;
  /** Parts read from the journal so far (each once, when read front to back). */
  partsRead = 0;

  constructor(
    /** Bytes of the whole payload. */
    readonly byteLength: number,
    /** SHA-256 of the whole payload (hex), written with it. */
    readonly sha256: string,
    readonly parts: number,
    /** Reads part `index` (undefined when it is not there). */
    private readonly readPart: (index: number) => Buffer | undefined,
    /** What the entry is, for errors ("scn 12 (db.t)"). */
    private readonly what: string,
  ) {}

  /** Bytes [start, end): a view into one part, or a copy when the range spans parts. */
  slice(start: number, end: number): Uint8Array {
    if (!(start >= 0 && start <= end && end <= this.byteLength))
      throw new RangeError(`bytes ${start}..${end} are outside the ${this.byteLength} bytes of ${this.what}`);
    if (start === end) return Buffer.alloc(0);
    const size = Math.ceil(this.byteLength / this.parts);
    const first = Math.floor(start / size);
    const last = Math.floor((end - 1) / size);
    if (first === last) {
      const at = first * size;
      return this.part(first).subarray(start - at, end - at);
    }
    const out = Buffer.allocUnsafe(end - start);
    for (let i = first; i <= last; i++) {
      const at = i * size;
      const from = Math.max(start, at);
      const to = Math.min(end, at + size);
      out.set(this.part(i).subarray(from - at, to - at), from - start);
    }
    return out;
  }

  /** The whole payload (for one that is sent whole: no larger than a message). */
  whole(): Uint8Array {
    return this.slice(0, this.byteLength);
  }

  private part(index: number): Buffer {
    if (this.last?.index === index) return this.last.data;
    const data = this.readPart(index);
    this.partsRead++;
    const [start, end] = sliceRange(this.byteLength, index, this.parts);
    if (data?.byteLength !== end - start)
      throw new DataError(
        ErrorCode.DATA_INVALID,
        `the journal is corrupt: part ${index} of ${this.parts} of ${this.what} ${data ? `holds ${data.byteLength} bytes, expected ${end - start}` : "is missing"}`,
      );
    this.last = { index, data };
    return data;
  }
}
