import type { TableRef } from "@dfs/codec";

/**
 * The one identifier quoting of the project: backticks, with a backtick inside doubled. Every
 * database, table and column name that reaches SQL goes through here; values never do (they are
 * parameters, or escaped by sqlLiteral below).
 */
export function quoteId(name: string): string {
  return `\`${name.replace(/`/g, "``")}\``;
}

/** `db`.`table`. */
export function quoteTable(ref: TableRef): string {
  return `${quoteId(ref.db)}.${quoteId(ref.table)}`;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters MySQL string literals escape
const ESCAPED = /[\0\b\t\n\r\x1a"'\\]/g;
/** Each character a SQL string literal escapes, and its escape (SqlBytes writes the same). */
export const ESCAPES: Readonly<Record<string, string>> = {
  "\0": "\\0",
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
  "\x1a": "\\Z",
  '"': '\\"',
  "'": "\\'",
  "\\": "\\\\",
};

/** Whether a string goes into a SQL literal as it is, between quotes (nothing in it is escaped). */
export function isPlainText(v: string): boolean {
  ESCAPED.lastIndex = 0;
  const plain = !ESCAPED.test(v);
  ESCAPED.lastIndex = 0;
  return plain;
}

/** A string's characters escaped as in a SQL string literal (without the quotes). */
export function escapedText(v: string): string {
  return isPlainText(v) ? v : v.replace(ESCAPED, (c) => ESCAPES[c]!);
}

/**
 * The one escaping of values into SQL text, for statements built in bulk (the DPU's multi-row
 * statements): the same text mysql2 makes of a `?` parameter (sessions never set
 * NO_BACKSLASH_ESCAPES), without scanning a statement for placeholders afterwards. NULL, numbers
 * and BigInts as they are, strings quoted with backslash escapes, bytes as X'hex'.
 */
export function sqlLiteral(v: unknown): string {
  switch (typeof v) {
    case "string":
      return `'${escapedText(v)}'`;
    case "number":
      return String(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "undefined":
      return "NULL";
  }
  if (v === null) return "NULL";
  if (v instanceof Uint8Array)
    return `X'${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")}'`;
  throw new TypeError(`sqlLiteral: a ${Object.prototype.toString.call(v)} is not a column value`);
}
