/**
 * `--repair`: the drifted keys only, re-read from the source and written through the DPU's own
 * sink (`openRepairSink`): a row the source has is upserted as a snapshot read is; a row the source
 * no longer has is deleted. Then the keys are settled again. A repair races the running DPU only
 * for a row that changes on the source meanwhile; the DPU then applies that change after, and the
 * check after the repair sees it (a key found wrong again is repaired again, up to three times).
 */
import type { Row } from "@dfs/codec";
import type { RepairRow, RepairSink } from "@dfs/dpu";
import { type CompareContext, type Drift, type Keys, settle } from "./compare.js";
import type { TablePlan } from "./plan.js";
import { keyString, readRows } from "./read.js";
import { keyIn, rowsSql } from "./sql.js";

const BATCH = 500;
const ATTEMPTS = 3;

/** The repair of one batch of keys: the source's rows, and deletes for the keys it lacks. */
async function repairRows(plan: TablePlan, ctx: CompareContext, keys: unknown[][]): Promise<RepairRow[]> {
  const cols = plan.sourceColumns;
  const rows = await readRows(
    ctx.srcKeys,
    rowsSql(
      plan.source.ref,
      cols.map((c) => ({ name: c.name, float: c.dataType === "float" })),
      keyIn(plan.source.key, keys),
    ),
    cols,
  );
  const found = new Map(rows.map((r) => [keyString(plan.source.key.map((k) => r[k])), r]));
  const out: RepairRow[] = rows.map((row) => ({ op: "r", row }));
  const gone = keys.filter((k) => !found.has(keyString(k)));
  if (gone.length === 0) return out;
  // The target's row, in the source's column names (the mapping inverted): the delete's before image.
  const targetCols = plan.pairs.map((p) => p.target);
  const trows = await readRows(
    ctx.tgt,
    rowsSql(
      plan.target.ref,
      targetCols.map((c) => ({ name: c.name, float: c.dataType === "float" })),
      keyIn(plan.target.key, gone),
    ),
    targetCols,
  );
  for (const t of trows) {
    const row: Row = {};
    for (const p of plan.pairs) row[p.source.name] = t[p.target.name] ?? null;
    out.push({ op: "d", row });
  }
  return out;
}

export interface RepairOutcome {
  /** Rows written (upserts) and deleted, over every attempt. */
  upserted: number;
  deleted: number;
  /** Keys still drifted after the last attempt. */
  remaining: Drift[];
}

/** Repairs `keys` of a table and checks them again. */
export async function repairTable(
  plan: TablePlan,
  ctx: CompareContext,
  sink: RepairSink,
  keys: Keys,
): Promise<RepairOutcome> {
  const outcome: RepairOutcome = { upserted: 0, deleted: 0, remaining: [] };
  let todo = keys;
  for (let attempt = 0; attempt < ATTEMPTS && todo.size > 0; attempt++) {
    const all = [...todo.values()];
    for (let i = 0; i < all.length; i += BATCH) {
      const rows = await repairRows(plan, ctx, all.slice(i, i + BATCH));
      await sink.apply(plan.source.ref, rows);
      for (const r of rows) outcome[r.op === "r" ? "upserted" : "deleted"]++;
    }
    const again = await settle(plan, ctx, todo);
    outcome.remaining = again.drift;
    todo = again.driftKeys;
  }
  return outcome;
}
