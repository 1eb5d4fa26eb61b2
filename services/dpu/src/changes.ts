import { decodeBatch, fromValue, type SqlValue } from "@dfs/codec";
import { type ChangeBatch, Op, type Value } from "@dfs/proto";
import type { Change, TargetTable } from "./plan.js";

const OPS: Record<number, Change["op"]> = {
  [Op.OP_CREATE]: "c",
  [Op.OP_UPDATE]: "u",
  [Op.OP_DELETE]: "d",
  [Op.OP_READ]: "r",
};

function image(names: string[], values: Value[]): Record<string, SqlValue> | null {
  if (values.length === 0) return null;
  const out: Record<string, SqlValue> = {};
  for (let i = 0; i < names.length; i++) out[names[i]!] = fromValue(values[i]);
  return out;
}

/** The row changes of one stream message, ready for the planner. */
export function changesOf(batch: ChangeBatch, seq: number, table: TargetTable): Change[] {
  const names = batch.columns.map((c) => c.name);
  return batch.rows.map((row) => ({
    op: OPS[row.op] ?? "c",
    before: image(names, row.before),
    after: image(names, row.after),
    seq,
    rowIndex: row.rowIndex,
    table,
    origin: { batch, row },
  }));
}

export { decodeBatch };
