/**
 * One table's comparison. The source is read chunk by chunk in key order (count and XOR of row
 * hashes, computed by the server); right after each source read the source's binlog end is noted,
 * and the target's side of the same key range is read only once the DPU has applied past it. A
 * chunk that differs is narrowed to keys by comparing its rows' hashes, then each key is settled:
 * read on the source, wait for the DPU, read on the target, read on the source again. A key whose
 * source row did not change meanwhile and still differs on the target is confirmed; twice
 * confirmed is drift. One whose source row keeps changing is read again in the next round; after
 * the last round it is reported unsettled, never as drift. So a running load shows no drift.
 */
import type { TableRef } from "@dfs/codec";
import { sleep } from "@dfs/common";
import type { MysqlSession } from "@dfs/mysql";
import { type AppliedWatch, sourcePosition } from "./applied.js";
import type { TablePlan } from "./plan.js";
import { isBytes, keyString, printableKey, rawRows, rawValue } from "./read.js";
import { boundarySql, type Cond, chunkSumSql, keyIn, keyRange, rowHashesSql, type Side } from "./sql.js";

export interface Drift {
  /** The key in the source's column names. */
  key: Record<string, string | null>;
  /** missing: on the source, not the target; extra: on the target only; different: both, unequal. */
  kind: "missing" | "extra" | "different";
}

export interface CompareContext {
  /** Reads chunks ahead. */
  src: MysqlSession;
  /** Narrows and settles keys (beside the chunk reads). */
  srcKeys: MysqlSession;
  tgt: MysqlSession;
  watch: AppliedWatch;
  chunkRows: number;
  rounds: number;
  signal?: AbortSignal;
  /** Rows read on the source so far (progress). */
  progress?(rows: number): void;
}

export interface Comparison {
  sourceRows: number;
  targetRows: number;
  chunks: number;
  chunksDiffering: number;
  drift: Drift[];
  /** Keys whose drift is confirmed, by keyString: their values, for a repair. */
  driftKeys: Map<string, unknown[]>;
  unsettled: number;
}

/** A key set: keyString -> the key's values. */
export type Keys = Map<string, unknown[]>;

interface SourceChunk {
  lo: unknown[] | null;
  hi: unknown[] | null;
  range: Cond;
  sum: string;
  rows: number;
  pos: string;
}

const LOOKUP_BATCH = 500;

function keyBytes(plan: TablePlan, side: "source" | "target"): boolean[] {
  return plan[side].key.map((k) => isBytes(plan.pairs.find((p) => p[side].name === k)![side]));
}

async function readSourceChunk(
  plan: TablePlan,
  ctx: CompareContext,
  lo: unknown[] | null,
): Promise<SourceChunk> {
  const side = plan.source;
  const bytes = keyBytes(plan, "source");
  const b = await rawRows(ctx.src, boundarySql(side, lo, ctx.chunkRows));
  const hi = b[0] ? side.key.map((_, i) => rawValue(b[0]![i] ?? null, bytes[i]!)) : null;
  const range = keyRange(side.key, lo, hi);
  const sum = await rawRows(ctx.src, chunkSumSql(side, range));
  const pos = await sourcePosition(ctx.src);
  const rows = Number(String(sum[0]?.[0] ?? "0"));
  return { lo, hi, range, sum: `${rows}:${String(sum[0]?.[1] ?? "0")}`, rows, pos };
}

/** key -> row hash, for rows of a condition on one side. */
async function hashes(
  s: MysqlSession,
  side: Side,
  where: Cond,
  bytes: boolean[],
): Promise<Map<string, { key: unknown[]; hash: string }>> {
  const out = new Map<string, { key: unknown[]; hash: string }>();
  for (const r of await rawRows(s, rowHashesSql(side, where))) {
    const key = side.key.map((_, i) => rawValue(r[i] ?? null, bytes[i]!));
    out.set(keyString(key), { key, hash: String(r[side.key.length] ?? "") });
  }
  return out;
}

/** Hashes of some keys, in batches. */
async function hashesOf(s: MysqlSession, side: Side, keys: Keys, bytes: boolean[]) {
  const out = new Map<string, { key: unknown[]; hash: string }>();
  const all = [...keys.values()];
  for (let i = 0; i < all.length; i += LOOKUP_BATCH)
    for (const [k, v] of await hashes(s, side, keyIn(side.key, all.slice(i, i + LOOKUP_BATCH)), bytes))
      out.set(k, v);
  return out;
}

/** The keys of a differing chunk whose rows differ (not yet settled). */
async function narrow(plan: TablePlan, ctx: CompareContext, chunk: SourceChunk, into: Keys): Promise<void> {
  const sb = keyBytes(plan, "source");
  const tb = keyBytes(plan, "target");
  const s = await hashes(ctx.srcKeys, plan.source, chunk.range, sb);
  await ctx.watch.waitPast(await sourcePosition(ctx.srcKeys));
  const t = await hashes(ctx.tgt, plan.target, keyRange(plan.target.key, chunk.lo, chunk.hi), tb);
  for (const [k, v] of s) if (t.get(k)?.hash !== v.hash) into.set(k, v.key);
  for (const [k, v] of t) if (!s.has(k)) into.set(k, v.key);
}

/**
 * Settles candidate keys over up to `ctx.rounds` rounds: drift once confirmed twice (stable on the
 * source, still unequal on the target after the DPU passed the source's read); dropped once equal.
 */
export async function settle(
  plan: TablePlan,
  ctx: CompareContext,
  candidates: Keys,
): Promise<{ drift: Drift[]; driftKeys: Keys; unsettled: Keys }> {
  const sb = keyBytes(plan, "source");
  const tb = keyBytes(plan, "target");
  const open = new Map(candidates);
  const confirmed = new Map<string, number>();
  const drift: Drift[] = [];
  const driftKeys: Keys = new Map();
  for (let round = 0; round < ctx.rounds && open.size > 0; round++) {
    if (round > 0 && confirmed.size < open.size) await sleep(50 * round, ctx.signal); // let hot rows settle
    const before = await hashesOf(ctx.srcKeys, plan.source, open, sb);
    await ctx.watch.waitPast(await sourcePosition(ctx.srcKeys));
    const target = await hashesOf(ctx.tgt, plan.target, open, tb);
    const after = await hashesOf(ctx.srcKeys, plan.source, open, sb);
    for (const [k, values] of open) {
      const s = before.get(k)?.hash;
      const t = target.get(k)?.hash;
      if (s === t) {
        open.delete(k);
        confirmed.delete(k);
      } else if (s !== after.get(k)?.hash) {
        confirmed.delete(k); // the source row changed while we looked: look again
      } else {
        const n = (confirmed.get(k) ?? 0) + 1;
        confirmed.set(k, n);
        if (n < 2) continue;
        open.delete(k);
        driftKeys.set(k, values);
        drift.push({
          key: printableKey(plan.source.key, values),
          kind: s === undefined ? "extra" : t === undefined ? "missing" : "different",
        });
      }
    }
  }
  return { drift, driftKeys, unsettled: open };
}

/** Compares a table: chunk sums, then the keys of differing chunks settled. */
export async function compareTable(plan: TablePlan, ctx: CompareContext): Promise<Comparison> {
  const result: Comparison = {
    sourceRows: 0,
    targetRows: 0,
    chunks: 0,
    chunksDiffering: 0,
    drift: [],
    driftKeys: new Map(),
    unsettled: 0,
  };
  const candidates: Keys = new Map();
  // The next source chunk is read while the target side of this one is (one chunk ahead).
  let next: Promise<SourceChunk> | null = readSourceChunk(plan, ctx, null);
  while (next) {
    const chunk: SourceChunk = await next;
    next = chunk.hi ? readSourceChunk(plan, ctx, chunk.hi) : null;
    next?.catch(() => {}); // awaited in the next turn; a failure is seen there
    await ctx.watch.waitPast(chunk.pos);
    const t = await rawRows(ctx.tgt, chunkSumSql(plan.target, keyRange(plan.target.key, chunk.lo, chunk.hi)));
    const trows = Number(String(t[0]?.[0] ?? "0"));
    result.chunks++;
    result.sourceRows += chunk.rows;
    result.targetRows += trows;
    ctx.progress?.(chunk.rows);
    if (`${trows}:${String(t[0]?.[1] ?? "0")}` === chunk.sum) continue;
    result.chunksDiffering++;
    await narrow(plan, ctx, chunk, candidates);
  }
  if (candidates.size > 0) {
    const s = await settle(plan, ctx, candidates);
    result.drift = s.drift;
    result.driftKeys = s.driftKeys;
    result.unsettled = s.unsettled.size;
  }
  return result;
}

/** The table names of a plan, for results. */
export function refsOf(plan: TablePlan): { source: TableRef; target: TableRef } {
  return { source: plan.source.ref, target: plan.target.ref };
}
