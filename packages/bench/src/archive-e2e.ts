/**
 * `dfs bench archive`, end to end: the path the backup use runs after capture. Row changes are
 * written to a source table (types that must round-trip: BIGINT UNSIGNED key, DECIMAL(65,30),
 * DATETIME(6), VARCHAR, JSON, BLOB), captured into the stream by `dfs capture` (not timed), then
 * `dfs dpu -c FILE` with an `archive` section and no target is spawned, and time runs from the
 * spawn to the archive's checkpoint (written in the same SQLite transaction as the rows) covering
 * the stream's last batch: JetStream -> stream reader -> transaction builder -> archive sink ->
 * SQLite commit, node start-up included.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ArchiveReader, archiveStats } from "@dfs/archive";
import { Headers, type Position } from "@dfs/codec";
import { sleep } from "@dfs/common";
import { connectNats, lastPublished, subjects } from "@dfs/nats";
import { stackUp, stackUrls } from "@dfs/stack";
import { jetstreamManager } from "@nats-io/jetstream";
import mysql from "mysql2/promise";
import { cpuSeconds, peakRssMb } from "./proc.js";
import { assertRunning, q, spawnDfs, stopChild, streamBatches } from "./run.js";
import { binlogEnd } from "./workload.js";

const TABLE = `CREATE TABLE bench_archive (
  id BIGINT UNSIGNED PRIMARY KEY,
  amount DECIMAL(65,30) NOT NULL,
  at DATETIME(6) NOT NULL,
  name VARCHAR(100) NOT NULL,
  doc JSON NOT NULL,
  bin BLOB NOT NULL
) ENGINE=InnoDB`;
/** Rows per source transaction, and transactions per round trip while writing the workload. */
const TXN_ROWS = 10;
const CHUNK = 1000;

export interface ArchiveE2eResult {
  /** Row changes in the stream (the workload's, counted from the messages). */
  rows: number;
  messages: number;
  transactions: number;
  /** Seconds to write the workload and to capture it (not part of the figure). */
  writeSeconds: number;
  captureSeconds: number;
  /** From spawning `dfs dpu` to the archive's checkpoint covering the last batch. */
  seconds: number;
  rowsPerSecond: number;
  /** From spawning to the archive's first checkpoint (node start-up, NATS, the consumer). */
  firstCommitSeconds: number;
  /** Rows over the time from the first checkpoint seen to the last (start-up left out). */
  steadyRowsPerSecond: number;
  cpuSeconds: number;
  peakRssMb: number;
  files: number;
  bytes: number;
}

/** One chunk of 1,000 row changes: 600 inserts, 300 updates, 100 deletes, 10 rows per transaction. */
function chunkSql(c: number): string {
  const base = c * 600;
  const txns: string[] = [];
  const id = (n: number) => `18446744073709551615 - ${base + n}`;
  for (let t = 0; t < 60; t++) {
    const values: string[] = [];
    for (let r = 0; r < TXN_ROWS; r++) {
      const n = t * TXN_ROWS + r;
      const k = base + n;
      values.push(
        `(${id(n)},'${k}.123456789012345678901234567890','2024-02-29 23:59:59.${String(k % 1_000_000).padStart(6, "0")}','customer ${k}','{"id": ${k}, "tags": ["a", "b"]}',UNHEX('${(k & 0xffff).toString(16).padStart(4, "0")}00ff'))`,
      );
    }
    txns.push(`INSERT INTO bench_archive VALUES ${values.join(",")}`);
  }
  for (let t = 0; t < 30; t++)
    txns.push(
      `UPDATE bench_archive SET amount = amount + 1, name = CONCAT(name, '+') WHERE id BETWEEN ${id(t * TXN_ROWS + TXN_ROWS - 1)} AND ${id(t * TXN_ROWS)}`,
    );
  for (let t = 0; t < 10; t++) {
    const first = 300 + t * TXN_ROWS;
    txns.push(`DELETE FROM bench_archive WHERE id BETWEEN ${id(first + TXN_ROWS - 1)} AND ${id(first)}`);
  }
  return txns.map((s) => `START TRANSACTION; ${s}; COMMIT`).join("; ");
}

/** Runs `dfs capture` from `start` until the stream holds a heartbeat at or past `end`. */
async function captureBacklog(
  cfgFile: string,
  nc: Awaited<ReturnType<typeof connectNats>>,
  stream: string,
  end: Position,
): Promise<number> {
  const t0 = performance.now();
  // Only `dfs dpu` gets DFS_BENCH_NODE_ARGS: capture's part is not timed.
  const child = spawnDfs(["capture", "-c", cfgFile], { nodeArgs: false });
  try {
    const deadline = Date.now() + 1_800_000;
    for (;;) {
      assertRunning(child, "dfs capture");
      const last = await lastPublished(nc, stream).catch(() => null);
      if (
        last?.headers[Headers.kind] === "heartbeat" &&
        (last.headers[Headers.position] ?? "") >= end.sortable
      )
        return (performance.now() - t0) / 1000;
      if (Date.now() > deadline) throw new Error("capture did not publish the backlog within 30 minutes");
      await sleep(100);
    }
  } finally {
    await stopChild(child, 10_000);
  }
}

export async function benchArchiveE2e(rows: number, log: (s: string) => void): Promise<ArchiveE2eResult> {
  await stackUp({ log: () => {} });
  const urls = stackUrls();
  const id = `barch${Date.now().toString(36)}`;
  const db = `dfs_bench_${id}`;
  const stream = subjects.streamName(id);
  const dir = mkdtempSync(join(tmpdir(), "dfs-bench-archive-e2e-"));
  const archiveDir = join(dir, "archive");
  const conn = await mysql.createConnection({
    host: "127.0.0.1",
    port: 13306,
    user: "root",
    multipleStatements: true,
  });
  const nc = await connectNats({ url: urls.natsUrl, name: "dfs-bench-archive" });
  let dpu: ChildProcess | null = null;
  try {
    await conn.query(`CREATE DATABASE ${q(db)}`);
    await conn.query(`USE ${q(db)}`);
    await conn.query(TABLE);
    const chunks = Math.ceil(rows / CHUNK);
    const start = await binlogEnd(conn);
    log(`writing ${(chunks * CHUNK).toLocaleString("en")} row changes to ${db}.bench_archive (not timed)`);
    const w0 = performance.now();
    for (let c = 0; c < chunks; c++) await conn.query(chunkSql(c));
    const writeSeconds = (performance.now() - w0) / 1000;
    const end = await binlogEnd(conn);
    const source = [
      "source:",
      `  id: ${id}`,
      `  url: ${urls.sourceUrl}`,
      `  serverId: ${10_000 + Math.floor(Math.random() * 90_000)}`,
      `  include: { databases: [${db}] }`,
      `  start: { from: position, file: ${start.file}, position: ${start.pos} }`,
      `nats: { url: "${urls.natsUrl}" }`,
    ];
    const captureCfg = join(dir, "capture.yaml");
    writeFileSync(
      captureCfg,
      [
        ...source,
        "capture:",
        `  journal: { path: ${join(dir, "journal.db")} }`,
        "  heartbeatIntervalMs: 100ms",
        "  http: { port: 0 }",
        "  grpc: { port: 0 }",
        "log: { level: warn }",
        "",
      ].join("\n"),
    );
    log(`${writeSeconds.toFixed(1)} s to write; capturing ${start} -> ${end} into ${stream} (not timed)`);
    const captureSeconds = await captureBacklog(captureCfg, nc, stream, end);
    const inStream = await streamBatches(nc, stream);
    if (inStream.rows !== chunks * CHUNK)
      throw new Error(`the stream holds ${inStream.rows} row changes, the workload made ${chunks * CHUNK}`);

    const dpuCfg = join(dir, "dpu.yaml");
    writeFileSync(
      dpuCfg,
      [
        ...source,
        "dpu: { http: { port: 0 }, grpc: { port: 0 } }",
        `archive: { dir: ${archiveDir}, period: day }`,
        "log: { level: warn }",
        "",
      ].join("\n"),
    );
    log(
      `archiving ${inStream.rows.toLocaleString("en")} row changes in ${inStream.messages} messages: dfs dpu -c ${dpuCfg}`,
    );
    const reader = new ArchiveReader(archiveDir);
    const consumer = `${id}:dpu-default`;
    const t0 = performance.now();
    dpu = spawnDfs(["dpu", "-c", dpuCfg]);
    const pid = dpu.pid!;
    let peak = 0;
    let first: number | null = null;
    const deadline = Date.now() + 1_800_000;
    for (let i = 0; ; i++) {
      assertRunning(dpu, "dfs dpu");
      if (i % 10 === 0) peak = Math.max(peak, peakRssMb(pid));
      const low = reader.checkpoint(consumer);
      const now = performance.now();
      if (first === null && low > 0) first = now;
      if (low >= inStream.lastBatch) break;
      if (Date.now() > deadline) throw new Error("the archive did not take the stream within 30 minutes");
      await sleep(20);
    }
    const t1 = performance.now();
    const cpu = cpuSeconds(pid);
    peak = Math.max(peak, peakRssMb(pid));
    await stopChild(dpu, 10_000);
    dpu = null;
    const stats = archiveStats(reader);
    const archived = stats.files.reduce((n, f) => n + f.changes, 0);
    if (archived !== inStream.rows)
      throw new Error(`the archive holds ${archived} row changes, the stream ${inStream.rows}`);
    const seconds = (t1 - t0) / 1000;
    return {
      rows: inStream.rows,
      messages: inStream.messages,
      transactions: stats.files.reduce((n, f) => n + f.transactions, 0),
      writeSeconds,
      captureSeconds,
      seconds,
      rowsPerSecond: inStream.rows / seconds,
      firstCommitSeconds: ((first ?? t1) - t0) / 1000,
      steadyRowsPerSecond: inStream.rows / Math.max((t1 - (first ?? t0)) / 1000, 0.001),
      cpuSeconds: cpu,
      peakRssMb: peak,
      files: stats.files.length,
      bytes: stats.files.reduce((n, f) => n + f.bytes, 0),
    };
  } finally {
    await stopChild(dpu, 5_000);
    const jsm = await jetstreamManager(nc).catch(() => null);
    await jsm?.streams.delete(stream).catch(() => {});
    await jsm?.streams.delete(subjects.dlqStreamName(id)).catch(() => {});
    await conn.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
    await conn.end().catch(() => {});
    await nc.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
