import { ConfigError, DataError, ErrorCode } from "@dfs/common";

/**
 * Subject and stream naming, the contract between capture and every consumer.
 *
 *   data       dfs.<source>.<db>.<table>        stream DFS_<SOURCE>
 *   DDL        dfs.<source>._ddl                stream DFS_<SOURCE>
 *   heartbeat  dfs.<source>._heartbeat          stream DFS_<SOURCE>
 *   dead mail  dfs.<source>._dlq.<db>.<table>   stream DFS_<SOURCE>_DLQ
 *   its chunks dfs.<source>._dlq.<db>.<table>.<letter>   (a dead letter larger than a message)
 *
 * db and table are MySQL identifiers, which may hold '.', '*', '>', spaces and more; each is encoded
 * with `encodeToken` so it is exactly one valid subject token. The source id is used as is, so it is
 * restricted to characters valid in both subjects and stream names.
 */

/** Source ids: letters, digits, '_' and '-' (the stream name upper-cases it and maps '-' to '_'). */
const SOURCE_RE = /^[A-Za-z0-9_-]+$/;

/** Throws ConfigError unless `source` can name subjects and a stream without clashing. */
export function checkSourceId(source: string): void {
  if (!SOURCE_RE.test(source)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `source id "${source}" may only contain letters, digits, '_' and '-'`,
    ]);
  }
  // DFS_<X>_DLQ is the dead-letter stream of source X, so a source named "x_dlq" would share it.
  if (/[-_]dlq$/i.test(source)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `source id "${source}" must not end in "_dlq" or "-dlq" (its stream would be another source's dead-letter stream)`,
    ]);
  }
}

function checkIdentifier(what: string, name: string): void {
  // An empty token would make an invalid subject; MySQL has no empty identifiers, so this is bad data.
  if (name === "") throw new DataError(ErrorCode.DATA_INVALID, `empty ${what} name cannot name a subject`);
}

export const subjects = {
  data(source: string, db: string, table: string): string {
    checkSourceId(source);
    checkIdentifier("database", db);
    checkIdentifier("table", table);
    return `dfs.${source}.${encodeToken(db)}.${encodeToken(table)}`;
  },
  ddl(source: string): string {
    checkSourceId(source);
    return `dfs.${source}._ddl`;
  },
  heartbeat(source: string): string {
    checkSourceId(source);
    return `dfs.${source}._heartbeat`;
  },
  dlq(source: string, db: string, table: string): string {
    checkSourceId(source);
    checkIdentifier("database", db);
    checkIdentifier("table", table);
    return `dfs.${source}._dlq.${encodeToken(db)}.${encodeToken(table)}`;
  },
  /**
   * The chunks of dead letter `letterId` (its message id) when it is larger than a message: a
   * subject of its own, one token longer than the dead letters', so listing them (`dlq.*.*`)
   * never reads a chunk, and the letter's chunks are read and purged by this subject.
   */
  dlqChunks(source: string, db: string, table: string, letterId: string): string {
    return `${subjects.dlq(source, db, table)}.${encodeToken(letterId)}`;
  },
  streamName(source: string): string {
    checkSourceId(source);
    return `DFS_${source.toUpperCase().replaceAll("-", "_")}`;
  },
  dlqStreamName(source: string): string {
    return `${subjects.streamName(source)}_DLQ`;
  },
  /** The parts of a data subject, or null for anything else (DDL, heartbeat, DLQ, foreign subjects). */
  parseData(subject: string): { source: string; db: string; table: string } | null {
    const parts = subject.split(".");
    if (parts.length !== 4 || parts[0] !== "dfs") return null;
    const [, source, db, table] = parts as [string, string, string, string];
    if (!SOURCE_RE.test(source) || db === "" || table === "") return null;
    try {
      return { source, db: decodeToken(db), table: decodeToken(table) };
    } catch {
      return null;
    }
  },
};

/** The main stream's subjects. 4-token data subjects cannot match the 5-token DLQ subjects. */
export function mainStreamSubjects(source: string): string[] {
  return [`dfs.${source}.*.*`, subjects.ddl(source), subjects.heartbeat(source)];
}

/** The dead letters (5 tokens) and the chunks of large ones (6 tokens). */
export function dlqStreamSubjects(source: string): string[] {
  checkSourceId(source);
  return [`dfs.${source}._dlq.*.*`, `dfs.${source}._dlq.*.*.*`];
}

// ---- token encoding -------------------------------------------------------------------------------

const HEX = "0123456789ABCDEF";
const LETTER = /^\p{L}$/u;

/** Kept as is: ASCII [A-Za-z0-9_$-] and non-ASCII letters; everything else is percent-encoded. */
function keeps(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  if (c < 0x80) {
    return (
      (c >= 0x30 && c <= 0x39) || // 0-9
      (c >= 0x41 && c <= 0x5a) || // A-Z
      (c >= 0x61 && c <= 0x7a) || // a-z
      c === 0x5f || // _
      c === 0x24 || // $
      c === 0x2d // -
    );
  }
  return LETTER.test(ch);
}

/**
 * UTF-8 bytes of one code point. Lone surrogates (possible in a JS string, never in MySQL names) are
 * encoded like any other BMP code point (WTF-8) so that every string round-trips, not only valid ones.
 */
function utf8(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

/** Makes `s` one valid subject token: no '.', '*', '>', whitespace or control characters remain. */
export function encodeToken(s: string): string {
  let out = "";
  for (const ch of s) {
    if (keeps(ch)) {
      out += ch;
    } else {
      for (const b of utf8(ch.codePointAt(0)!)) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
    }
  }
  return out;
}

/** Value of an upper-case hex digit, -1 for anything else (including the end of the string). */
function hexDigit(ch: string | undefined): number {
  return ch === undefined || ch === "" ? -1 : HEX.indexOf(ch);
}

function hexByte(s: string, i: number): number {
  const hi = s[i] === "%" ? hexDigit(s[i + 1]) : -1;
  const lo = hi < 0 ? -1 : hexDigit(s[i + 2]);
  if (lo < 0) throw new Error(`bad escape at offset ${i} in subject token "${s}"`);
  return hi * 16 + lo;
}

/**
 * Inverse of `encodeToken`. Strict: it accepts only what `encodeToken` produces (upper-case hex, no
 * escaped characters that would have been kept, no overlong UTF-8), so every name has exactly one
 * subject and two different subjects never decode to the same table. Throws on anything else.
 */
export function decodeToken(s: string): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    if (s[i] !== "%") {
      const ch = String.fromCodePoint(s.codePointAt(i)!);
      if (!keeps(ch)) throw new Error(`unescaped character at offset ${i} in subject token "${s}"`);
      out += ch;
      i += ch.length;
      continue;
    }
    const start = i;
    const lead = hexByte(s, i);
    i += 3;
    const [len, min] =
      lead < 0x80
        ? [1, 0]
        : lead >= 0xc2 && lead < 0xe0
          ? [2, 0x80]
          : lead >= 0xe0 && lead < 0xf0
            ? [3, 0x800]
            : lead >= 0xf0 && lead < 0xf5
              ? [4, 0x10000]
              : [0, 0];
    if (len === 0) throw new Error(`invalid UTF-8 lead byte at offset ${start} in subject token "${s}"`);
    let cp = len === 1 ? lead : lead & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      const b = hexByte(s, i);
      if ((b & 0xc0) !== 0x80) throw new Error(`invalid UTF-8 at offset ${i} in subject token "${s}"`);
      cp = (cp << 6) | (b & 0x3f);
      i += 3;
    }
    if (cp < min || cp > 0x10ffff)
      throw new Error(`overlong UTF-8 at offset ${start} in subject token "${s}"`);
    const ch = String.fromCodePoint(cp);
    // A high and a low surrogate escaped one by one would form a pair the encoder writes as 4 bytes.
    const prev = out.charCodeAt(out.length - 1);
    const pairs = cp >= 0xdc00 && cp <= 0xdfff && prev >= 0xd800 && prev <= 0xdbff;
    if (keeps(ch) || pairs) throw new Error(`needless escape at offset ${start} in subject token "${s}"`);
    out += ch;
  }
  return out;
}
