import { writeUtf8 } from "@dfs/codec";
import { ESCAPES, escapedText, sqlLiteral } from "./quote.js";

/**
 * SQL text written straight into UTF-8 bytes, for the statements the DPU builds in bulk: a
 * multi-row INSERT of a thousand rows is one run of bytes, not a string per value, per row and per
 * statement that are joined, joined again and finally encoded by the driver (which was most of the
 * DPU's garbage). Values are escaped exactly as sqlLiteral escapes them (the unit test compares the
 * two on random values); the bytes go to the server as they are (MysqlSession.queryBytes).
 *
 * Statements are written one after another into chunks of 1 MiB; each is a view of its chunk, and a
 * chunk is freed once no statement viewing it is held. A statement that does not fit the rest of a
 * chunk moves to a new one, large enough for it.
 */
const CHUNK_BYTES = 1024 * 1024;

/** The letter after the backslash for each ASCII character a SQL string literal escapes (0: none). */
const ESCAPE = new Uint8Array(128);
for (const [c, escaped] of Object.entries(ESCAPES)) ESCAPE[c.charCodeAt(0)] = escaped.charCodeAt(1);

const HEX = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const h = b.toString(16).padStart(2, "0");
  HEX[2 * b] = h.charCodeAt(0);
  HEX[2 * b + 1] = h.charCodeAt(1);
}

const QUOTE = 0x27;
const BACKSLASH = 0x5c;

export class SqlBytes {
  private buf: Buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  /** Where the statement being written starts. */
  private start = 0;
  private pos = 0;

  /** Starts a statement (dropping anything written since the last end()). */
  begin(): this {
    this.pos = this.start;
    return this;
  }

  /** The statement written since begin(): a view of its chunk, valid for as long as it is held. */
  end(): Buffer {
    const out = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    // A chunk grown for one large statement is left to it: the next starts in a chunk of the usual size.
    if (this.buf.length > CHUNK_BYTES) {
      this.buf = Buffer.allocUnsafeSlow(CHUNK_BYTES);
      this.start = this.pos = 0;
    }
    return out;
  }

  /** SQL text as it is (keywords, quoted identifiers, punctuation). */
  raw(s: string): this {
    this.room(s.length * 3);
    this.pos += writeUtf8(this.buf, s, this.pos);
    return this;
  }

  /** One ASCII character, by its code. */
  char(code: number): this {
    this.room(1);
    this.buf[this.pos++] = code;
    return this;
  }

  /** A value as sqlLiteral(v) writes it. */
  literal(v: unknown): this {
    switch (typeof v) {
      case "string":
        return this.text(v);
      case "number":
        return Number.isSafeInteger(v) ? this.integer(v) : this.raw(String(v));
      case "bigint":
        return this.raw(v.toString());
      case "boolean":
      case "undefined":
        return this.raw(sqlLiteral(v));
    }
    if (v === null) return this.raw("NULL");
    if (v instanceof Uint8Array) return this.hex(v);
    return this.raw(sqlLiteral(v)); // throws, naming what it is
  }

  private text(v: string): this {
    const n = v.length;
    // Each character is at most 2 bytes escaped (ASCII) or 3 (other UTF-16 units): 6 covers both
    // and the escaped rest of the slow path below.
    this.room(6 * n + 2);
    const buf = this.buf;
    let pos = this.pos;
    buf[pos++] = QUOTE;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) break;
      const e = ESCAPE[c]!;
      if (e === 0) buf[pos++] = c;
      else {
        buf[pos++] = BACKSLASH;
        buf[pos++] = e;
      }
    }
    // Not ASCII from i on (a surrogate pair starts there whole): the rest escaped, then encoded.
    if (i < n) pos += writeUtf8(buf, escapedText(v.slice(i)), pos);
    buf[pos++] = QUOTE;
    this.pos = pos;
    return this;
  }

  private integer(v: number): this {
    this.room(17);
    const buf = this.buf;
    let x = v;
    if (x < 0) {
      buf[this.pos++] = 0x2d;
      x = -x;
    }
    let len = 1;
    for (let t = x; t >= 10; t = Math.floor(t / 10)) len++;
    let p = this.pos + len;
    for (let k = 0; k < len; k++) {
      const q = Math.floor(x / 10);
      buf[--p] = 0x30 + (x - q * 10);
      x = q;
    }
    this.pos += len;
    return this;
  }

  private hex(v: Uint8Array): this {
    this.room(2 * v.byteLength + 3);
    const buf = this.buf;
    let pos = this.pos;
    buf[pos++] = 0x58; // X
    buf[pos++] = QUOTE;
    for (let i = 0; i < v.byteLength; i++) {
      const b = v[i]!;
      buf[pos++] = HEX[2 * b]!;
      buf[pos++] = HEX[2 * b + 1]!;
    }
    buf[pos++] = QUOTE;
    this.pos = pos;
    return this;
  }

  /** Room for `n` more bytes: the statement being written moves to a new chunk if needed. */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const used = this.pos - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, 2 * (used + n)));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = used;
  }
}
