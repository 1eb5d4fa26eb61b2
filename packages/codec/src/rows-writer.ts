import { ChangeBatch } from "@dfs/proto";
import { writeUtf8 } from "./utf8.js";
import { ValueKind } from "./values.js";

/**
 * Writes RowChange messages (field 15 of ChangeBatch) straight from decoded row objects, with no
 * intermediate Value objects: the capture hot path. The bytes are exactly what the proto schema
 * says (golden-tested against the ts-proto encoder), so any protobuf reader decodes them.
 *
 * Wire format reminders: tag = field << 3 | wiretype (0 varint, 1 fixed64, 2 length-delimited,
 * 5 fixed32). sint64 is zigzag-encoded.
 */
const TAG_BATCH_ROWS = (15 << 3) | 2;
const TAG_ROW_OP = (1 << 3) | 0;
const TAG_ROW_INDEX = (2 << 3) | 0;
const TAG_ROW_BEFORE = (3 << 3) | 2;
const TAG_ROW_AFTER = (4 << 3) | 2;
const TAG_ROW_SOURCE_TXN = (5 << 3) | 0;
const TAG_NULL = (1 << 3) | 0;
const TAG_INT = (2 << 3) | 0;
const TAG_UINT = (3 << 3) | 0;
const TAG_F64 = (4 << 3) | 1;
const TAG_F32 = (5 << 3) | 5;
const TAG_DECIMAL = (6 << 3) | 2;
const TAG_TEXT = (7 << 3) | 2;
const TAG_BYTES = (8 << 3) | 2;
const TAG_TEMPORAL = (9 << 3) | 2;
const TAG_JSON = (10 << 3) | 2;

const TWO_32 = 4294967296;
const U64_MASK = (1n << 64n) - 1n;

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 5;
  for (let v = Math.floor(n / 0x800000000); v > 0; v = Math.floor(v / 128)) size++;
  return size;
}

export class RowsWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes written so far (the encoded size of the rows). */
  get length(): number {
    return this.pos;
  }

  /** Bytes the writer holds (its buffer grows to the largest batch written). */
  get capacity(): number {
    return this.buf.length;
  }

  /** The rows written so far, as the repeated field 15 of a ChangeBatch (a copy). */
  finish(): Buffer {
    return Buffer.from(this.view());
  }

  /** The rows written so far, without copying: valid until the next write or reset. */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
  }

  /**
   * Appends one RowChange. `before`/`after` are row objects keyed by `keys` (null when that image
   * is absent); `kinds[i]` says how keys[i]'s value is carried; `sourceTxn` indexes the batch's
   * source_txns.
   */
  writeRow(
    op: number,
    rowIndex: number,
    kinds: readonly ValueKind[],
    keys: readonly string[],
    before: Record<string, unknown> | null,
    after: Record<string, unknown> | null,
    sourceTxn = 0,
  ): void {
    const bodyMax =
      18 +
      (before ? this.imageMax(kinds, keys, before) : 0) +
      (after ? this.imageMax(kinds, keys, after) : 0);
    this.ensure(bodyMax + 11);
    this.byte(TAG_BATCH_ROWS);
    const lenAt = this.reserve(bodyMax);
    const start = this.pos;
    if (op !== 0) {
      this.byte(TAG_ROW_OP);
      this.varint(op);
    }
    if (rowIndex !== 0) {
      this.byte(TAG_ROW_INDEX);
      this.varint(rowIndex);
    }
    if (before) this.image(TAG_ROW_BEFORE, kinds, keys, before);
    if (after) this.image(TAG_ROW_AFTER, kinds, keys, after);
    if (sourceTxn !== 0) {
      this.byte(TAG_ROW_SOURCE_TXN);
      this.varint(sourceTxn);
    }
    this.fill(lenAt, bodyMax, this.pos - start);
  }

  /** An upper bound of an image's encoded size, so lengths can be reserved before writing. */
  private imageMax(
    kinds: readonly ValueKind[],
    keys: readonly string[],
    row: Record<string, unknown>,
  ): number {
    let n = 0;
    for (let i = 0; i < keys.length; i++) {
      const v = row[keys[i]!];
      // field tag + Value length (<= 5 bytes) + Value tag + payload
      if (typeof v === "string") n += 12 + v.length * 3;
      else if (v instanceof Uint8Array) n += 12 + v.byteLength;
      else if (v !== null && v !== undefined && kinds[i] === ValueKind.Json)
        n += 12 + JSON.stringify(v).length * 3;
      // A number or bigint: 17 in binary, up to 24 as text (a Text, DECIMAL or temporal column).
      else n += 32;
    }
    return n;
  }

  private image(
    tag: number,
    kinds: readonly ValueKind[],
    keys: readonly string[],
    row: Record<string, unknown>,
  ): void {
    for (let i = 0; i < keys.length; i++) {
      this.byte(tag);
      this.value(kinds[i]!, row[keys[i]!]);
    }
  }

  /** Writes one Value as a length-delimited message (its length prefix included). */
  private value(kind: ValueKind, v: unknown): void {
    if (v === null || v === undefined) {
      this.byte(2);
      this.byte(TAG_NULL);
      this.byte(1);
      return;
    }
    switch (kind) {
      case ValueKind.Int:
        this.intValue(v);
        return;
      case ValueKind.Uint:
        this.uintValue(v);
        return;
      case ValueKind.Float64: {
        this.byte(9);
        this.byte(TAG_F64);
        this.buf.writeDoubleLE(Number(v), this.pos);
        this.pos += 8;
        return;
      }
      case ValueKind.Float32: {
        this.byte(5);
        this.byte(TAG_F32);
        this.buf.writeFloatLE(Number(v), this.pos);
        this.pos += 4;
        return;
      }
      case ValueKind.Decimal:
        this.stringValue(TAG_DECIMAL, String(v));
        return;
      case ValueKind.Temporal:
        this.stringValue(TAG_TEMPORAL, String(v));
        return;
      case ValueKind.Json:
        this.stringValue(TAG_JSON, typeof v === "string" ? v : JSON.stringify(v));
        return;
      case ValueKind.Text:
        if (v instanceof Uint8Array) {
          this.bytesValue(v);
          return;
        }
        this.stringValue(TAG_TEXT, typeof v === "string" ? v : String(v));
        return;
      case ValueKind.Bytes:
        if (v instanceof Uint8Array) {
          this.bytesValue(v);
          return;
        }
        this.bytesValue(Buffer.from(String(v), "utf8"));
        return;
    }
  }

  private intValue(v: unknown): void {
    // Zigzag doubles the magnitude: only |v| < 2^52 stays an exact double; larger goes via BigInt.
    if (typeof v === "number" && Number.isInteger(v) && v > -4503599627370496 && v < 4503599627370496) {
      const zz = v >= 0 ? v * 2 : -v * 2 - 1;
      this.byte(1 + varintSize(zz));
      this.byte(TAG_INT);
      this.varint(zz);
      return;
    }
    const b = BigInt(v as string | bigint);
    const zz = ((b << 1n) ^ (b >> 63n)) & U64_MASK;
    this.bigValue(TAG_INT, zz);
  }

  private uintValue(v: unknown): void {
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) {
      this.byte(1 + varintSize(v));
      this.byte(TAG_UINT);
      this.varint(v);
      return;
    }
    this.bigValue(TAG_UINT, BigInt(v as string | bigint) & U64_MASK);
  }

  private bigValue(tag: number, u: bigint): void {
    const bytes: number[] = [];
    let x = u;
    while (x >= 0x80n) {
      bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    bytes.push(Number(x));
    this.byte(1 + bytes.length);
    this.byte(tag);
    for (const b of bytes) this.byte(b);
  }

  private stringValue(tag: number, s: string): void {
    if (s.length < 42) {
      // At most 126 UTF-8 bytes: both length prefixes fit in one byte. [valueLen][tag][strLen][utf8]
      const at = this.pos;
      const written = writeUtf8(this.buf, s, at + 3);
      this.buf[at] = written + 2;
      this.buf[at + 1] = tag;
      this.buf[at + 2] = written;
      this.pos = at + 3 + written;
      return;
    }
    const n = Buffer.byteLength(s, "utf8");
    this.varint(1 + varintSize(n) + n);
    this.byte(tag);
    this.varint(n);
    this.pos += writeUtf8(this.buf, s, this.pos);
  }

  private bytesValue(b: Uint8Array): void {
    const n = b.byteLength;
    this.varint(1 + varintSize(n) + n);
    this.byte(TAG_BYTES);
    this.varint(n);
    this.buf.set(b, this.pos);
    this.pos += n;
  }

  private byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  private varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = n >= TWO_32 ? Math.floor(n / 128) : n >>> 7;
    }
    this.buf[this.pos++] = n;
  }

  /** Reserves room for a varint length that will be at most `max`. */
  private reserve(max: number): number {
    const at = this.pos;
    this.pos += varintSize(max);
    return at;
  }

  /**
   * Writes the real length into a reserved slot. When it needs fewer bytes than reserved, the
   * body moves left so that the encoding stays canonical (byte-identical to other encoders).
   */
  private fill(at: number, max: number, len: number): void {
    const reserved = varintSize(max);
    const needed = varintSize(len);
    if (needed < reserved) {
      const bodyStart = at + reserved;
      this.buf.copyWithin(at + needed, bodyStart, bodyStart + len);
      this.pos -= reserved - needed;
    }
    const end = this.pos;
    this.pos = at;
    this.varint(len);
    this.pos = end;
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** A ChangeBatch: the header fields encoded by ts-proto, followed by the rows from a RowsWriter. */
export function encodeBatchWithRows(header: Omit<ChangeBatch, "rows">, rows: Uint8Array): Uint8Array {
  const head = ChangeBatch.encode({ ...header, rows: [] }).finish();
  const out = Buffer.allocUnsafe(head.byteLength + rows.byteLength);
  out.set(head, 0);
  out.set(rows, head.byteLength);
  return out;
}
