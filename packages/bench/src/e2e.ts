/**
 * `dfs bench e2e`: the whole pipeline, binlog -> capture -> JetStream -> DPU -> target, in one
 * `dfs run` child process. Three measurements in one run:
 *  1. catch-up: N row changes already waiting in the binlog, from starting `dfs run` to the target
 *     holding them all (checked with a full checksum afterwards);
 *  2. steady latency: the pipeline caught up, a paced stream of small transactions, the time from
 *     each source COMMIT returning to its rows being visible in the target;
 *  3. the same catch-up applied by MariaDB's own replication (a temporary replica), for the ratio.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Headers, type Position } from "@dfs/codec";
import { sleep } from "@dfs/common";
import { parseMysqlUrl } from "@dfs/mysql";
import { connectNats, lastPublished, subjects } from "@dfs/nats";
import { MARIADB_TUNING, stackUrls } from "@dfs/stack";
import { jetstreamManager } from "@nats-io/jetstream";
import mysql from "mysql2/promise";
import { freePort, peakRssMb } from "./proc.js";
import { BENCH_TABLE, binlogEnd, type WorkloadResult, writeMixedWorkload } from "./workload.js";

const here = dirname(fileURLToPath(import.meta.url));

type Conn = mysql.Connection;

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

export interface ReplicaResult {
  seconds: number;
  rowsPerSecond: number;
  checksum: string;
}

export interface E2eResult {
  catchUp: CatchUpResult;
  latency: LatencyResult;
  replica: ReplicaResult | null;
  /** Why the replica figure is missing, when it is. */
  replicaNote: string;
}

function projectRoot(): string {
  return join(here, "..", "..", "..");
}

const q = (name: string) => `\`${name.replace(/`/g, "``")}\``;

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

/** Whether the sentinel row is visible; a missing database or table counts as "not yet". */
async function sentinelSeen(conn: Conn, db: string): Promise<boolean> {
  try {
    const [r] = await conn.query(`SELECT COUNT(*) AS n FROM ${q(db)}.bench_done`);
    return Number((r as { n: number }[])[0]?.n ?? 0) > 0;
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    if (errno === 1049 || errno === 1146) return false; // unknown database / table
    throw err;
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function assertRunning(child: ChildProcess, what: string): void {
  if (exited(child))
    throw new Error(`${what} exited (code ${child.exitCode}, signal ${child.signalCode}) during the run`);
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
async function stopChild(child: ChildProcess | null, graceMs: number): Promise<void> {
  if (!child || exited(child)) return;
  const gone = new Promise<void>((res) => child.once("exit", () => res()));
  child.kill("SIGTERM");
  const timer = sleep(graceMs).then(() => "timeout" as const);
  if ((await Promise.race([gone.then(() => "exited" as const), timer])) === "timeout") {
    child.kill("SIGKILL");
    await gone;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
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

function which(cmd: string): string | null {
  try {
    return execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

/**
 * MariaDB's own replication over the same binlog range: a temporary mariadbd (same flags as the
 * stack's target, binlog on and log-slave-updates so that it, too, binlogs what it applies) as a
 * replica of the source with replicate-do-db, started from the workload's start position.
 */
async function measureReplica(
  source: { host: string; port: number },
  src: Conn,
  db: string,
  start: Position,
  end: Position,
  expected: string,
  rows: number,
  log: (s: string) => void,
): Promise<ReplicaResult> {
  const mariadbd = which("mariadbd");
  const installDb = which("mariadb-install-db");
  if (!mariadbd || !installDb) throw new Error("mariadbd or mariadb-install-db not found on PATH");
  const dir = mkdtempSync(join(tmpdir(), "dfs-e2e-replica-"));
  const user = process.getuid?.() === 0 ? ["--user=root"] : [];
  let server: ChildProcess | null = null;
  let conn: Conn | null = null;
  try {
    log("replica: initialising a temporary mariadbd...");
    execFileSync(
      installDb,
      [
        "--no-defaults",
        `--datadir=${join(dir, "data")}`,
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        ...user,
      ],
      { stdio: "ignore", timeout: 120_000 },
    );
    const port = await freePort();
    const serverId = 100_000 + Math.floor(Math.random() * 1_000_000);
    server = spawn(
      mariadbd,
      [
        "--no-defaults",
        ...user,
        `--datadir=${join(dir, "data")}`,
        `--port=${port}`,
        `--socket=${join(dir, "replica.sock")}`,
        "--bind-address=127.0.0.1",
        `--server-id=${serverId}`,
        "--log-bin=mysql-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--log-slave-updates=1",
        "--relay-log=relay-bin",
        "--skip-slave-start",
        `--replicate-do-db=${db}`,
        `--pid-file=${join(dir, "mariadbd.pid")}`,
        `--log-error=${join(dir, "error.log")}`,
        ...MARIADB_TUNING,
      ],
      { stdio: "ignore" },
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      assertRunning(server, "the replica mariadbd");
      conn = await mysql
        .createConnection({ host: "127.0.0.1", port, user: "root", connectTimeout: 1000 })
        .catch(() => null);
      if (conn) break;
      if (Date.now() > deadline) throw new Error("the replica mariadbd did not accept connections in 60 s");
      await sleep(200);
    }
    // The tables were created before the start position: give the replica the same definitions.
    await conn.query(`CREATE DATABASE ${q(db)}`);
    for (const table of ["bench_rows", "bench_done"]) {
      const [r] = await src.query(`SHOW CREATE TABLE ${q(db)}.${q(table)}`);
      await conn.query(`USE ${q(db)}`);
      await conn.query((r as Record<string, string>[])[0]!["Create Table"]!);
    }
    await conn.query(
      `CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=?, MASTER_USER='root', MASTER_PASSWORD='',
         MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no`,
      [source.host, source.port, start.file, start.pos],
    );
    log("replica: replicating the same binlog range...");
    const t0 = performance.now();
    await conn.query(`START SLAVE UNTIL MASTER_LOG_FILE=?, MASTER_LOG_POS=?`, [end.file, end.pos]);
    const until = Date.now() + 1_800_000;
    for (let i = 0; ; i++) {
      if (await sentinelSeen(conn, db)) break;
      if (i % 20 === 0) {
        const [s] = await conn.query("SHOW SLAVE STATUS");
        const st = (s as Record<string, unknown>[])[0] ?? {};
        if (Number(st.Last_SQL_Errno ?? 0) !== 0 || Number(st.Last_IO_Errno ?? 0) !== 0)
          throw new Error(`replication failed: ${String(st.Last_IO_Error)} ${String(st.Last_SQL_Error)}`);
      }
      if (Date.now() > until) throw new Error("the replica did not catch up within 30 minutes");
      await sleep(50);
    }
    const seconds = (performance.now() - t0) / 1000;
    const sum = await tableChecksum(conn, db);
    if (sum.sum !== expected)
      throw new Error(`replica checksum ${sum.sum} differs from the source's ${expected}`);
    await conn.query("STOP SLAVE").catch(() => {});
    return { seconds, rowsPerSecond: rows / seconds, checksum: sum.sum };
  } finally {
    await conn?.end().catch(() => {});
    await stopChild(server, 30_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The DPU's checkpoint in the target: the last stream sequence applied (0 when none yet). */
async function checkpointSeq(tgt: Conn, id: string): Promise<number> {
  const [r] = await tgt
    .query("SELECT stream_seq FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [`${id}:dpu-default`])
    .catch(() => [[]]);
  return Number((r as { stream_seq: string }[])[0]?.stream_seq ?? 0);
}

/** What the stream, the DPU's consumer, the dead letters and the checkpoint say, for a failed check. */
async function diagnose(nc: Awaited<ReturnType<typeof connectNats>>, tgt: Conn, id: string): Promise<string> {
  const out: string[] = [];
  try {
    const jsm = await jetstreamManager(nc);
    const st = (await jsm.streams.info(subjects.streamName(id))).state;
    out.push(
      `stream: ${st.messages} messages, ${st.bytes} bytes (${Math.round(st.bytes / Math.max(1, st.messages))} per message), seq ${st.first_seq}-${st.last_seq}`,
    );
    const ci = await jsm.consumers.info(subjects.streamName(id), "dpu-default");
    out.push(
      `consumer dpu-default: delivered up to ${ci.delivered.stream_seq}, ack floor ${ci.ack_floor.stream_seq}, ack pending ${ci.num_ack_pending}, redelivered ${ci.num_redelivered}, pending ${ci.num_pending}`,
    );
    const dlq = (await jsm.streams.info(subjects.dlqStreamName(id))).state;
    out.push(`dead letters: ${dlq.messages}`);
  } catch (err) {
    out.push(`NATS: ${(err as Error).message}`);
  }
  out.push(`target checkpoint: stream seq ${await checkpointSeq(tgt, id)}`);
  return out.join("; ");
}

/** The whole e2e benchmark; every figure it returns was measured in this call. */
export async function benchE2e(o: E2eOptions): Promise<E2eResult> {
  const { log } = o;
  const urls = stackUrls();
  const s = parseMysqlUrl(urls.sourceUrl);
  const t = parseMysqlUrl(urls.targetUrl);
  const id = `e2e${Date.now().toString(36)}`;
  const db = `dfs_bench_${id}`;
  const dir = mkdtempSync(join(tmpdir(), "dfs-e2e-"));
  const connect = (u: typeof s) =>
    mysql.createConnection({ host: u.host, port: u.port, user: u.user, password: u.password });
  const src = await connect(s);
  const tgt = await connect(t);
  const nc = await connectNats({ url: urls.natsUrl, name: "dfs-bench-e2e" });
  let child: ChildProcess | null = null;
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
    const sentinelKey = sentinelAt.sortable;
    await src.query("INSERT INTO bench_done (id) VALUES (1)");
    const end = await binlogEnd(src);
    const endKey = end.sortable;
    const expected = await tableChecksum(src, db);
    log(`catch-up: ${workload.seconds.toFixed(1)} s to write; binlog ${start} -> ${end}`);

    const cfgFile = join(dir, "e2e.yaml");
    writeFileSync(
      cfgFile,
      [
        "source:",
        `  id: ${id}`,
        `  url: ${urls.sourceUrl}`,
        `  serverId: ${10_000 + Math.floor(Math.random() * 90_000)}`,
        `  include: { databases: [${db}] }`,
        `  start: { from: position, file: ${start.file}, position: ${start.pos} }`,
        "target:",
        `  url: ${urls.targetUrl}`,
        `nats: { url: "${urls.natsUrl}" }`,
        "capture:",
        `  journal: { path: ${join(dir, "journal.db")} }`,
        "log: { level: warn }",
        "",
      ].join("\n"),
    );
    // DFS_BENCH_NODE_ARGS passes flags to the `dfs run` process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = (process.env.DFS_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
    const t0 = performance.now();
    child = spawn(
      process.execPath,
      [...nodeArgs, join(projectRoot(), "packages/cli/bin/dfs.js"), "run", "-c", cfgFile],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    const pid = child.pid!;
    const stream = subjects.streamName(id);
    let peak = 0;
    let captureSeconds: number | null = null;
    let dpuAtCapture: CatchUpResult["dpuAtCapture"] = null;
    const deadline = Date.now() + 1_800_000;
    for (;;) {
      assertRunning(child, "dfs run");
      peak = Math.max(peak, peakRssMb(pid));
      if (captureSeconds === null) {
        // Only the bench database is captured, so the one batch after the workload is the
        // sentinel's; a heartbeat at or past the end means the reader passed it too.
        const last = await lastPublished(nc, stream).catch(() => null);
        const pos = last?.headers[Headers.position] ?? "";
        const kind = last?.headers[Headers.kind];
        if ((kind === "batch" && pos >= sentinelKey) || (kind === "heartbeat" && pos >= endKey)) {
          captureSeconds = (performance.now() - t0) / 1000;
          dpuAtCapture = { applied: await checkpointSeq(tgt, id), last: last!.seq };
        }
      }
      if (await sentinelSeen(tgt, db)) break;
      if (Date.now() > deadline) throw new Error("the target did not catch up within 30 minutes");
      await sleep(50);
    }
    const seconds = (performance.now() - t0) / 1000;
    peak = Math.max(peak, peakRssMb(pid));
    const got = await tableChecksum(tgt, db);
    if (got.sum !== expected.sum)
      throw new Error(
        `target checksum ${got.sum} differs from the source's ${expected.sum} (count/sum k/crc); ${await diagnose(nc, tgt, id)}`,
      );
    log(
      `catch-up: ${seconds.toFixed(2)} s, ${Math.round(o.rows / seconds).toLocaleString("en")} rows/s; checksum ${got.sum} matches`,
    );
    const catchUp: CatchUpResult = {
      rows: o.rows,
      workload,
      start,
      end,
      seconds,
      rowsPerSecond: o.rows / seconds,
      captureSeconds,
      dpuAtCapture,
      peakRssMb: peak,
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
        replica = await measureReplica(s, src, db, start, end, expected.sum, o.rows, log);
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
    const jsm = await jetstreamManager(nc).catch(() => null);
    await jsm?.streams.delete(subjects.streamName(id)).catch(() => {});
    await jsm?.streams.delete(subjects.dlqStreamName(id)).catch(() => {});
    await src.end().catch(() => {});
    await tgt.end().catch(() => {});
    // Fresh connections: the run's own may have died with a restarted server.
    const tidy = async (u: typeof s, statements: [string, unknown[]][]) => {
      try {
        const c = await connect(u);
        try {
          for (const [sql, params] of statements) await c.query(sql, params);
        } finally {
          await c.end().catch(() => {});
        }
      } catch (err) {
        log(
          `cleanup on ${u.host}:${u.port} failed (${(err as Error).message}); left behind: ${statements.map(([sql, p]) => `${sql} ${JSON.stringify(p)}`).join("; ")}`,
        );
      }
    };
    await tidy(s, [[`DROP DATABASE IF EXISTS ${q(db)}`, []]]);
    await tidy(t, [
      [`DROP DATABASE IF EXISTS ${q(db)}`, []],
      ["DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [`${id}:dpu-default`]],
    ]);
    await nc.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
