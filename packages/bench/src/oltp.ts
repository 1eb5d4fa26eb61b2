/**
 * `dfs bench e2e --workload oltp`: the shape real OLTP sources have. Several client connections
 * commit small transactions (4 row changes each: an update of an indexed column, an update of a
 * non-indexed column, a delete and an insert of one row, over 4 tables of 10,000 rows) as fast as
 * the source takes them, while nothing replicates. Then:
 *  1. catch-up: `dfs run` from the workload's start until the target has it all, beside MariaDB's
 *     own replication of the same binlog range (in the same run, for the ratio);
 *  2. steady latency at a share of the rate the source was written at (the goal: half), commit -> visible in the target.
 */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { cpus } from "node:os";
import { sleep } from "@dfs/common";
import { parseMysqlUrl } from "@dfs/mysql";
import { connectNats } from "@dfs/nats";
import { stackStatus, stackUrls } from "@dfs/stack";
import type { NatsConnection } from "@nats-io/transport-node";
import mysql from "mysql2/promise";
import { reportTrace, traceArrivals } from "./latency-trace.js";
import { type Followed, followCpu, peakRssMb } from "./proc.js";
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
import { binlogEnd } from "./workload.js";

export interface OltpOptions {
  /** How long the source is written (nothing replicating). */
  seconds: number;
  clients: number;
  tables: number;
  rowsPerTable: number;
  latencySeconds: number;
  /** The latency phase's rate as a share of the rate the source was written at (LATENCY_GOAL_SHARE for the goals). */
  latencyShare: number;
  replica: boolean;
  /** Extra lines for `dfs run`'s config (e.g. "dpu: { apply: { connections: 1 } }"). */
  extraConfig: string[];
  log: (s: string) => void;
}

export interface OltpResult {
  write: { seconds: number; txns: number; rowChanges: number; txnsPerSecond: number };
  catchUp: {
    seconds: number;
    txnsPerSecond: number;
    rowsPerSecond: number;
    captureSeconds: number | null;
    peakRssMb: number;
    longestStallSeconds: number;
    checksum: string;
  };
  replica: ReplicaResult | null;
  replicaNote: string;
  latency: {
    rateAsked: number;
    txns: number;
    txnsPerSecond: number;
    p50: number;
    p90: number;
    p99: number;
    max: number;
    peakRssMb: number;
    /** Cores each process used during the phase (the stack's servers, dfs run, this bench). */
    cpu: { name: string; cores: number }[];
  };
}

const tableName = (i: number) => `oltp_t${i + 1}`;
const TABLE = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
  id INT PRIMARY KEY,
  k INT NOT NULL,
  c CHAR(120) NOT NULL,
  pad CHAR(60) NOT NULL,
  KEY k (k)
) ENGINE=InnoDB`;
const DONE = "CREATE TABLE IF NOT EXISTS oltp_done (id INT PRIMARY KEY) ENGINE=InnoDB";
const LATENCY = "CREATE TABLE IF NOT EXISTS oltp_latency (id BIGINT PRIMARY KEY) ENGINE=InnoDB";

const text = (n: number, len: number) => `${n}-`.repeat(Math.ceil(len / 4)).slice(0, len);

/** The tables and their first rows: the same every time, so a replica can start from them too. */
export async function createTables(
  conn: Conn,
  db: string,
  o: Pick<OltpOptions, "tables" | "rowsPerTable">,
): Promise<void> {
  await conn.query(`CREATE DATABASE IF NOT EXISTS ${q(db)}`);
  await conn.query(`USE ${q(db)}`);
  for (let t = 0; t < o.tables; t++) {
    await conn.query(TABLE(tableName(t)));
    for (let from = 1; from <= o.rowsPerTable; from += 1000) {
      const values: unknown[] = [];
      const tuples: string[] = [];
      for (let id = from; id < Math.min(from + 1000, o.rowsPerTable + 1); id++) {
        tuples.push("(?,?,?,?)");
        values.push(id, id % 1000, text(id, 120), text(id * 7, 60));
      }
      await conn.query(`INSERT INTO ${tableName(t)} (id,k,c,pad) VALUES ${tuples.join(",")}`, values);
    }
  }
  await conn.query(DONE);
  await conn.query(LATENCY);
}

/** COUNT, SUM(k) and SUM(CRC32) of every row of every table. */
export async function checksum(conn: Conn, db: string, tables: number): Promise<string> {
  const parts: string[] = [];
  for (let t = 0; t < tables; t++) {
    const [r] = await conn.query(
      `SELECT COUNT(*) AS n, COALESCE(SUM(k),0) AS k, COALESCE(SUM(CRC32(CONCAT_WS('|',id,k,c,pad))),0) AS c FROM ${q(db)}.${tableName(t)}`,
    );
    const row = (r as { n: string; k: string; c: string }[])[0]!;
    parts.push(`${row.n}/${row.k}/${row.c}`);
  }
  return parts.join(" ");
}

/** A random generator per client, so runs are comparable. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** One OLTP transaction: 4 row changes over random rows of random tables. */
async function transaction(
  conn: Conn,
  rnd: () => number,
  o: Pick<OltpOptions, "tables" | "rowsPerTable">,
  latencyId?: number,
): Promise<void> {
  const table = () => tableName(Math.floor(rnd() * o.tables));
  const id = () => 1 + Math.floor(rnd() * o.rowsPerTable);
  await conn.query("BEGIN");
  await conn.query(`UPDATE ${table()} SET k = k + 1 WHERE id = ?`, [id()]);
  const n = id();
  await conn.query(`UPDATE ${table()} SET c = ? WHERE id = ?`, [text(Math.floor(rnd() * 1e6), 120), n]);
  const t = table();
  const d = id();
  await conn.query(`DELETE FROM ${t} WHERE id = ?`, [d]);
  await conn.query(`INSERT INTO ${t} (id,k,c,pad) VALUES (?,?,?,?)`, [
    d,
    Math.floor(rnd() * 1000),
    text(d, 120),
    text(d, 60),
  ]);
  if (latencyId !== undefined) await conn.query("INSERT INTO oltp_latency (id) VALUES (?)", [latencyId]);
  await conn.query("COMMIT");
}

/** Writes as fast as the source takes it, from `clients` connections, for `seconds`. */
export async function writeFlat(
  conns: Conn[],
  o: Pick<OltpOptions, "seconds" | "tables" | "rowsPerTable">,
): Promise<OltpResult["write"]> {
  const until = performance.now() + o.seconds * 1000;
  let txns = 0;
  const t0 = performance.now();
  await Promise.all(
    conns.map(async (c, i) => {
      const rnd = random(1234 + i);
      while (performance.now() < until) {
        await transaction(c, rnd, o);
        txns++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, txns, rowChanges: txns * 4, txnsPerSecond: txns / seconds };
}

/**
 * Paced OLTP transactions at `rate` per second over the clients (an absolute schedule), each also
 * inserting its number into oltp_latency; another connection polls the target for new numbers
 * every ~2 ms. Latency: from a transaction's COMMIT returning to the poll that first shows it.
 */
async function measureLatency(
  conns: Conn[],
  tgt: Conn,
  db: string,
  child: ChildProcess,
  rate: number,
  o: OltpOptions,
  nc: NatsConnection,
  sourceId: string,
): Promise<OltpResult["latency"]> {
  const total = Math.round(rate * o.latencySeconds);
  const trace = process.env.DFS_BENCH_LATENCY_TRACE
    ? traceArrivals(nc, sourceId, db, "oltp_latency", total)
    : null;
  const commitAt = new Float64Array(total + 1).fill(Number.NaN);
  const seenAt = new Float64Array(total + 1).fill(Number.NaN);
  let seen = 0;
  let minUnseen = 1;
  let writing = true;
  const poller = (async () => {
    const deadline = () => (writing ? Number.POSITIVE_INFINITY : performance.now() + 60_000);
    let stopAt = Number.POSITIVE_INFINITY;
    while (seen < total) {
      assertRunning(child, "dfs run");
      const [r] = await tgt.query(`SELECT id FROM ${q(db)}.oltp_latency WHERE id >= ?`, [minUnseen]);
      const now = performance.now();
      for (const { id } of r as { id: number | string }[]) {
        const n = Number(id);
        if (n <= total && Number.isNaN(seenAt[n]!)) {
          seenAt[n] = now;
          seen++;
        }
      }
      while (minUnseen <= total && !Number.isNaN(seenAt[minUnseen]!)) minUnseen++;
      if (!writing && stopAt === Number.POSITIVE_INFINITY) stopAt = deadline();
      if (now > stopAt)
        throw new Error(
          `the target shows ${seen} of ${total} latency transactions 60 s after the last write`,
        );
      await sleep(2);
    }
  })();
  const intervalMs = 1000 / rate;
  const cpu = followCpu(await phaseProcesses(child.pid!));
  const t0 = performance.now();
  let next = 1;
  await Promise.all(
    conns.map(async (c, i) => {
      const rnd = random(99 + i);
      for (;;) {
        const n = next++;
        if (n > total) return;
        const wait = t0 + (n - 1) * intervalMs - performance.now();
        if (wait > 0) await sleep(wait);
        await transaction(c, rnd, o, n);
        commitAt[n] = performance.now();
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const used = cpu();
  writing = false;
  await poller;
  const raw = Array.from({ length: total }, (_, i) => seenAt[i + 1]! - commitAt[i + 1]!);
  if (trace) {
    trace.stop();
    for (const line of reportTrace(commitAt, trace.at, seenAt, t0, total)) o.log(`latency trace: ${line}`);
  }
  const lat = raw.sort((a, b) => a - b);
  return {
    rateAsked: rate,
    txns: total,
    txnsPerSecond: total / seconds,
    p50: percentile(lat, 0.5),
    p90: percentile(lat, 0.9),
    p99: percentile(lat, 0.99),
    max: lat[lat.length - 1]!,
    peakRssMb: peakRssMb(child.pid!),
    cpu: used,
  };
}

/** The processes whose CPU the latency phase follows: the stack's servers (when it runs them) and dfs run. */
async function phaseProcesses(dfsPid: number): Promise<Followed[]> {
  const stack = await stackStatus().catch(() => []);
  const procs: Followed[] = [];
  for (const c of stack)
    if (c.up && c.pid) procs.push({ name: c.name === "nats" ? "NATS" : `${c.name} mariadbd`, pid: c.pid });
  procs.push({ name: "dfs run", pid: dfsPid });
  return procs;
}

/** The share of the source's rate at which the latency goals are set. */
export const LATENCY_GOAL_SHARE = 0.5;

/** "half" for the goal's share, else the share as a fraction ("0.25 of"). */
export function shareText(share: number): string {
  return share === LATENCY_GOAL_SHARE ? "half" : `${share} of`;
}

/** "source mariadbd 0.62, ..., total 1.97 of 2": cores each process used, of the machine's (as recorded). */
export function cpuText(cpu: readonly { name: string; cores: number }[]): string {
  const total = cpu.reduce((a, c) => a + c.cores, 0);
  return `${cpu.map((c) => `${c.name} ${c.cores.toFixed(2)}`).join(", ")}; total ${total.toFixed(2)} of ${cpus().length}`;
}

export async function benchOltp(o: OltpOptions): Promise<OltpResult> {
  const { log } = o;
  const urls = stackUrls();
  const s = parseMysqlUrl(urls.sourceUrl);
  const t = parseMysqlUrl(urls.targetUrl);
  const id = `oltp${Date.now().toString(36)}`;
  const db = `dfs_bench_${id}`;
  const opts = (u: typeof s) => ({ host: u.host, port: u.port, user: u.user, password: u.password });
  const conns = await Promise.all(Array.from({ length: o.clients }, () => mysql.createConnection(opts(s))));
  const src = conns[0]!;
  const tgt = await mysql.createConnection(opts(t));
  const nc = await connectNats({ url: urls.natsUrl, name: "dfs-bench-oltp" });
  let child: ChildProcess | null = null;
  let dir = "";
  try {
    log(
      `oltp: ${o.tables} tables of ${o.rowsPerTable.toLocaleString("en")} rows on the source and the target...`,
    );
    await createTables(src, db, o);
    await createTables(tgt, db, o);
    for (const c of conns) await c.query(`USE ${q(db)}`);
    const start = await binlogEnd(src);
    log(`oltp: ${o.clients} clients writing for ${o.seconds} s...`);
    const write = await writeFlat(conns, o);
    const sentinelAt = await binlogEnd(src);
    await src.query("INSERT INTO oltp_done (id) VALUES (1)");
    const end = await binlogEnd(src);
    const expected = await checksum(src, db, o.tables);
    log(
      `oltp: ${write.txns.toLocaleString("en")} transactions (${Math.round(write.txnsPerSecond).toLocaleString("en")}/s) written; binlog ${start} -> ${end}`,
    );

    const run = startDfsRun(urls, id, db, start, o.extraConfig);
    child = run.child;
    dir = run.dir;
    const caught = await waitCaughtUp(
      run,
      nc,
      tgt,
      { db, table: "oltp_done" },
      sentinelAt.sortable,
      end.sortable,
    );
    const got = await checksum(tgt, db, o.tables);
    if (got !== expected)
      throw new Error(
        `target checksum ${got} differs from the source's ${expected}; ${await diagnose(nc, tgt, id)}`,
      );
    const catchUp: OltpResult["catchUp"] = {
      seconds: caught.seconds,
      txnsPerSecond: write.txns / caught.seconds,
      rowsPerSecond: write.rowChanges / caught.seconds,
      captureSeconds: caught.captureSeconds,
      peakRssMb: caught.peakRssMb,
      longestStallSeconds: caught.longestStallSeconds,
      checksum: got,
    };
    log(
      `oltp catch-up: ${caught.seconds.toFixed(2)} s, ${Math.round(catchUp.txnsPerSecond).toLocaleString("en")} transactions/s; checksums match; longest stall ${caught.longestStallSeconds.toFixed(1)} s`,
    );

    const rate = Math.max(1, Math.round(write.txnsPerSecond * o.latencyShare));
    log(
      `latency: ${rate} transactions/s (${shareText(o.latencyShare)} the source's rate) for ${o.latencySeconds} s...`,
    );
    await sleep(1000);
    const latency = await measureLatency(conns, tgt, db, child, rate, o, nc, id);
    log(`latency: p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms`);
    log(`latency: cores used meanwhile: ${cpuText(latency.cpu)}`);
    await stopChild(child, 15_000);

    let replica: ReplicaResult | null = null;
    let replicaNote = "";
    if (o.replica) {
      try {
        replica = await measureReplica({
          source: s,
          src,
          db,
          tables: [],
          prepare: (c) => createTables(c, db, o),
          sentinelTable: "oltp_done",
          start,
          end,
          expected,
          rows: write.rowChanges,
          checksum: (c) => checksum(c, db, o.tables),
          log,
        });
        log(
          `replica: ${replica.seconds.toFixed(2)} s, ${Math.round(write.txns / replica.seconds).toLocaleString("en")} transactions/s`,
        );
      } catch (err) {
        replicaNote = `MariaDB replication comparison not measured: ${(err as Error).message}`;
        log(replicaNote);
      }
    } else replicaNote = "MariaDB replication comparison not measured (--no-replica)";
    return { write, catchUp, replica, replicaNote, latency };
  } finally {
    await stopChild(child, 5_000).catch(() => {});
    for (const c of conns) await c.end().catch(() => {});
    await tgt.end().catch(() => {});
    await cleanUp({ source: opts(s), target: opts(t) }, nc, id, db, log);
    await nc.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
