import { type DecodedChange, formatTableRef, type OpCode, type TableRef, tableKey } from "@dfs/codec";
import { keyText } from "./keys.js";
import type { ArchiveEntry, ArchiveReader } from "./reader.js";

/** A change, after a range, to a row the range changed too. */
export interface LaterChange {
  /** db.table */
  table: string;
  /** The row: its key as the archive stores it (`["42"]`); for a table without a key, its whole image. */
  row: string;
  op: OpCode;
  /** Where its source transaction started, and when it committed (seconds since the epoch). */
  position: string;
  commitTime: number;
}

/** The rows a change touched: its old and new key, or, without a primary key, its whole images. */
function rowsOf(c: DecodedChange): string[] {
  const pk = c.batch.primaryKey;
  const columns = pk.length > 0 ? pk : c.batch.columns.map((col) => col.name);
  const out: string[] = [];
  for (const image of [c.before, c.after]) {
    const k = keyText(columns, image);
    if (k !== null && !out.includes(k)) out.push(k);
  }
  return out;
}

/**
 * The archive's changes after a range (after its last transaction, in stream order) to rows the
 * range changed: undoing the range would then overwrite them (an UPDATE back to the range's before
 * image), find nothing (the row deleted since), or fail (an INSERT undoing a delete, of a key that
 * exists again). Tables with a primary key compare keys; tables without one, whole images. One
 * entry per row: its first later change. Empty when the range is the archive's tail.
 */
export function laterChanges(reader: ArchiveReader, range: readonly ArchiveEntry[]): LaterChange[] {
  const last = range[range.length - 1];
  if (!last) return [];
  const tables = new Map<string, TableRef>();
  const rows = new Set<string>();
  for (const e of range) {
    if (e.kind !== "change") continue;
    const t = tableKey(e.change.ref);
    tables.set(t, e.change.ref);
    for (const r of rowsOf(e.change)) rows.add(`${t}\u0000${r}`);
  }
  const found = new Map<string, LaterChange>();
  if (rows.size === 0) return [];
  const after = { archiveFile: last.txn.archiveFile, id: last.txn.id };
  for (const e of reader.entries({ tables: [...tables.values()], after })) {
    if (e.kind !== "change") continue;
    const t = tableKey(e.change.ref);
    for (const r of rowsOf(e.change)) {
      const k = `${t}\u0000${r}`;
      if (!rows.has(k) || found.has(k)) continue;
      found.set(k, {
        table: formatTableRef(e.change.ref),
        row: r,
        op: e.change.op,
        position: e.txn.position.toString(),
        commitTime: e.txn.commitTime,
      });
    }
  }
  return [...found.values()];
}
