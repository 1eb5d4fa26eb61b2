// Builds decoded changes for the DPU's unit tests, as the stream would deliver them.
import { type Row, rowField } from "@dfs/codec";
import { ChangeBatch, Op } from "@dfs/proto";
import type { Change, TargetTable } from "../../dist/sink.js";

const OPS = { c: Op.OP_CREATE, u: Op.OP_UPDATE, d: Op.OP_DELETE, r: Op.OP_READ } as const;

export function targetTable(
  db: string,
  table: string,
  columns: string[],
  key: string[],
  keyKind: TargetTable["keyKind"] = key.length > 0 ? "primary" : "none",
  uniqueKeys: string[][] = [],
): TargetTable {
  return {
    ref: { db, table },
    columns: new Set(columns),
    key,
    keyKind,
    uniqueKeys: key.length > 0 ? [key, ...uniqueKeys] : uniqueKeys,
  };
}

let nextIndex = 0;

/** One change of `target`'s source table (same names), with its stream sequence. */
export function change(
  target: TargetTable,
  op: Change["op"],
  before: Row | null,
  after: Row | null,
  seq = 1,
): Change {
  const batch = ChangeBatch.fromPartial({ db: target.ref.db, table: target.ref.table });
  const rowIndex = nextIndex++;
  const image = after ?? before ?? {};
  return {
    ref: target.ref,
    op,
    rowIndex,
    before,
    after,
    sourceTxn: 0,
    batch,
    raw: rowField({ op: OPS[op], rowIndex, before: [], after: [], sourceTxn: 0 }),
    seq,
    target,
    columns: Object.keys(image).filter((c) => target.columns.has(c)),
    keys: null,
  };
}
