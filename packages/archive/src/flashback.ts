import { type DecodedChange, formatTableRef, type Row } from "@dfs/codec";
import { quoteId, quoteTable, sqlLiteral } from "@dfs/mysql";
import type { ArchiveEntry, TxnInfo } from "./reader.js";

/** The undo of a range: statements newest first, and the DDL it cannot undo. */
export interface Flashback {
  /** Statements (no trailing semicolon), each undoing one row change, newest change first. */
  statements: { sql: string; txn: TxnInfo }[];
  /** DDL inside the range: not undone (a schema change has no exact inverse); reported. */
  ddl: Extract<ArchiveEntry, { kind: "ddl" }>[];
  changes: number;
  transactions: number;
}

/** Session settings the statements assume: TIMESTAMP values are UTC text, strings utf8mb4. */
export const FLASHBACK_SESSION = ["SET NAMES utf8mb4", "SET time_zone = '+00:00'"] as const;

/**
 * The inverse of each change, newest first: an insert becomes a DELETE by its key (by its whole
 * image, LIMIT 1, for a table without a primary key), a delete an INSERT of its before image, an
 * update an UPDATE back to its before image (found by the after image's key). Values are rendered
 * by `sqlLiteral` from the exact archived values (BIGINT UNSIGNED, DECIMAL text, bytes as X'..',
 * temporals as text in UTC, JSON text), identifiers by `quoteId`. `writable`, when given, names
 * the columns a table may be written (generated columns left out).
 */
export function flashback(
  entries: readonly ArchiveEntry[],
  writable?: (change: DecodedChange) => ReadonlySet<string> | null,
): Flashback {
  const statements: Flashback["statements"] = [];
  const ddl: Flashback["ddl"] = [];
  const txns = new Set<string>();
  let changes = 0;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    txns.add(`${e.txn.archiveFile}:${e.txn.id}`);
    if (e.kind === "ddl") {
      ddl.push(e);
      continue;
    }
    changes++;
    statements.push({ sql: inverseOf(e.change, writable?.(e.change) ?? null), txn: e.txn });
  }
  return { statements, ddl, changes, transactions: txns.size - ddl.length };
}

/** The statement that undoes one change. */
export function inverseOf(c: DecodedChange, writable: ReadonlySet<string> | null = null): string {
  const table = quoteTable(c.ref);
  const all = c.batch.columns.map((col) => col.name);
  const columns = writable ? all.filter((n) => writable.has(n)) : all;
  const key = c.batch.primaryKey;
  switch (c.op) {
    case "c":
    case "r":
      return `DELETE FROM ${table} WHERE ${match(key, columns, need(c, c.after))} LIMIT 1`;
    case "d": {
      const before = need(c, c.before);
      return `INSERT INTO ${table} (${columns.map(quoteId).join(", ")}) VALUES (${columns.map((n) => sqlLiteral(before[n])).join(", ")})`;
    }
    case "u": {
      const before = need(c, c.before);
      const set = columns.map((n) => `${quoteId(n)} = ${sqlLiteral(before[n])}`).join(", ");
      return `UPDATE ${table} SET ${set} WHERE ${match(key, columns, need(c, c.after))} LIMIT 1`;
    }
  }
}

/** The row's key columns equal to its values; without a key, every column null-safe equal. */
function match(key: readonly string[], columns: readonly string[], row: Row): string {
  if (key.length > 0) return key.map((k) => `${quoteId(k)} = ${sqlLiteral(row[k])}`).join(" AND ");
  return columns.map((n) => `${quoteId(n)} <=> ${sqlLiteral(row[n])}`).join(" AND ");
}

function need(c: DecodedChange, row: Row | null): Row {
  if (!row)
    throw new Error(`change ${c.rowIndex} of ${formatTableRef(c.ref)} (${c.op}) has no image to undo`);
  return row;
}

/** A transaction's comment line in printed SQL. */
export function txnComment(t: TxnInfo): string {
  const when = new Date(t.commitTime * 1000).toISOString();
  return `-- undo of the transaction at ${t.position.toString() || "?"}${t.gtid ? ` (GTID ${t.gtid})` : ""}, committed ${when}`;
}
