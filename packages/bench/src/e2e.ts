/**
 * `dfs bench e2e`: the whole pipeline, binlog -> capture -> JetStream -> DPU -> target, in one
 * `dfs run` child process. Three measurements in one run:
 *  1. catch-up: N row changes already waiting in the binlog, from starting `dfs run` to the target
 *     holding them all (checked with a full checksum afterwards);
 *  2. steady latency: the pipeline caught up, a paced stream of small transactions, the time from
 *     each source COMMIT returning to its rows being visible in the target;
 *  3. the same catch-up applied by MariaDB's own replication (a temporary replica), for the ratio.
 */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import type { Position } from "@dfs/codec";
import { sleep } from "@dfs/common";
import { parseMysqlUrl } from "@dfs/mysql";
import { connectNats } from "@dfs/nats";
import { stackUrls } from "@dfs/stack";
import mysql from "mysql2/promise";
import { peakRssMb } from "./proc.js";
import {
  assertRunning,
  type Conn,
  cleanUp,
  diagnose,
  measureReplica,
  percentile,
  q,
  type ReplicaResult,
  startDfsRun,
  stopChild,
  waitCaughtUp,
} from "./run.js";
import { BENCH_TABLE, binlogEnd, type WorkloadResult, writeMixedWorkload } from "./workload.js";

/** Written once after the workload: when its row is in the target, everything before it is. */
const DONE_TABLE = "CREATE TABLE IF NOT EXISTS bench_done (id INT PRIMARY KEY) ENGINE=InnoDB";
/** The steady-latency rows: ids only grow, so MAX(id) in the target says how far it got. */
const LATENCY_TABLE = `CREATE TABLE IF NOT EXISTS bench_latency (
  id BIGINT PRIMARY KEY,
  note VARCHAR(64) NOT NULL,
  ts DATETIME(6) NOT NULL
) ENGINE=InnoDB`;

export interface E2eOptions {
  rows: number;
  /** Also measure MariaDB replication on the same binlog range (a temporary replica). */
  replica: boolean;
  latencySeconds: number;
  /** Rows per second written in the latency phase, in transactions of `latencyTxnRows` rows. */
  latencyRate: number;
  latencyTxnRows: number;
  /** Extra lines for `dfs run`'s config (e.g. "dpu: { apply: { connections: 1 } }"). */
  extraConfig?: string[];
  log: (s: string) => void;
}

export interface CatchUpResult {
  rows: number;
  workload: WorkloadResult;
  start: Position;
  end: Position;
  /** From spawning `dfs run` to the sentinel row being visible in the target. */
  seconds: number;
  rowsPerSecond: number;
  /** From spawning to the stream holding everything up to the end position (capture drained). */
  captureSeconds: number | null;
  /** The DPU's checkpoint (stream sequence) and the stream's last sequence at that moment. */
  dpuAtCapture: { applied: number; last: number } | null;
  /** Start-up: from spawning to the first message in the stream, and to the DPU's first checkpoint. */
  firstPublishedSeconds: number | null;
  firstAppliedSeconds: number | null;
  /** CPU seconds `dfs run` used until caught up (every thread). */
  cpuSeconds: number;
  peakRssMb: number;
  tableRows: number;
  checksum: string;
}

export interface LatencyResult {
  transactions: number;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
  /** Average time between two target polls, in ms. */
  pollMs: number;
  /** Peak RSS of `dfs run` after the latency phase. */
  peakRssMb: number;
}

export type { ReplicaResult };

export interface E2eResult {
  catchUp: CatchUpResult;
  latency: LatencyResult;
  replica: ReplicaResult | null;
  /** Why the replica figure is missing, when it is. */
  replicaNote: string;
}

/** Row count and a checksum over every column of bench_rows (same server version on both sides). */
async function tableChecksum(conn: Conn, db: string): Promise<{ rows: number; sum: string }> {
  const [r] = await conn.query(
    `SELECT COUNT(*) AS n, COALESCE(SUM(k), 0) AS k,
            COALESCE(SUM(CRC32(CONCAT_WS('|', id, k, name, amount, ts, score))), 0) AS c
       FROM ${q(db)}.bench_rows`,
  );
  const row = (r as { n: number | string; k: number | string; c: number | string }[])[0]!;
  return { rows: Number(row.n), sum: `${row.n}/${row.k}/${row.c}` };
}

function latencyInsert(from: number, count: number): string {
  const values: string[] = [];
  for (let id = from; id < from + count; id++) values.push(`(${id},'latency-${id}',NOW(6))`);
  return `INSERT INTO bench_latency (id,note,ts) VALUES ${values.join(",")}`;
}

/**
 * Writes `rate` rows/s for `seconds` (one autocommit INSERT of `txnRows` rows per transaction, paced
 * on an absolute schedule) and polls the target's MAX(id) every ~2 ms on its own connection. A
 * transaction's latency is from its INSERT (autocommit: the commit) returning on the source to the
 * return of the first target poll that shows its last id.
 */
async function measureLatency(
  src: Conn,
  tgt: Conn,
  db: string,
  child: ChildProcess,
  o: E2eOptions,
): Promise<LatencyResult> {
  const perTxn = o.latencyTxnRows;
  const intervalMs = (1000 * perTxn) / o.latencyRate;
  const txns = Math.round((o.latencySeconds * 1000) / intervalMs);
  const commitAt = new Float64Array(txns);
  const seenAt = new Float64Array(txns).fill(Number.NaN);
  let nextUnseen = 0;
  let polls = 0;
  let pollDeadline = Number.POSITIVE_INFINITY;
  let pollError: unknown = null;
  const pollStart = performance.now();
  const poller = (async () => {
    while (nextUnseen < txns) {
      assertRunning(child, "dfs run");
      const [r] = await tgt.query(`SELECT COALESCE(MAX(id), 0) AS m FROM ${q(db)}.bench_latency`);
      const now = performance.now();
      polls++;
      const max = Number((r as { m: number | string }[])[0]!.m);
      while (nextUnseen < txns && (nextUnseen + 1) * perTxn <= max) seenAt[nextUnseen++] = now;
      if (now > pollDeadline)
        throw new Error(`the target shows ${max} of ${txns * perTxn} latency rows 60 s after the last write`);
      await sleep(2);
    }
  })().catch((err) => {
    pollError = err;
  });
  const t0 = performance.now();
  for (let k = 0; k < txns; k++) {
    if (pollError) throw pollError;
    const wait = t0 + k * intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    await src.query(latencyInsert(k * perTxn + 1, perTxn));
    commitAt[k] = performance.now();
  }
  const seconds = (performance.now() - t0) / 1000;
  pollDeadline = performance.now() + 60_000;
  await poller;
  if (pollError) throw pollError;
  const pollMs = (performance.now() - pollStart) / polls;
  const lat = Array.from(commitAt, (c, i) => seenAt[i]! - c).sort((a, b) => a - b);
  return {
    transactions: txns,
    rows: txns * perTxn,
    seconds,
    rowsPerSecond: (txns * perTxn) / seconds,
    p50: percentile(lat, 0.5),
    p90: percentile(lat, 0.9),
    p99: percentile(lat, 0.99),
    max: lat[lat.length - 1]!,
    min: lat[0]!,
    mean: lat.reduce((a, b) => a + b, 0) / lat.length,
    pollMs,
    peakRssMb: peakRssMb(child.pid!),
  };
}

/** The whole e2e benchmark; every figure it returns was measured in this call. */
export async function benchE2e(o: E2eOptions): Promise<E2eResult> {
  const { log } = o;
  const urls = stackUrls();
  const s = parseMysqlUrl(urls.sourceUrl);
  const t = parseMysqlUrl(urls.targetUrl);
  const id = `e2e${Date.now().toString(36)}`;
  const db = `dfs_bench_${id}`;
  const opts = (u: typeof s) => ({ host: u.host, port: u.port, user: u.user, password: u.password });
  const src = await mysql.createConnection(opts(s));
  const tgt = await mysql.createConnection(opts(t));
  const nc = await connectNats({ url: urls.natsUrl, name: "dfs-bench-e2e" });
  let child: ChildProcess | null = null;
  let dir = "";
  try {
    await src.query(`CREATE DATABASE ${q(db)}`);
    await src.query(`USE ${q(db)}`);
    await src.query(BENCH_TABLE);
    await src.query(DONE_TABLE);
    await src.query(LATENCY_TABLE);
    const start = await binlogEnd(src);
    log(`catch-up: writing ${o.rows.toLocaleString("en")} row changes to the source...`);
    const workload = await writeMixedWorkload(src, o.rows, false);
    const sentinelAt = await binlogEnd(src);
    await src.query("INSERT INTO bench_done (id) VALUES (1)");
    const end = await binlogEnd(src);
    const expected = await tableChecksum(src, db);
    log(`catch-up: ${workload.seconds.toFixed(1)} s to write; binlog ${start} -> ${end}`);

    const run = startDfsRun(urls, id, db, start, o.extraConfig ?? []);
    child = run.child;
    dir = run.dir;
    const caught = await waitCaughtUp(
      run,
      nc,
      tgt,
      { db, table: "bench_done" },
      sentinelAt.sortable,
      end.sortable,
    );
    const got = await tableChecksum(tgt, db);
    if (got.sum !== expected.sum)
      throw new Error(
        `target checksum ${got.sum} differs from the source's ${expected.sum} (count/sum k/crc); ${await diagnose(nc, tgt, id)}`,
      );
    log(
      `catch-up: ${caught.seconds.toFixed(2)} s, ${Math.round(o.rows / caught.seconds).toLocaleString("en")} rows/s; checksum ${got.sum} matches`,
    );
    const catchUp: CatchUpResult = {
      rows: o.rows,
      workload,
      start,
      end,
      seconds: caught.seconds,
      rowsPerSecond: o.rows / caught.seconds,
      captureSeconds: caught.captureSeconds,
      dpuAtCapture: caught.dpuAtCapture,
      firstPublishedSeconds: caught.firstPublishedSeconds,
      firstAppliedSeconds: caught.firstAppliedSeconds,
      cpuSeconds: caught.cpuSeconds,
      peakRssMb: caught.peakRssMb,
      tableRows: got.rows,
      checksum: got.sum,
    };

    log(
      `latency: ${o.latencyRate} rows/s in ${o.latencyTxnRows}-row transactions for ${o.latencySeconds} s...`,
    );
    await sleep(1000);
    const latency = await measureLatency(src, tgt, db, child, o);
    log(
      `latency: p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms at ${Math.round(latency.rowsPerSecond)} rows/s`,
    );
    await stopChild(child, 15_000);

    let replica: ReplicaResult | null = null;
    let replicaNote = "";
    if (o.replica) {
      try {
        replica = await measureReplica({
          source: s,
          src,
          db,
          tables: ["bench_rows", "bench_done"],
          sentinelTable: "bench_done",
          start,
          end,
          expected: expected.sum,
          rows: o.rows,
          checksum: async (c) => (await tableChecksum(c, db)).sum,
          log,
        });
        log(
          `replica: ${replica.seconds.toFixed(2)} s, ${Math.round(replica.rowsPerSecond).toLocaleString("en")} rows/s`,
        );
      } catch (err) {
        replicaNote = `MariaDB replication comparison not measured: ${(err as Error).message}`;
        log(replicaNote);
      }
    } else {
      replicaNote = "MariaDB replication comparison not measured (--no-replica)";
    }
    return { catchUp, latency, replica, replicaNote };
  } finally {
    await stopChild(child, 5_000).catch(() => {});
    await src.end().catch(() => {});
    await tgt.end().catch(() => {});
    await cleanUp({ source: opts(s), target: opts(t) }, nc, id, db, log);
    await nc.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
