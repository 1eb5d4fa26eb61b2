/**
 * A diagnostic of the OLTP latency phase (DFS_BENCH_LATENCY_TRACE=1): when each latency transaction
 * reached the stream (a core NATS subscription on its table's subject sees capture's publishes), so
 * that commit -> visible splits into commit -> stream (capture) and stream -> target (the DPU), and
 * when the slowest 1% committed (a stall shows as a burst in a few seconds, a steady tail does not).
 */
import { decodeBatch, decodeChanges } from "@dfs/codec";
import { subjects } from "@dfs/nats";
import type { NatsConnection } from "@nats-io/transport-node";
import { percentile } from "./run.js";

export interface ArrivalTrace {
  /** performance.now() when transaction n's row reached the stream (NaN: not seen). */
  readonly at: Float64Array;
  stop(): void;
}

export function traceArrivals(
  nc: NatsConnection,
  source: string,
  db: string,
  table: string,
  total: number,
): ArrivalTrace {
  const at = new Float64Array(total + 1).fill(Number.NaN);
  const sub = nc.subscribe(subjects.data(source, db, table), {
    callback: (_err, m) => {
      const now = performance.now();
      try {
        for (const c of decodeChanges(decodeBatch(m.data))) {
          const n = Number(c.after?.id ?? 0);
          if (n >= 1 && n <= total && Number.isNaN(at[n]!)) at[n] = now;
        }
      } catch {
        // a chunk or a foreign message: not a latency row
      }
    },
  });
  return { at, stop: () => sub.unsubscribe() };
}

/** p50, p99 and max, as the bench computes its own (`percentile`). */
function percentiles(xs: number[]): string {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return "no samples";
  return `p50 ${percentile(s, 0.5).toFixed(1)} p99 ${percentile(s, 0.99).toFixed(1)} max ${s.at(-1)!.toFixed(1)} ms`;
}

/** One line per split, and the seconds (from t0) in which the slowest 1% committed. */
export function reportTrace(
  commitAt: Float64Array,
  streamAt: Float64Array | null,
  seenAt: Float64Array,
  t0: number,
  total: number,
): string[] {
  const idx = Array.from({ length: total }, (_, i) => i + 1);
  const lines: string[] = [];
  if (streamAt) {
    lines.push(`commit -> stream: ${percentiles(idx.map((n) => streamAt[n]! - commitAt[n]!))}`);
    lines.push(`stream -> target: ${percentiles(idx.map((n) => seenAt[n]! - streamAt[n]!))}`);
  }
  const worst = idx
    .map((n) => [seenAt[n]! - commitAt[n]!, n] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, Math.ceil(total / 100));
  const buckets = new Map<number, number>();
  for (const [, n] of worst) {
    const s = Math.floor((commitAt[n]! - t0) / 1000);
    buckets.set(s, (buckets.get(s) ?? 0) + 1);
  }
  lines.push(
    `slowest 1% by second of commit: ${[...buckets]
      .sort((a, b) => a[0] - b[0])
      .map(([s, c]) => `${s}s:${c}`)
      .join(" ")}`,
  );
  if (streamAt) {
    const slowCapture = worst.filter(
      ([, n]) => streamAt[n]! - commitAt[n]! > seenAt[n]! - streamAt[n]!,
    ).length;
    lines.push(`of the slowest 1%: ${slowCapture} spent longer before the stream than after it`);
  }
  return lines;
}
