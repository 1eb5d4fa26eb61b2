import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DataError, ErrorCode } from "@dfs/common";
import { benchArchive } from "./archive.js";
import { benchArchiveE2e } from "./archive-e2e.js";
import { benchCapture, type CaptureBenchResult } from "./capture.js";
import { benchE2e, type E2eResult } from "./e2e.js";
import { benchOltp, cpuText, LATENCY_GOAL_SHARE, type OltpResult, shareText } from "./oltp.js";
import { benchPipeline } from "./pipeline.js";
import { recordBenchmark } from "./report.js";
import { benchSnapshot } from "./snapshot.js";
import { benchVerify } from "./verify.js";

export { type ArchiveBenchResult, benchArchive } from "./archive.js";
export { type ArchiveE2eResult, benchArchiveE2e } from "./archive-e2e.js";
export { benchCapture, type CaptureBenchResult } from "./capture.js";
export { benchE2e, type E2eOptions, type E2eResult } from "./e2e.js";
export { benchOltp, type OltpOptions, type OltpResult } from "./oltp.js";
export * as oltp from "./oltp-parts.js";
export { freePort } from "./proc.js";
export { machineLine, recordBenchmark } from "./report.js";
export { type CaughtUp, type DfsRun, startDfsRun, stopChild, waitCaughtUp } from "./run.js";
export { benchSnapshot, type SnapshotBenchResult } from "./snapshot.js";
export { benchVerify, type VerifyBenchResult } from "./verify.js";
export { binlogEnd } from "./workload.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function captureTable(results: CaptureBenchResult[]): string {
  const lines = [
    "| scenario | row changes | in stream | messages | seconds | rows/s | capture CPU | capture peak RSS | zongji alone, same range | capture / zongji |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.scenario} | ${r.rows.toLocaleString("en")} | ${r.rowsInStream.toLocaleString("en")} | ${r.messages.toLocaleString("en")} | ${r.seconds.toFixed(2)} | ${Math.round(r.rowsPerSecond).toLocaleString("en")} | ${r.cpuSeconds.toFixed(2)} s | ${r.peakRssMb.toFixed(0)} MB | ${Math.round(r.baselineRowsPerSecond).toLocaleString("en")} rows/s | ${(r.rowsPerSecond / r.baselineRowsPerSecond).toFixed(2)} |`,
    );
  }
  return lines.join("\n");
}

const n = (x: number) => Math.round(x).toLocaleString("en");
const ms = (x: number) => x.toFixed(1);
const secondsOr = (x: number | null) => (x === null ? "not seen" : `${x.toFixed(2)} s`);

function e2eBody(r: E2eResult, rows: number): string {
  const c = r.catchUp;
  const l = r.latency;
  const lines = [
    "Catch-up (backlog waiting in the binlog, then `dfs run` started):",
    "",
    "| row changes | seconds | rows/s | first message in the stream | first DPU checkpoint | stream complete (capture drained) | DPU checkpoint then | target = source (DPU drained) | `dfs run` CPU | `dfs run` peak RSS | MariaDB replication, same range | dfs / replication |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    `| ${n(rows)} | ${c.seconds.toFixed(2)} | ${n(c.rowsPerSecond)} | ${secondsOr(c.firstPublishedSeconds)} | ${secondsOr(c.firstAppliedSeconds)} | ${c.captureSeconds === null ? "not seen" : `${c.captureSeconds.toFixed(2)} s`} | ${c.dpuAtCapture ? `message ${n(c.dpuAtCapture.applied)} of ${n(c.dpuAtCapture.last)}` : "-"} | ${c.seconds.toFixed(2)} s | ${c.cpuSeconds.toFixed(2)} s | ${c.peakRssMb.toFixed(0)} MB | ${r.replica ? `${n(r.replica.rowsPerSecond)} rows/s (${r.replica.seconds.toFixed(2)} s)` : "not measured"} | ${r.replica ? (c.rowsPerSecond / r.replica.rowsPerSecond).toFixed(2) : "-"} |`,
    "",
    "Steady latency (pipeline caught up, source commit -> visible in the target):",
    "",
    "| rate asked | rate achieved | transactions | p50 | p90 | p99 | max | mean | target poll period |",
    "|---|---|---|---|---|---|---|---|---|",
    `| ${n(LATENCY.rate)} rows/s in ${LATENCY.txnRows}-row txns | ${n(l.rowsPerSecond)} rows/s over ${l.seconds.toFixed(1)} s | ${n(l.transactions)} | ${ms(l.p50)} ms | ${ms(l.p90)} ms | ${ms(l.p99)} ms | ${ms(l.max)} ms | ${ms(l.mean)} ms | ${l.pollMs.toFixed(1)} ms |`,
  ];
  return lines.join("\n");
}

/** The steady-latency load: 20-row transactions every 10 ms for 30 s. */
const LATENCY = { seconds: 30, rate: 2000, txnRows: 20 } as const;

async function runE2e(rows: number, replica: boolean, record: boolean, extra: string[]): Promise<number> {
  const r = await benchE2e({
    rows,
    replica,
    extraConfig: extra,
    latencySeconds: LATENCY.seconds,
    latencyRate: LATENCY.rate,
    latencyTxnRows: LATENCY.txnRows,
    log: (s) => console.error(s),
  });
  const c = r.catchUp;
  const l = r.latency;
  const table = e2eBody(r, rows);
  console.log(table);
  if (r.replicaNote) console.log(r.replicaNote);
  if (!record) return 0;
  const w = c.workload;
  const met = (ok: boolean) => (ok ? "met" : "NOT met");
  const body = `${table}

Goals: catch-up >= 40,000 rows/s (${met(c.rowsPerSecond >= 40_000)}) and >= 0.30 of the native replica (${r.replica ? met(c.rowsPerSecond >= 0.3 * r.replica.rowsPerSecond) : "not measured"}); latency p50 < 20 ms (${met(l.p50 < 20)}), p99 < 100 ms (${met(l.p99 < 100)}); \`dfs run\` <= 300 MB (${met(Math.max(c.peakRssMb, l.peakRssMb) <= 300)}).

${r.replica ? `MariaDB replication: a temporary mariadbd started by the bench (same flags as the stack's target, binlog on with log-slave-updates, single-threaded SQL thread, replicate-do-db of the bench database), CHANGE MASTER TO the same start position, timed from START SLAVE UNTIL the end position to the sentinel row being visible, checksum verified; run after \`dfs run\` had stopped.` : r.replicaNote}

Method. Catch-up: ${n(w.rows)} row changes (${n(w.inserts)} inserts, ${n(w.updates)} updates, ${n(w.deletes)} deletes, 1,000 rows per autocommit statement) written to a fresh source database, then one sentinel row in a second table; binlog ${c.start.file}:${c.start.pos} -> ${c.end.file}:${c.end.pos}. Then \`dfs run\` (capture, DPU and monitor in one process, default settings${extra.length > 0 ? `, plus ${extra.join(" ")}` : ""}, log level warn) starts from that position with only the bench database included. Time runs from spawning the process (node start-up included) to the sentinel row being visible in the target and the DPU's checkpoint being past it (polled every 50 ms; lanes of one group commit apart, so the sentinel alone could show a moment early; the checkpoint moves once every lane committed); then a full checksum (row count, SUM(k), SUM(CRC32) of every column) of the target table matched the source's (${c.tableRows.toLocaleString("en")} rows, ${c.checksum}). "stream complete" is when the stream first held the sentinel's batch or a heartbeat past the end position. Peak RSS is VmHWM of the \`dfs run\` process.
Latency: with the pipeline caught up, ${n(l.transactions)} autocommit INSERTs of ${LATENCY.txnRows} rows (growing ids) on an absolute schedule every ${(1000 * LATENCY.txnRows) / LATENCY.rate} ms; the client time is taken when each INSERT (its commit) returns. Another connection polls \`SELECT MAX(id)\` on the target every ~2 ms; a transaction counts as visible when the first poll showing its last id returns. Both clocks are the same process's performance.now(), so the figures include up to one poll period plus a round trip of detection delay (they overstate the latency slightly). Every row arrived.`;
  const file = recordBenchmark(
    root,
    "e2e",
    `dfs bench e2e --rows ${rows}${replica ? "" : " --no-replica"}${extra.map((l) => ` --config '${l}'`).join("")}`,
    body,
  );
  console.error(`recorded in ${file}`);
  return 0;
}

function oltpBody(r: OltpResult, latencyShare: number): string {
  const w = r.write;
  const c = r.catchUp;
  const l = r.latency;
  const rep = r.replica;
  const repTxns = rep ? w.txns / rep.seconds : 0;
  return [
    "Catch-up of an OLTP backlog (written while nothing replicated, then `dfs run` started):",
    "",
    "| source wrote | transactions | row changes | dfs catch-up | dfs txns/s (rows/s) | dfs / source rate | longest stall with work pending | `dfs run` peak RSS | MariaDB replica, same range | dfs / replica |",
    "|---|---|---|---|---|---|---|---|---|---|",
    `| ${w.seconds.toFixed(1)} s at ${n(w.txnsPerSecond)} txns/s | ${n(w.txns)} | ${n(w.rowChanges)} | ${c.seconds.toFixed(2)} s | ${n(c.txnsPerSecond)} (${n(c.rowsPerSecond)}) | ${(c.txnsPerSecond / w.txnsPerSecond).toFixed(2)} | ${c.longestStallSeconds.toFixed(1)} s | ${c.peakRssMb.toFixed(0)} MB | ${rep ? `${n(repTxns)} txns/s (${rep.seconds.toFixed(2)} s)` : "not measured"} | ${rep ? (c.txnsPerSecond / repTxns).toFixed(2) : "-"} |`,
    "",
    `Steady OLTP latency at ${shareText(latencyShare)} the source's rate (source commit -> visible in the target):`,
    "",
    "| rate asked | rate achieved | transactions | p50 | p90 | p99 | max | `dfs run` peak RSS | cores used meanwhile |",
    "|---|---|---|---|---|---|---|---|---|",
    `| ${n(l.rateAsked)} txns/s | ${n(l.txnsPerSecond)} txns/s | ${n(l.txns)} | ${ms(l.p50)} ms | ${ms(l.p90)} ms | ${ms(l.p99)} ms | ${ms(l.max)} ms | ${l.peakRssMb.toFixed(0)} MB | ${cpuText(l.cpu)} |`,
  ].join("\n");
}

async function runOltp(
  seconds: number,
  latencyShare: number,
  replica: boolean,
  record: boolean,
  extra: string[],
): Promise<number> {
  const r = await benchOltp({
    seconds,
    latencyShare,
    clients: 4,
    tables: 4,
    rowsPerTable: 10_000,
    latencySeconds: 30,
    replica,
    extraConfig: extra,
    log: (s) => console.error(s),
  });
  const table = oltpBody(r, latencyShare);
  console.log(table);
  if (r.replicaNote) console.log(r.replicaNote);
  if (!record) return 0;
  const c = r.catchUp;
  const rep = r.replica;
  const met = (ok: boolean) => (ok ? "met" : "NOT met");
  const repTxns = rep ? r.write.txns / rep.seconds : 0;
  const latencyGoals =
    latencyShare === LATENCY_GOAL_SHARE
      ? `latency p50 < 20 ms (${met(r.latency.p50 < 20)}), p99 < 100 ms (${met(r.latency.p99 < 100)});`
      : `latency goals not evaluated (they are at half the source's rate; this run's latency phase ran at ${latencyShare} of it);`;
  const body = `${table}

Goals: OLTP catch-up faster than the source was written (${met(c.txnsPerSecond > r.write.txnsPerSecond)}) and >= 0.5 of the native replica (${rep ? met(c.txnsPerSecond >= 0.5 * repTxns) : "not measured"}); ${latencyGoals} \`dfs run\` <= 300 MB (${met(Math.max(c.peakRssMb, r.latency.peakRssMb) <= 300)}).

Method. 4 tables of 10,000 rows (INT key, an indexed INT, CHAR(120), CHAR(60)) are created with the same rows on the source and the target. 4 client connections then commit transactions as fast as the source takes them for ${r.write.seconds.toFixed(0)} s, each: UPDATE of the indexed column of one row, UPDATE of a non-indexed column of another, DELETE of a third row and INSERT of it again (random rows of random tables; 4 row changes). Nothing replicates meanwhile. A sentinel row follows. \`dfs run\` (capture, DPU and monitor in one process, default settings${extra.length > 0 ? `, plus ${extra.join(" ")}` : ""}) then starts at the workload's first position; time runs from spawning it to the sentinel being visible in the target and the DPU's checkpoint being past it; then every table's checksum (COUNT, SUM(k), SUM(CRC32) of every column) matched the source's. "Longest stall" is the longest time the DPU's checkpoint stood still while the stream held messages after it (sampled every 200 ms). The replica is a temporary mariadbd (the stack's target flags, log-slave-updates, single-threaded SQL thread) with the same first rows, replicating the same binlog range; checksums verified. Latency: the same transactions, each also inserting its number into a fifth table, paced on an absolute schedule at ${shareText(latencyShare)} the rate the source was written at over the 4 clients (when a client falls behind the schedule it writes without pausing, so "rate achieved" below the rate asked means the machine could not carry the load); a separate connection polls the target for new numbers every ~2 ms. "Cores used meanwhile" is the CPU time of each process during the latency phase over its length (the stack's servers, \`dfs run\`, and this bench's own clients and poller).`;
  const file = recordBenchmark(
    root,
    "e2e oltp",
    `dfs bench e2e --workload oltp --seconds ${seconds}${latencyShare === LATENCY_GOAL_SHARE ? "" : ` --latency-share ${latencyShare}`}${replica ? "" : " --no-replica"}${extra.map((l) => ` --config '${l}'`).join("")}`,
    body,
  );
  console.error(`recorded in ${file}`);
  return 0;
}

async function runPipelineBench(rows: number, record: boolean, extra: string[]): Promise<number> {
  const r = await benchPipeline({ rows, extraConfig: extra, log: (s) => console.error(s) });
  const rate = (c: { seconds: number }) => r.rows / c.seconds;
  const ratio = rate(r.pipeline) / rate(r.sync);
  const table = [
    "| row changes | use | catch-up | rows/s | `dfs run` peak RSS | longest stall with work pending | pipeline / sync |",
    "|---|---|---|---|---|---|---|",
    `| ${n(r.rows)} | sync (same structure) | ${r.sync.seconds.toFixed(2)} s | ${n(rate(r.sync))} | ${r.sync.peakRssMb.toFixed(0)} MB | ${r.sync.longestStallSeconds.toFixed(1)} s | - |`,
    `| ${n(r.rows)} | pipeline (mapped, generated keys) | ${r.pipeline.seconds.toFixed(2)} s | ${n(rate(r.pipeline))} | ${r.pipeline.peakRssMb.toFixed(0)} MB | ${r.pipeline.longestStallSeconds.toFixed(1)} s | ${ratio.toFixed(2)} |`,
  ].join("\n");
  console.log(table);
  if (!record) return 0;
  const body = `${table}

Goal: the pipeline use's catch-up at least half the sync use's (${ratio >= 0.5 ? "met" : "NOT met"}); \`dfs run\` <= 300 MB (${Math.max(r.sync.peakRssMb, r.pipeline.peakRssMb) <= 300 ? "met" : "NOT met"}).

Method. The source has customers -> orders -> order_items (BIGINT UNSIGNED order ids above 2^63). ${r.writeSeconds.toFixed(1)} s of transactions of about 1,000 row changes each (40 customers, 120 orders, 480 items inserted; about 200 item quantities changed, moving rows into and out of the filter; 80 order totals changed; some items deleted) are written while nothing replicates; ${n(r.counts.customers)} customers, ${n(r.counts.orders)} orders and ${n(r.counts.items)} items remain. \`dfs run\` (default settings) then applies the backlog twice from the same position: first synced into tables of the same structure, then through the mappings into clients -> sales -> sale_lines, where clients and sales make their own keys (key maps written in the same transactions, orders' and items' foreign keys rewritten to them), one column is computed (qty * price) and sale_lines keeps only qty > 0. Time runs from spawning \`dfs run\` to the sentinel row being in the target and the DPU's checkpoint past it. Both targets were checked afterwards: row counts equal, and in the pipeline's no sale line or sale without its parent.`;
  const file = recordBenchmark(
    root,
    "e2e pipeline",
    `dfs bench e2e --use pipeline --rows ${rows}${extra.map((l) => ` --config '${l}'`).join("")}`,
    body,
  );
  console.error(`recorded in ${file}`);
  return 0;
}

async function runSnapshotBench(rows: number, chunkRows: number, record: boolean): Promise<number> {
  const r = await benchSnapshot(rows, chunkRows, (s) => console.error(s));
  const table = [
    "| rows | chunk rows | seconds | rows/s | capture peak RSS | one plain SELECT of the table | snapshot / SELECT |",
    "|---|---|---|---|---|---|---|",
    `| ${n(r.rows)} | ${n(r.chunkRows)} | ${r.seconds.toFixed(2)} | ${n(r.rowsPerSecond)} | ${r.peakRssMb.toFixed(0)} MB | ${n(r.selectRowsPerSecond)} rows/s | ${(r.rowsPerSecond / r.selectRowsPerSecond).toFixed(2)} |`,
  ].join("\n");
  console.log(table);
  if (!record) return 0;
  const body = `${table}\n\nGoal: snapshot >= 100,000 rows/s (${r.rowsPerSecond >= 100_000 ? "met" : "NOT met"}). The bench table (BIGINT key, INT, VARCHAR, DECIMAL, DATETIME(6), DOUBLE) is filled first; \`dfs capture\` runs in its own process; time runs from the Snapshot call to capture's own count of op-r rows acknowledged by JetStream reaching the row count (every row was). The baseline reads the whole table with one \`SELECT *\` through mysql2 (rows parsed into objects) in the same run.`;
  const file = recordBenchmark(
    root,
    "snapshot",
    `dfs bench snapshot --rows ${rows} --chunk ${chunkRows}`,
    body,
  );
  console.error(`recorded in ${file}`);
  return 0;
}

async function runVerifyBench(rows: number, chunkRows: number, record: boolean): Promise<number> {
  const r = await benchVerify(rows, chunkRows, (s) => console.error(s));
  const table = [
    "| rows | chunk rows | chunks | seconds (verify) | rows/s | whole command (node start-up included) | load average (1 min) before / after |",
    "|---|---|---|---|---|---|---|",
    `| ${n(r.rows)} | ${n(r.chunkRows)} | ${n(r.chunks)} | ${r.seconds.toFixed(2)} | ${n(r.rowsPerSecond)} | ${r.commandSeconds.toFixed(2)} s, ${n(r.rows / r.commandSeconds)} rows/s | ${r.load[0].toFixed(2)} / ${r.load[1].toFixed(2)} |`,
  ].join("\n");
  console.log(table);
  if (!record) return 0;
  const body = `${table}\n\nGoal: verify >= 200,000 rows/s (${r.rowsPerSecond >= 200_000 ? "met" : "NOT met"}). The bench table (BIGINT key, INT, VARCHAR, DECIMAL, DATETIME(6), DOUBLE with NULLs) is filled on the source and copied to the target by \`dfs run\` (its own process, left running, idle); then \`dfs verify --json\` of the table runs in its own process; rows/s is from its own report's time (the whole command's is shown beside): per chunk a boundary and a checksum query on the source, the source position, the DPU's checkpoint position, and the checksum on the target (the next chunk's source side read while this one's target side is). Status ${r.status}. The machine is shared: the load average is noted.`;
  const file = recordBenchmark(root, "verify", `dfs bench verify --rows ${rows} --chunk ${chunkRows}`, body);
  console.error(`recorded in ${file}`);
  return 0;
}

/** What `dfs bench <capture|e2e|snapshot|verify|archive>` was asked for (the CLI parses and checks the options). */
export interface BenchCommandOptions {
  rows: number;
  /** Add the figures to docs/benchmarks.md. */
  record: boolean;
  /** capture: which scenarios. */
  scenario: "all" | "backlog" | "txn";
  /** e2e: also time the native MariaDB replica on the same range. */
  replica: boolean;
  /** e2e: the bulk load or OLTP transactions. */
  workload: "bulk" | "oltp";
  /** e2e: the sync use, or the pipeline use (mappings). */
  use: "sync" | "pipeline";
  /** e2e oltp: seconds of writing. */
  seconds: number;
  /** oltp: the latency phase's rate as a share of the source's (default LATENCY_GOAL_SHARE). */
  latencyShare?: number;
  /** e2e: YAML lines added to dfs run's config. */
  config: string[];
  /** snapshot, verify: rows per chunk. */
  chunk: number;
}

/**
 * `dfs bench <what>`: runs one benchmark and prints its table (and records it). Throws a
 * DataError when the figures cannot be trusted (the stream does not hold every row).
 */
export async function runBenchCommand(
  what: "capture" | "e2e" | "snapshot" | "verify" | "archive",
  o: BenchCommandOptions,
): Promise<void> {
  if (what === "archive") {
    await runArchiveBench(o.rows, o.record);
    return;
  }
  if (what === "e2e" && o.use === "pipeline") await runPipelineBench(o.rows, o.record, o.config);
  else if (what === "e2e" && o.workload === "oltp")
    await runOltp(o.seconds, o.latencyShare ?? LATENCY_GOAL_SHARE, o.replica, o.record, o.config);
  else if (what === "e2e") await runE2e(o.rows, o.replica, o.record, o.config);
  else if (what === "snapshot") await runSnapshotBench(o.rows, o.chunk, o.record);
  else if (what === "verify") await runVerifyBench(o.rows, o.chunk, o.record);
  else await runCaptureBench(o.rows, o.scenario, o.record, o.config);
}

async function runCaptureBench(
  rows: number,
  scenario: BenchCommandOptions["scenario"],
  record: boolean,
  config: string[],
) {
  const scenarios: CaptureBenchResult["scenario"][] =
    scenario === "backlog"
      ? ["backlog"]
      : scenario === "txn"
        ? ["one transaction"]
        : ["backlog", "one transaction"];
  // --config lines are merged under capture: (the bench writes the rest of the file).
  const results = await benchCapture(rows, scenarios, (s) => console.error(s), config);
  const table = captureTable(results);
  console.log(table);
  for (const r of results) {
    if (r.rowsInStream !== r.rows)
      throw new DataError(
        ErrorCode.DATA_INVALID,
        `${r.scenario}: the stream holds ${r.rowsInStream} rows, expected ${r.rows}: figure not recorded`,
      );
  }
  if (record) {
    const body = `${table}\n\nGoal: >= 100,000 rows/s binlog -> journal -> JetStream-acked, < 250 MB capture RSS. Time runs from starting the capture process (node start-up included) to the stream holding a heartbeat past the backlog's end; rows are counted in the stream afterwards. "zongji alone" decodes the same binlog range with no journal and no publishing, in its own process, right after.`;
    const file = recordBenchmark(
      root,
      "capture",
      `dfs bench capture --rows ${rows}${scenario !== "all" ? ` --scenario ${scenario}` : ""}${config.map((l) => ` --config '${l}'`).join("")}`,
      body,
    );
    console.error(`recorded in ${file}`);
  }
}

async function runArchiveBench(rows: number, record: boolean): Promise<void> {
  const e = await benchArchiveE2e(rows, (s) => console.error(s));
  console.error("writer alone: the same number of row changes straight into ArchiveWriter");
  const w = await benchArchive(e.rows, (s) => console.error(s));
  const table = [
    "| row changes | messages | source txns | end to end: spawn -> last checkpoint | rows/s end to end | start-up (spawn -> first checkpoint) | rows/s after start-up | `dfs dpu` CPU seconds | rows per CPU second | `dfs dpu` peak RSS | writer alone rows/s (CPU seconds) | files | bytes per row change |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    `| ${n(e.rows)} | ${n(e.messages)} | ${n(e.transactions)} | ${e.seconds.toFixed(2)} s | ${n(e.rowsPerSecond)} | ${e.firstCommitSeconds.toFixed(2)} s | ${n(e.steadyRowsPerSecond)} | ${e.cpuSeconds.toFixed(2)} | ${n(e.rows / e.cpuSeconds)} | ${e.peakRssMb.toFixed(0)} MB | ${n(w.rowsPerSecond)} (${w.cpuSeconds.toFixed(2)} s) | ${e.files} | ${n(e.bytes / e.rows)} |`,
  ].join("\n");
  console.log(table);
  if (!record) return;
  const load = loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
  const body = `${table}

Goal: archive write >= 100,000 rows/s end to end (${e.rowsPerSecond >= 100_000 ? "met" : "NOT met"}; writer alone ${w.rowsPerSecond >= 100_000 ? "met" : "NOT met"}).

Method. End to end: ${n(e.rows)} row changes (60% inserts, 30% updates with both images, 10% deletes; ${TXN_ROWS_NOTE}) of a table of BIGINT UNSIGNED (key), DECIMAL(65,30), DATETIME(6), VARCHAR, JSON and BLOB columns are written to the source (${e.writeSeconds.toFixed(1)} s) and captured into the stream by \`dfs capture\` (${e.captureSeconds.toFixed(1)} s), neither timed. Then \`dfs dpu -c FILE\` (an \`archive\` section, no target, default settings) is spawned; time runs from the spawn (node start-up included) to the archive's checkpoint (written in the same SQLite transaction as the rows; polled every 20 ms) covering the stream's last batch: JetStream pull -> transaction builder -> archive sink -> SQLite commit (WAL, synchronous=NORMAL). "After start-up" is the rows over the time from the first checkpoint seen to the last. Afterwards the archive held exactly the stream's row changes. CPU seconds: the \`dfs dpu\` process, every thread. Writer alone: the same number of row changes of the same column types, encoded and decoded first (not timed), written straight into ArchiveWriter in groups of 2,500 (one SQLite transaction each, with the checkpoint) in the bench process. Load average (1, 5, 15 min) at the end: ${load}.`;
  const file = recordBenchmark(root, "archive", `dfs bench archive --rows ${rows}`, body);
  console.error(`recorded in ${file}`);
}

const TXN_ROWS_NOTE = "10 rows per source transaction";
