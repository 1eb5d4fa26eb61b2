/**
 * A source change through its mappings: per target table, what to write or remove. Rows moving
 * into a filter become writes and rows moving out become removals; a change of the key is a
 * removal and a write for targets keyed by source values, and a key-map move for generated keys.
 */
import { type DecodedChange, type SqlValue, tableKey } from "@dfs/codec";
import { DataError, ErrorCode } from "@dfs/common";
import type { ColumnPlan, CompiledPipeline, TargetPlan } from "./compile.js";
import { truthy } from "./expr.js";

/** A target row: its values, and the columns whose value is a parent's source key to rewrite. */
export interface MappedRow {
  values: Record<string, SqlValue>;
  /** The columns `values` has, in order (one shared array per plan unless a hook made the row). */
  columns: string[];
  refs: { column: string; parent: TargetPlan; key: string }[];
}

export type TargetOp =
  | {
      kind: "write";
      plan: TargetPlan;
      /** The source row's key (encodeKey). */
      key: string;
      /** The key it had before an update changed it (generated keys: the key map moves). */
      previousKey: string | null;
      row: MappedRow;
      /** An update's mapped before image (the unique keys it frees). */
      before?: MappedRow;
    }
  | { kind: "remove"; plan: TargetPlan; key: string; row: MappedRow };

/** A change that cannot be mapped (an expression or hook failed): dead-lettered with this reason. */
export class MappingError extends DataError {
  constructor(message: string) {
    super(ErrorCode.DATA_INVALID, message);
  }
}

/** A key as text that is the same for equal values of any integer representation. */
export function encodeKey(values: readonly SqlValue[]): string {
  // The common key, one integer: no escaping needed.
  if (values.length === 1) {
    const v = values[0];
    if (typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v))) return `["${v}"]`;
  }
  return JSON.stringify(
    values.map((v) =>
      v === null ? null : v instanceof Uint8Array ? `0x${Buffer.from(v).toString("hex")}` : String(v),
    ),
  );
}

function sourceKeyOf(plan: TargetPlan, row: Record<string, SqlValue>): string {
  return encodeKey(plan.sourceKey.map((c) => row[c] ?? null));
}

/** What a plan's images need, worked out once per plan. */
interface Shape {
  /** Target column names in mapping order (the values' keys when no hook runs). */
  names: string[];
  /** The columns a before image needs: the target's key and unique-key columns. */
  identity: ColumnPlan[];
  identityNames: string[];
  /** Foreign-key columns to rewrite in a written row, and in a removal (only key columns matter there). */
  writeRefs: ColumnPlan[];
  removeRefs: ColumnPlan[];
}

const shapes = new WeakMap<TargetPlan, Shape>();

function shapeOf(plan: TargetPlan): Shape {
  let s = shapes.get(plan);
  if (!s) {
    const ident = new Set([...plan.keyColumns, ...plan.uniqueKeys.flat()]);
    const identity = plan.columns.filter((c) => ident.has(c.target));
    const writeRefs = plan.columns.filter((c) => c.parent);
    s = {
      names: plan.columns.map((c) => c.target),
      identity,
      identityNames: identity.map((c) => c.target),
      writeRefs,
      // A generated-key row is removed through its key map entry; a source-keyed one by its key,
      // which may hold a parent's (rewritten) key.
      removeRefs: plan.key === "generated" ? [] : writeRefs.filter((c) => plan.keyColumns.includes(c.target)),
    };
    shapes.set(plan, s);
  }
  return s;
}

/**
 * A source image through one plan, or null when the filter (or hook) leaves it out. `use`: a
 * written row gets every column; an image that is only removed, or only tells which unique keys
 * an update frees, gets the target's identifying columns (hooks always see every column).
 */
function mapImage(
  plan: TargetPlan,
  change: DecodedChange,
  image: "before" | "after",
  use: "write" | "remove" | "identity",
): MappedRow | null {
  const src = change[image];
  if (!src) return null;
  if (plan.filter) {
    let keep: boolean;
    try {
      keep = truthy(plan.filter.run(src));
    } catch (err) {
      throw new MappingError(`${plan.path}.filter: ${(err as Error).message}`);
    }
    if (!keep) return null;
  }
  const shape = shapeOf(plan);
  const full = use === "write" || plan.hook !== undefined;
  const cols = full ? plan.columns : shape.identity;
  let names = full ? shape.names : shape.identityNames;
  let values: Record<string, SqlValue> = {};
  for (const c of cols) {
    try {
      values[c.target] = c.value(src);
    } catch (err) {
      throw new MappingError(`${plan.path}.columns.${c.target}: ${(err as Error).message}`);
    }
  }
  if (plan.hook) {
    let out: Record<string, SqlValue> | null | undefined;
    try {
      out = plan.hook.run(
        { ...values },
        { op: change.op, image, source: plan.source, target: plan.target, sourceRow: src },
      );
    } catch (err) {
      throw new MappingError(
        `hooks module ${plan.hook.module} map() threw for ${plan.path}: ${(err as Error).message}`,
      );
    }
    if (out === null || out === undefined) return null;
    if (typeof out !== "object")
      throw new MappingError(
        `hooks module ${plan.hook.module} map() returned ${typeof out}, not a row or null, for ${plan.path}`,
      );
    values = out;
    names = Object.keys(out);
  }
  const refs: MappedRow["refs"] = [];
  const refCols = use === "write" ? shape.writeRefs : use === "remove" ? shape.removeRefs : [];
  for (const c of refCols) {
    const v = values[c.target];
    if (v !== null && v !== undefined)
      refs.push({ column: c.target, parent: c.parent!, key: encodeKey([v]) });
  }
  return { values, columns: names, refs };
}

function sameTargetKey(plan: TargetPlan, a: MappedRow, b: MappedRow): boolean {
  return plan.keyColumns.every((k) => {
    const x = a.values[k] ?? null;
    const y = b.values[k] ?? null;
    return x instanceof Uint8Array && y instanceof Uint8Array
      ? Buffer.compare(x, y) === 0
      : String(x) === String(y) && (x === null) === (y === null);
  });
}

/** What one source change does to each of its target tables, in mapping order. */
export function mapChange(
  pipeline: CompiledPipeline,
  change: DecodedChange,
  key: string = tableKey(change.ref),
): TargetOp[] {
  const plans = pipeline.bySource.get(key);
  if (!plans) return [];
  const out: TargetOp[] = [];
  for (const plan of plans) {
    const after = change.op === "d" ? null : mapImage(plan, change, "after", "write");
    // An update's before image only tells whether the row was there and which keys it frees.
    const before =
      change.op === "d"
        ? mapImage(plan, change, "before", "remove")
        : change.op === "u"
          ? mapImage(plan, change, "before", after ? "identity" : "remove")
          : null;
    const beforeKey = before ? sourceKeyOf(plan, change.before!) : null;
    const afterKey = after ? sourceKeyOf(plan, change.after!) : null;
    if (before && after) {
      if (plan.key !== "generated" && !sameTargetKey(plan, before, after)) {
        // Its key may hold a parent's key, rewritten like a removal's.
        const removed =
          shapeOf(plan).removeRefs.length > 0 ? mapImage(plan, change, "before", "remove")! : before;
        out.push({ kind: "remove", plan, key: beforeKey!, row: removed });
        out.push({ kind: "write", plan, key: afterKey!, previousKey: null, row: after });
      } else
        out.push({
          kind: "write",
          plan,
          key: afterKey!,
          previousKey: beforeKey === afterKey ? null : beforeKey,
          row: after,
          before,
        });
    } else if (before) out.push({ kind: "remove", plan, key: beforeKey!, row: before });
    else if (after) out.push({ kind: "write", plan, key: afterKey!, previousKey: null, row: after });
  }
  return out;
}
