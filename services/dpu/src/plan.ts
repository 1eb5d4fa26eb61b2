import type { SqlValue } from "@dfs/codec";
import { isPlainText, quoteId, quoteTable, SqlBytes, sqlLiteral } from "@dfs/mysql";
import { keysOf } from "./conflicts.js";
import type { Change, TargetTable } from "./sink.js";

/**
 * A statement and the changes it carries (for dead-lettering and metrics). The DPU's planned
 * statements carry their values as literals (sqlLiteral, made while the group before is applied);
 * others may still have `?` parameters.
 */
export interface Statement {
  sql: string;
  /** The text as UTF-8 bytes (what is sent); `sql` is then made from them only when read. */
  bytes?: Uint8Array;
  params?: unknown[];
  /** Sent alone as a prepared statement with `params` in the binary protocol (large values). */
  execute?: boolean;
  /** The statement without its values ("(?,?) ×N" for its rows), for the activity log. */
  text?: string;
  changes: Change[];
}

export type Kind = "upsert" | "delete" | "insert" | "delete-image";

/**
 * A value this large travels as a binary parameter of a prepared statement (Statement.execute),
 * never as SQL text: as text a BLOB doubles (X'hex') and becomes a heap string, and a 60 MB row
 * would need some 250 MB of strings on its way to the server. Such a row is alone in its statement,
 * so that one statement is never more than one large row (max_allowed_packet).
 */
export const LARGE_VALUE_BYTES = 256 * 1024;

function isLarge(v: unknown): boolean {
  return (
    (v instanceof Uint8Array && v.byteLength >= LARGE_VALUE_BYTES) ||
    (typeof v === "string" && v.length >= LARGE_VALUE_BYTES)
  );
}

/** Whether a row holds a large value in one of `cols`. */
function hasLarge(row: Record<string, SqlValue>, cols: readonly string[]): boolean {
  for (const c of cols) if (isLarge(row[c])) return true;
  return false;
}

/** One row to write: what a change becomes (an update that changes the key becomes two). */
interface Op {
  kind: Kind;
  table: TargetTable;
  columns: readonly string[];
  image: Record<string, SqlValue>;
  change: Change;
}

interface Run {
  kind: Kind;
  table: TargetTable;
  columns: readonly string[];
  rows: Record<string, SqlValue>[];
  changes: Change[];
}

/** A statement of planLane, at its level; `rowChanges[i]` is the change of `rows[i]`. */
interface LevelRun extends Omit<Run, "changes"> {
  level: number;
  rowChanges: Change[];
}

function sameKey(t: TargetTable, a: Record<string, SqlValue>, b: Record<string, SqlValue>): boolean {
  return t.key.every((k) => {
    const x = a[k];
    const y = b[k];
    if (x instanceof Uint8Array && y instanceof Uint8Array) return Buffer.compare(x, y) === 0;
    return x === y;
  });
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * What changes become, in order, each handed to `each` (no object per operation: this runs for
 * every row the DPU applies):
 *  - keyed table: insert/read -> upsert of the after image; update -> upsert of the after image,
 *    or delete + upsert when the key changed; delete -> delete by key.
 *  - table without a primary or unique key: insert -> INSERT; delete -> DELETE of one row equal
 *    to the before image (LIMIT 1); update -> that delete, then INSERT of the after image.
 */
function forEachOp(
  changes: readonly Change[],
  each: (
    kind: Kind,
    table: TargetTable,
    columns: readonly string[],
    image: Record<string, SqlValue>,
    change: Change,
  ) => void,
): void {
  for (const ch of changes) {
    const t = ch.target;
    const cols = ch.columns;
    if (t.keyKind !== "none") {
      if (ch.op === "c" || ch.op === "r") each("upsert", t, cols, ch.after!, ch);
      else if (ch.op === "d") each("delete", t, t.key, ch.before!, ch);
      else {
        if (!sameKey(t, ch.before!, ch.after!)) each("delete", t, t.key, ch.before!, ch);
        each("upsert", t, cols, ch.after!, ch);
      }
    } else if (ch.op === "c" || ch.op === "r") {
      each("insert", t, cols, ch.after!, ch);
    } else if (ch.op === "d") {
      each("delete-image", t, cols, ch.before!, ch);
    } else {
      each("delete-image", t, cols, ch.before!, ch);
      each("insert", t, cols, ch.after!, ch);
    }
  }
}

/** The operations of forEachOp as objects (planStatements keeps them in runs). */
function opsOf(changes: readonly Change[]): Op[] {
  const out: Op[] = [];
  forEachOp(changes, (kind, table, columns, image, change) =>
    out.push({ kind, table, columns, image, change }),
  );
  return out;
}

/**
 * Whether `op` may join `run` (same table, kind and columns; a keyless delete, and a row with a
 * large value, is always alone).
 */
function joins(run: Run, op: Op, statementRows: number): boolean {
  return (
    run.kind === op.kind &&
    run.table === op.table &&
    op.kind !== "delete-image" &&
    run.rows.length < statementRows &&
    sameColumns(run.columns, op.columns) &&
    !hasLarge(op.image, op.columns) &&
    !hasLarge(run.rows[run.rows.length - 1]!, run.columns)
  );
}

function add(runs: Run[], op: Op, statementRows: number): void {
  const last = runs[runs.length - 1];
  if (last && joins(last, op, statementRows)) {
    last.rows.push(op.image);
    if (last.changes[last.changes.length - 1] !== op.change) last.changes.push(op.change);
    return;
  }
  runs.push({ kind: op.kind, table: op.table, columns: op.columns, rows: [op.image], changes: [op.change] });
}

/**
 * Turns row changes, in stream order, into statements that have the same effect, in the same
 * order. Consecutive changes of one table and one kind share a multi-row statement; the server
 * applies its rows in order, so no unique key ever sees a state the source did not have.
 */
export function planStatements(changes: readonly Change[], statementRows: number): Statement[] {
  const runs: Run[] = [];
  for (const op of opsOf(changes)) add(runs, op, statementRows);
  return runs.filter((r) => r.columns.length > 0).map(statementOf);
}

/**
 * Statements for one connection's share of a group: its changes, in source order, as few
 * multi-row statements as their keys allow. Each operation goes to the earliest level after
 * every earlier operation that writes one of its keys (conflicts.ts keysOf: primary and unique
 * keys of both images), or joins the statement of that level it would extend (same table, kind
 * and columns, the rows kept in source order). Levels run in order; operations of one level share
 * no key unless they share a statement, so the order of a level's statements does not matter.
 * Many small transactions of the same shapes thus become about one statement per table and kind.
 */
export function planLane(changes: readonly Change[], statementRows: number): Statement[] {
  const levels: LevelRun[][] = [];
  /** The statement (run) of each key's last operation; its level is the run's. */
  const last = new Map<string, LevelRun>();
  forEachOp(changes, (kind, table, columns, image, change) => {
    const keys = keysOf(change);
    let level = -1;
    for (const k of keys) {
      const l = last.get(k);
      if (l && l.level > level) level = l.level;
    }
    let run: LevelRun | undefined;
    if (level >= 0) {
      run = runAt(levels[level], kind, table, columns);
      // It may join that level only through the statement its keys' last operations are in.
      if (run)
        for (const k of keys) {
          const l = last.get(k);
          if (l && l.level === level && l !== run) {
            run = undefined;
            break;
          }
        }
      if (!run) level++;
    } else level = 0;
    if (!run) {
      run = runAt(levels[level], kind, table, columns);
      if (!run) {
        run = { kind, table, columns, rows: [], rowChanges: [], level };
        const runs = levels[level];
        if (runs) runs.push(run);
        else levels[level] = [run];
      }
    }
    run.rows.push(image);
    run.rowChanges.push(change);
    for (const k of keys) last.set(k, run);
  });
  const out: Statement[] = [];
  for (const runs of levels)
    for (const g of runs) {
      if (g.columns.length === 0) continue;
      if (g.kind === "delete-image") {
        // One row per statement (LIMIT 1 finds one twin).
        for (const [i, row] of g.rows.entries())
          out.push(statementOf({ ...g, rows: [row], changes: [g.rowChanges[i]!] }));
        continue;
      }
      for (let at = 0; at < g.rows.length; ) {
        const rows = g.rows.slice(at, at + rowsAt(g.rows, g.columns, at, statementRows));
        out.push(
          statementOf({
            ...g,
            rows,
            changes: distinct(g.rowChanges, at, at + rows.length),
          }),
        );
        at += rows.length;
      }
    }
  return out;
}

/** The statement of a level that rows of this kind, table and columns join, if there is one. */
function runAt(
  runs: readonly LevelRun[] | undefined,
  kind: Kind,
  table: TargetTable,
  columns: readonly string[],
): LevelRun | undefined {
  if (!runs) return undefined;
  for (const r of runs) if (r.kind === kind && r.table === table && sameColumns(r.columns, columns)) return r;
  return undefined;
}

/** How many rows from `at` share a statement: up to statementRows, a row with a large value alone. */
function rowsAt(
  rows: readonly Record<string, SqlValue>[],
  cols: readonly string[],
  at: number,
  statementRows: number,
): number {
  if (hasLarge(rows[at]!, cols)) return 1;
  let n = 1;
  while (n < statementRows && at + n < rows.length && !hasLarge(rows[at + n]!, cols)) n++;
  return n;
}

/** changes[from, to) in order, each once (a change's rows are next to each other in a statement). */
function distinct(changes: readonly Change[], from: number, to: number): Change[] {
  const out: Change[] = [];
  for (let i = from; i < to; i++) if (out[out.length - 1] !== changes[i]) out.push(changes[i]!);
  return out;
}

/**
 * `(v, ...)` per row, the values in `cols` order, escaped by sqlLiteral, as a string: for the
 * pipeline's statements that insert rows to learn their generated keys (the planner's statements
 * are written as bytes, by writeTuples below).
 *
 * Each row's text is joined once from slots (`(`, then per value a separator, the quote, the value
 * and the quote, then `)`): plain text and numbers go in as they are, so no string is made per
 * value and none is built up by `+=` (each step of which is a string of its own).
 */
export function tuples(rows: readonly Record<string, SqlValue>[], cols: readonly string[]): string {
  const joined = new Array<string>(rows.length);
  const width = cols.length;
  const slots = new Array<string | number>(2 + 4 * width);
  slots[0] = "(";
  slots[slots.length - 1] = ")";
  for (let c = 0; c < width; c++) slots[1 + 4 * c] = c > 0 ? "," : "";
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let c = 0; c < width; c++) {
      const at = 2 + 4 * c;
      const v = row[cols[c]!];
      if (typeof v === "number") {
        slots[at] = "";
        slots[at + 1] = v; // joined as String(v) is
        slots[at + 2] = "";
      } else if (typeof v === "string" && isPlainText(v)) {
        slots[at] = "'";
        slots[at + 1] = v;
        slots[at + 2] = "'";
      } else {
        slots[at] = "";
        slots[at + 1] = sqlLiteral(v ?? null);
        slots[at + 2] = "";
      }
    }
    joined[r] = slots.join("");
  }
  return joined.join(",");
}

/** What statementOf needs of a run: only the table's name and key. */
export interface StatementRun {
  kind: Kind;
  table: Pick<TargetTable, "ref" | "key">;
  columns: readonly string[];
  rows: readonly Record<string, SqlValue>[];
  changes: Change[];
}

/**
 * The statement of rows of one kind, table and column list (the pipeline's batch builds its
 * upserts and deletes through it too): a multi-row INSERT (ON DUPLICATE KEY UPDATE for an upsert),
 * a DELETE by key, or a one-row DELETE equal to an image. Its text is written as bytes (SqlBytes);
 * with a large value it is a prepared statement whose large values are `?` parameters.
 */
export function statementOf(run: StatementRun): Statement {
  const params: unknown[] = [];
  const st = statementText(run, params);
  if (params.length === 0) return st;
  // Large values are parameters: the statement goes alone, prepared, in the binary protocol.
  return { sql: st.sql, text: st.text, changes: st.changes, params, execute: true };
}

/** The statement texts are written here, one after another (statementText is synchronous). */
const writer = new SqlBytes();

/** A statement whose text is `bytes`; `sql` decodes them when read (messages and tests). */
function planned(bytes: Buffer, text: string, changes: Change[]): Statement {
  return {
    get sql() {
      return bytes.toString("utf8");
    },
    bytes,
    text,
    changes,
  };
}

const COMMA = 0x2c;
const OPEN = 0x28;
const CLOSE = 0x29;
const MARK = 0x3f;

/** A value, escaped; a large one, when `params` is given, as a `?` whose value goes to `params`. */
function writeValue(v: SqlValue | undefined, params?: unknown[]): void {
  if (params && isLarge(v)) {
    params.push(v);
    writer.char(MARK);
  } else writer.literal(v ?? null);
}

/** `(v, ...),(v, ...)`: each row's values in `cols` order. */
function writeTuples(
  rows: readonly Record<string, SqlValue>[],
  cols: readonly string[],
  params: unknown[],
): void {
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    if (r > 0) writer.char(COMMA);
    writer.char(OPEN);
    for (let c = 0; c < cols.length; c++) {
      if (c > 0) writer.char(COMMA);
      writeValue(row[cols[c]!], params);
    }
    writer.char(CLOSE);
  }
}

function statementText(run: StatementRun, params: unknown[]): Statement {
  const t = run.table;
  const cols = run.columns;
  const n = run.rows.length;
  const marks = `(${cols.map(() => "?").join(",")})`;
  writer.begin();
  switch (run.kind) {
    case "upsert":
    case "insert": {
      const head = `INSERT INTO ${quoteTable(t.ref)} (${cols.map(quoteId).join(",")}) VALUES `;
      let tail = "";
      if (run.kind === "upsert") {
        const keys = new Set(t.key);
        const set = cols.filter((c) => !keys.has(c));
        // Every column a key column: nothing to update, but the clause makes a replay harmless.
        const assign = (set.length > 0 ? set : cols.slice(0, 1)).map(
          (c) => `${quoteId(c)}=VALUES(${quoteId(c)})`,
        );
        tail = ` ON DUPLICATE KEY UPDATE ${assign.join(",")}`;
      }
      writer.raw(head);
      writeTuples(run.rows, cols, params);
      writer.raw(tail);
      return planned(writer.end(), `${head}${marks} ×${n}${tail}`, run.changes);
    }
    case "delete": {
      const head = `DELETE FROM ${quoteTable(t.ref)} WHERE `;
      if (cols.length === 1) {
        const col = quoteId(cols[0]!);
        writer.raw(`${head}${col} IN (`);
        for (let r = 0; r < n; r++) {
          if (r > 0) writer.char(COMMA);
          writeValue(run.rows[r]![cols[0]!], params);
        }
        writer.char(CLOSE);
        return planned(writer.end(), `${head}${col} IN (?) ×${n}`, run.changes);
      }
      const list = `(${cols.map(quoteId).join(",")})`;
      writer.raw(`${head}${list} IN (`);
      writeTuples(run.rows, cols, params);
      writer.char(CLOSE);
      return planned(writer.end(), `${head}${list} IN (${marks}) ×${n}`, run.changes);
    }
    case "delete-image": {
      const row = run.rows[0]!;
      // <=> matches NULL to NULL: the row equal to the before image, one of them if there are twins.
      const head = `DELETE FROM ${quoteTable(t.ref)} WHERE `;
      writer.raw(head);
      for (let c = 0; c < cols.length; c++) {
        writer.raw(`${c > 0 ? " AND " : ""}${quoteId(cols[c]!)} <=> `);
        writeValue(row[cols[c]!], params);
      }
      writer.raw(" LIMIT 1");
      return planned(
        writer.end(),
        `${head}${cols.map((c) => `${quoteId(c)} <=> ?`).join(" AND ")} LIMIT 1`,
        run.changes,
      );
    }
  }
}
