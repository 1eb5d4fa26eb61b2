/**
 * Strings into byte buffers on the hot paths (capture's encoder, the DPU's SQL text). Most values
 * are short and ASCII: copying their characters in a loop costs less than a call into Buffer's
 * native encoder (whose `write` wrapper also validates its arguments every time); anything else
 * goes through the native UTF-8 encoder, as Buffer.from(s) would (a lone surrogate becomes U+FFFD).
 */

type FastWrite = (s: string, offset: number, length: number) => number;

/** Node's own UTF-8 writer on Buffer.prototype (what Buffer#write calls after its checks). */
const nativeUtf8Write: FastWrite | undefined = (Buffer.prototype as unknown as { utf8Write?: FastWrite })
  .utf8Write;

/**
 * Writes `s` as UTF-8 at `at` of `buf`, which must have room for `s.length * 3` bytes from `at`;
 * returns the bytes written.
 */
export function writeUtf8(buf: Buffer, s: string, at: number): number {
  const n = s.length;
  if (n <= 64) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + i] = c;
    }
    if (i === n) return n;
    // Not ASCII: the native encoder writes it all (what the loop wrote is written again).
  }
  return nativeUtf8Write ? nativeUtf8Write.call(buf, s, at, buf.length - at) : buf.write(s, at, "utf8");
}

type FastSlice = (start: number, end: number) => string;

/** Node's own UTF-8 decoder on Buffer.prototype (what Buffer#toString calls after its checks). */
const nativeUtf8Slice: FastSlice | undefined = (Buffer.prototype as unknown as { utf8Slice?: FastSlice })
  .utf8Slice;

/** The UTF-8 text of bytes [start, end) of `buf` (in range), as buf.toString("utf8", start, end). */
export function readUtf8(buf: Buffer, start: number, end: number): string {
  return nativeUtf8Slice ? nativeUtf8Slice.call(buf, start, end) : buf.toString("utf8", start, end);
}
