/**
 * What the end-to-end benches share: a `dfs run` child process started at a binlog position and
 * followed until the target has caught up, MariaDB's own replication of the same binlog range for
 * the ratio, and the bookkeeping around them (checksums, diagnostics, clean-up).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Headers, type Position } from "@dfs/codec";
import { sleep } from "@dfs/common";
import { type connectNats, lastPublished, subjects } from "@dfs/nats";
import { MARIADB_TUNING } from "@dfs/stack";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import mysql from "mysql2/promise";
import { cpuSeconds, freePort, peakRssMb } from "./proc.js";

const here = dirname(fileURLToPath(import.meta.url));

export type Conn = mysql.Connection;
export type Nats = Awaited<ReturnType<typeof connectNats>>;

export const q = (name: string) => `\`${name.replace(/`/g, "``")}\``;

export function projectRoot(): string {
  return join(here, "..", "..", "..");
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export function assertRunning(child: ChildProcess, what: string): void {
  if (exited(child))
    throw new Error(`${what} exited (code ${child.exitCode}, signal ${child.signalCode}) during the run`);
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess | null, graceMs: number): Promise<void> {
  if (!child || exited(child)) return;
  const gone = new Promise<void>((res) => child.once("exit", () => res()));
  child.kill("SIGTERM");
  const timer = sleep(graceMs).then(() => "timeout" as const);
  if ((await Promise.race([gone.then(() => "exited" as const), timer])) === "timeout") {
    child.kill("SIGKILL");
    await gone;
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function which(cmd: string): string | null {
  try {
    return execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

/** Whether the sentinel row is visible; a missing database or table counts as "not yet". */
export async function sentinelSeen(conn: Conn, db: string, table: string): Promise<boolean> {
  try {
    const [r] = await conn.query(`SELECT COUNT(*) AS n FROM ${q(db)}.${q(table)}`);
    return Number((r as { n: number }[])[0]?.n ?? 0) > 0;
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    if (errno === 1049 || errno === 1146) return false; // unknown database / table
    throw err;
  }
}

/** A `dfs run` of one bench: its config, the process, and where its files are. */
export interface DfsRun {
  id: string;
  dir: string;
  child: ChildProcess;
  /** When the process was spawned (performance.now()). */
  t0: number;
}

/**
 * Starts `dfs run` (capture, DPU and monitor in one process) reading the bench database from
 * `start`. DFS_BENCH_NODE_ARGS passes node flags (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof");
 * DFS_BENCH_DFS_BIN runs another checkout's `dfs` (an A/B run against an earlier commit).
 * `extra` lines are added to the YAML config, `opts.capture` lines (indented) under its `capture:`.
 * `opts.dir` reuses an earlier run's directory (its journal): a restart after the process was killed.
 */
export function startDfsRun(
  urls: { sourceUrl: string; targetUrl: string; natsUrl: string },
  id: string,
  db: string,
  start: Position,
  extra: string[] = [],
  opts: { dir?: string; capture?: string[] } = {},
): DfsRun {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "dfs-bench-run-"));
  const cfgFile = join(dir, "run.yaml");
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
      ...(opts.capture ?? []),
      "log: { level: warn }",
      ...extra,
      "",
    ].join("\n"),
  );
  const t0 = performance.now();
  const child = spawnDfs(["run", "-c", cfgFile], { bin: process.env.DFS_BENCH_DFS_BIN || undefined });
  return { id, dir, child, t0 };
}

/**
 * `node dfs.js ...args` as a child with this process's output. DFS_BENCH_NODE_ARGS adds node flags
 * (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") unless `nodeArgs` is false; `bin` replaces dfs.js.
 */
export function spawnDfs(
  args: string[],
  o: { nodeArgs?: boolean; bin?: string | undefined } = {},
): ChildProcess {
  const flags =
    o.nodeArgs === false ? [] : (process.env.DFS_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const bin = o.bin ?? join(projectRoot(), "packages/cli/bin/dfs.js");
  return spawn(process.execPath, [...flags, bin, ...args], { stdio: ["ignore", "inherit", "inherit"] });
}

/**
 * Row changes and messages in a stream, and the sequence of its last batch, read from its headers
 * only (the figures of a bench count only if nothing is missing).
 */
export async function streamBatches(
  nc: Nats,
  stream: string,
): Promise<{ rows: number; messages: number; lastBatch: number }> {
  const info = await (await jetstreamManager(nc)).streams.info(stream);
  const consumer = await jetstream(nc).consumers.get(stream, {
    opt_start_seq: info.state.first_seq,
    headers_only: true,
  });
  let rows = 0;
  let messages = 0;
  let lastBatch = 0;
  let seq = 0;
  while (seq < info.state.last_seq) {
    const batch = await consumer.fetch({ max_messages: 5000, expires: 2000 });
    let got = 0;
    for await (const m of batch) {
      got++;
      seq = m.seq;
      if (m.headers?.get(Headers.kind) === "batch") {
        messages++;
        rows += Number(m.headers.get(Headers.rows));
        lastBatch = m.seq;
      }
    }
    if (got === 0) break;
  }
  return { rows, messages, lastBatch };
}

export interface CaughtUp {
  /** From spawning `dfs run` to the sentinel row being visible in the target. */
  seconds: number;
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
  /** Samples of the DPU's pending messages and whether its checkpoint moved, for stalls. */
  longestStallSeconds: number;
}

/**
 * Follows a `dfs run` until the sentinel row is in the target and the DPU's checkpoint has passed it. `sentinelKey` is the position of
 * the sentinel's transaction, `endKey` the binlog end after it (sortable forms). Also notes when
 * capture had published everything, and the longest time the DPU's checkpoint stood still while
 * the stream held messages after it (idle time with work pending).
 */
export async function waitCaughtUp(
  run: DfsRun,
  nc: Nats,
  tgt: Conn,
  sentinel: { db: string; table: string },
  sentinelKey: string,
  endKey: string,
  timeoutMs = 1_800_000,
): Promise<CaughtUp> {
  const pid = run.child.pid!;
  const stream = subjects.streamName(run.id);
  let peak = 0;
  let captureSeconds: number | null = null;
  let dpuAtCapture: CaughtUp["dpuAtCapture"] = null;
  let lastApplied = -1;
  let lastMove = performance.now();
  let longestStall = 0;
  let seen = false;
  let endSeq: number | null = null;
  let firstPublished: number | null = null;
  let firstApplied: number | null = null;
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    assertRunning(run.child, "dfs run");
    peak = Math.max(peak, peakRssMb(pid));
    const last = await lastPublished(nc, stream).catch(() => null);
    if (firstPublished === null && last) firstPublished = (performance.now() - run.t0) / 1000;
    if (captureSeconds === null) {
      // Only the bench database is captured, so the one batch after the workload is the
      // sentinel's; a heartbeat at or past the end means the reader passed it too.
      const pos = last?.headers[Headers.position] ?? "";
      const kind = last?.headers[Headers.kind];
      if ((kind === "batch" && pos >= sentinelKey) || (kind === "heartbeat" && pos >= endKey)) {
        captureSeconds = (performance.now() - run.t0) / 1000;
        dpuAtCapture = { applied: await checkpointSeq(tgt, run.id), last: last!.seq };
        endSeq = last!.seq;
      }
    }
    if (i % 4 === 0 || firstApplied === null) {
      const applied = await checkpointSeq(tgt, run.id);
      const now = performance.now();
      if (firstApplied === null && applied > 0) firstApplied = (now - run.t0) / 1000;
      if (applied !== lastApplied) {
        lastApplied = applied;
        lastMove = now;
      } else if (last && last.seq > applied) longestStall = Math.max(longestStall, (now - lastMove) / 1000);
    }
    // Lanes of one group commit apart: the sentinel can be visible a moment before an independent
    // transaction of its group. Caught up = the sentinel visible and the DPU's checkpoint (which
    // moves once every lane committed) at the end of the stream as capture published it.
    if (!seen) seen = await sentinelSeen(tgt, sentinel.db, sentinel.table);
    if (seen && endSeq !== null && (await checkpointSeq(tgt, run.id)) >= endSeq) break;
    if (Date.now() > deadline)
      throw new Error(`the target did not catch up within ${timeoutMs / 60_000} minutes`);
    await sleep(50);
  }
  return {
    seconds: (performance.now() - run.t0) / 1000,
    captureSeconds,
    dpuAtCapture,
    firstPublishedSeconds: firstPublished,
    firstAppliedSeconds: firstApplied,
    cpuSeconds: cpuSeconds(pid),
    peakRssMb: Math.max(peak, peakRssMb(pid)),
    longestStallSeconds: longestStall,
  };
}

/** The DPU's checkpoint in the target: the last stream sequence applied (0 when none yet). */
export async function checkpointSeq(tgt: Conn, id: string): Promise<number> {
  const [r] = await tgt
    .query("SELECT stream_seq FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [`${id}:dpu-default`])
    .catch(() => [[]]);
  return Number((r as { stream_seq: string }[])[0]?.stream_seq ?? 0);
}

/** What the stream, the DPU's consumer, the dead letters and the checkpoint say, for a failed check. */
export async function diagnose(nc: Nats, tgt: Conn, id: string): Promise<string> {
  const out: string[] = [];
  try {
    const jsm = await jetstreamManager(nc);
    const st = (await jsm.streams.info(subjects.streamName(id))).state;
    out.push(
      `stream: ${st.messages} messages, ${st.bytes} bytes (${Math.round(st.bytes / Math.max(1, st.messages))} per message), seq ${st.first_seq}-${st.last_seq}`,
    );
    const ci = await jsm.consumers.info(subjects.streamName(id), "dpu-default");
    out.push(
      `consumer dpu-default: delivered up to ${ci.delivered.stream_seq}, ack floor ${ci.ack_floor.stream_seq}, ack pending ${ci.num_ack_pending}, pending ${ci.num_pending}`,
    );
    const dlq = (await jsm.streams.info(subjects.dlqStreamName(id))).state;
    out.push(`dead letters: ${dlq.messages}`);
  } catch (err) {
    out.push(`NATS: ${(err as Error).message}`);
  }
  out.push(`target checkpoint: stream seq ${await checkpointSeq(tgt, id)}`);
  return out.join("; ");
}

export interface ReplicaResult {
  seconds: number;
  rowsPerSecond: number;
  checksum: string;
}

/**
 * MariaDB's own replication over the same binlog range: a temporary mariadbd (same flags as the
 * stack's target, binlog on and log-slave-updates so that it, too, binlogs what it applies) as a
 * replica of the source with replicate-do-db, started from the workload's start position. The
 * `tables` are created on it first (they existed before the start position); `checksum` must then
 * give the source's value.
 */
export async function measureReplica(o: {
  source: { host: string; port: number };
  src: Conn;
  db: string;
  tables: string[];
  /** Creates the tables on the replica instead of copying `tables`' definitions (e.g. with their first rows). */
  prepare?(conn: Conn): Promise<void>;
  sentinelTable: string;
  start: Position;
  end: Position;
  expected: string;
  rows: number;
  checksum(conn: Conn): Promise<string>;
  log: (s: string) => void;
}): Promise<ReplicaResult> {
  const mariadbd = which("mariadbd");
  const installDb = which("mariadb-install-db");
  if (!mariadbd || !installDb) throw new Error("mariadbd or mariadb-install-db not found on PATH");
  const dir = mkdtempSync(join(tmpdir(), "dfs-e2e-replica-"));
  const user = process.getuid?.() === 0 ? ["--user=root"] : [];
  let server: ChildProcess | null = null;
  let conn: Conn | null = null;
  const { log, db } = o;
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
    // The tables were created (and filled) before the start position: the replica gets them as they were.
    if (o.prepare) await o.prepare(conn);
    else {
      await conn.query(`CREATE DATABASE ${q(db)}`);
      await conn.query(`USE ${q(db)}`);
      for (const table of o.tables) {
        const [r] = await o.src.query(`SHOW CREATE TABLE ${q(db)}.${q(table)}`);
        await conn.query((r as Record<string, string>[])[0]!["Create Table"]!);
      }
    }
    await conn.query(
      `CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=?, MASTER_USER='root', MASTER_PASSWORD='',
         MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no`,
      [o.source.host, o.source.port, o.start.file, o.start.pos],
    );
    log("replica: replicating the same binlog range...");
    const t0 = performance.now();
    await conn.query(`START SLAVE UNTIL MASTER_LOG_FILE=?, MASTER_LOG_POS=?`, [o.end.file, o.end.pos]);
    const until = Date.now() + 1_800_000;
    for (let i = 0; ; i++) {
      if (await sentinelSeen(conn, db, o.sentinelTable)) break;
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
    const sum = await o.checksum(conn);
    if (sum !== o.expected)
      throw new Error(`replica checksum ${sum} differs from the source's ${o.expected}`);
    await conn.query("STOP SLAVE").catch(() => {});
    return { seconds, rowsPerSecond: o.rows / seconds, checksum: sum };
  } finally {
    await conn?.end().catch(() => {});
    await stopChild(server, 30_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Removes what a bench left: its streams, its databases on both servers, its checkpoint rows. */
export async function cleanUp(
  urls: { source: mysql.ConnectionOptions; target: mysql.ConnectionOptions },
  nc: Nats,
  id: string,
  db: string,
  log: (s: string) => void,
): Promise<void> {
  const jsm = await jetstreamManager(nc).catch(() => null);
  await jsm?.streams.delete(subjects.streamName(id)).catch(() => {});
  await jsm?.streams.delete(subjects.dlqStreamName(id)).catch(() => {});
  const tidy = async (o: mysql.ConnectionOptions, statements: [string, unknown[]][]) => {
    try {
      const c = await mysql.createConnection(o);
      try {
        for (const [sql, params] of statements) await c.query(sql, params);
      } finally {
        await c.end().catch(() => {});
      }
    } catch (err) {
      log(
        `cleanup on ${o.host}:${o.port} failed (${(err as Error).message}); left behind: ${statements.map(([sql, p]) => `${sql} ${JSON.stringify(p)}`).join("; ")}`,
      );
    }
  };
  await tidy(urls.source, [[`DROP DATABASE IF EXISTS ${q(db)}`, []]]);
  await tidy(urls.target, [
    [`DROP DATABASE IF EXISTS ${q(db)}`, []],
    ["DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [`${id}:dpu-default`]],
    ["DELETE FROM `_dfs`.`_dfs_applied` WHERE consumer = ?", [`${id}:dpu-default`]],
  ]);
}
