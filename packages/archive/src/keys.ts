import type { Row, SqlValue } from "@dfs/codec";

/** A key value as text: numbers and BigInts in decimal, bytes as 0x + hex, text as it is. */
function keyPart(v: SqlValue | undefined): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  return `0x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")}`;
}

/**
 * A row's key as the archive stores and looks it up: a JSON array of its key columns' values as
 * text (`["42"]`, `["eu","7"]`). null for a table without a primary key.
 */
export function keyText(columns: readonly string[], row: Row | null): string | null {
  if (columns.length === 0 || !row) return null;
  return JSON.stringify(columns.map((c) => keyPart(row[c])));
}

/**
 * The key a user typed (`--key 42`, `--key eu,7`, or a JSON array `--key '["a,b",7]'`) in the
 * stored form.
 */
export function parseKeyArg(text: string): string {
  const t = text.trim();
  if (t.startsWith("[")) {
    const parsed = JSON.parse(t) as unknown[];
    return JSON.stringify(parsed.map((v) => (v === null ? null : String(v))));
  }
  return JSON.stringify(t.split(","));
}
