import type { SqlValue } from "@dfs/codec";
import { quoteId, quoteTable } from "@dfs/mysql";
import type { Change, TargetTable } from "./sink.js";

/** A parameterised statement and the changes it carries (for dead-lettering). */
export interface Statement {
  sql: string;
  params: unknown[];
  changes: Change[];
}

type Kind = "upsert" | "delete" | "insert" | "delete-image";

interface Run {
  kind: Kind;
  table: TargetTable;
  columns: string[];
  rows: Record<string, SqlValue>[];
  changes: Change[];
}

/** Columns of an image that the target has, in image order. */
function writable(image: Record<string, SqlValue>, t: TargetTable): string[] {
  return Object.keys(image).filter((c) => t.columns.has(c));
}

function sameKey(t: TargetTable, a: Record<string, SqlValue>, b: Record<string, SqlValue>): boolean {
  return t.key.every((k) => {
    const x = a[k];
    const y = b[k];
    if (x instanceof Uint8Array && y instanceof Uint8Array) return Buffer.compare(x, y) === 0;
    return x === y;
  });
}

/**
 * Turns row changes, in stream order, into statements that have the same effect, in the same
 * order. Consecutive changes of one table and one kind share a multi-row statement; the server
 * applies its rows in order, so no unique key ever sees a state the source did not have.
 *  - keyed table: insert/read -> upsert of the after image; update -> upsert of the after image,
 *    or delete + upsert when the key changed; delete -> delete by key.
 *  - table without a primary or unique key: insert -> INSERT; delete -> DELETE of one row equal
 *    to the before image (LIMIT 1); update -> that delete, then INSERT of the after image.
 */
export function planStatements(changes: readonly Change[], statementRows: number): Statement[] {
  const runs: Run[] = [];
  const push = (kind: Kind, table: TargetTable, image: Record<string, SqlValue>, change: Change) => {
    const columns = kind === "delete" ? table.key : writable(image, table);
    const last = runs[runs.length - 1];
    const sig = columns.join("\u0000");
    if (
      last &&
      last.kind === kind &&
      last.table === table &&
      last.columns.join("\u0000") === sig &&
      last.rows.length < statementRows &&
      kind !== "delete-image"
    ) {
      last.rows.push(image);
      if (last.changes[last.changes.length - 1] !== change) last.changes.push(change);
      return;
    }
    runs.push({ kind, table, columns, rows: [image], changes: [change] });
  };
  for (const ch of changes) {
    const t = ch.target;
    const keyed = t.keyKind !== "none";
    if (ch.op === "c" || ch.op === "r") {
      push(keyed ? "upsert" : "insert", t, ch.after!, ch);
    } else if (ch.op === "d") {
      push(keyed ? "delete" : "delete-image", t, ch.before!, ch);
    } else if (keyed) {
      if (!sameKey(t, ch.before!, ch.after!)) push("delete", t, ch.before!, ch);
      push("upsert", t, ch.after!, ch);
    } else {
      push("delete-image", t, ch.before!, ch);
      push("insert", t, ch.after!, ch);
    }
  }
  return runs.filter((r) => r.columns.length > 0).map(toStatement);
}

function toStatement(run: Run): Statement {
  const t = run.table;
  const cols = run.columns;
  const params: unknown[] = [];
  switch (run.kind) {
    case "upsert":
    case "insert": {
      const tuple = `(${cols.map(() => "?").join(",")})`;
      for (const row of run.rows) for (const c of cols) params.push(row[c] ?? null);
      let sql = `INSERT INTO ${quoteTable(t.ref)} (${cols.map(quoteId).join(",")}) VALUES ${run.rows.map(() => tuple).join(",")}`;
      if (run.kind === "upsert") {
        const keys = new Set(t.key);
        const set = cols.filter((c) => !keys.has(c));
        // Every column a key column: nothing to update, but the clause makes a replay harmless.
        const assign = (set.length > 0 ? set : cols.slice(0, 1)).map(
          (c) => `${quoteId(c)}=VALUES(${quoteId(c)})`,
        );
        sql += ` ON DUPLICATE KEY UPDATE ${assign.join(",")}`;
      }
      return { sql, params, changes: run.changes };
    }
    case "delete": {
      for (const row of run.rows) for (const c of cols) params.push(row[c] ?? null);
      const where =
        cols.length === 1
          ? `${quoteId(cols[0]!)} IN (${run.rows.map(() => "?").join(",")})`
          : `(${cols.map(quoteId).join(",")}) IN (${run.rows.map(() => `(${cols.map(() => "?").join(",")})`).join(",")})`;
      return { sql: `DELETE FROM ${quoteTable(t.ref)} WHERE ${where}`, params, changes: run.changes };
    }
    case "delete-image": {
      const row = run.rows[0]!;
      // <=> matches NULL to NULL: the row equal to the before image, one of them if there are twins.
      const where = cols.map((c) => `${quoteId(c)} <=> ?`).join(" AND ");
      for (const c of cols) params.push(row[c] ?? null);
      return { sql: `DELETE FROM ${quoteTable(t.ref)} WHERE ${where} LIMIT 1`, params, changes: run.changes };
    }
  }
}
