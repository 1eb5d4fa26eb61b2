import { type ChildProcess, execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Headers } from "@dfs/codec";
import { sleep } from "@dfs/common";
import { lastPublished, subjects } from "@dfs/nats";
import { stackUp, stackUrls } from "@dfs/stack";
import { parse, stringify } from "yaml";
import { cpuSeconds, peakRssMb } from "./proc.js";
import { spawnDfs, streamBatches } from "./run.js";
import { binlogEnd, openBenchSource, type WorkloadResult, writeMixedWorkload } from "./workload.js";

const here = dirname(fileURLToPath(import.meta.url));

export interface CaptureBenchResult {
  scenario: "backlog" | "one transaction";
  rows: number;
  rowsInStream: number;
  messages: number;
  seconds: number;
  rowsPerSecond: number;
  peakRssMb: number;
  /** CPU time the capture process used (every thread), start-up included. */
  cpuSeconds: number;
  baselineRowsPerSecond: number;
  workload: WorkloadResult;
}

/** zongji alone over the same range, in its own process, for the within-run ratio. */
function zongjiBaseline(start: { file: string; pos: number }, end: { file: string; pos: number }): number {
  const out = execFileSync(
    process.execPath,
    [
      join(here, "zongji-baseline.js"),
      "127.0.0.1",
      "13306",
      start.file,
      String(start.pos),
      end.file,
      String(end.pos),
    ],
    { encoding: "utf8", timeout: 600_000 },
  );
  const { rows, ms } = JSON.parse(out.trim().split("\n").pop()!) as { rows: number; ms: number };
  return (rows / ms) * 1000;
}

async function runScenario(
  rows: number,
  scenario: CaptureBenchResult["scenario"],
  log: (s: string) => void,
  /** YAML lines added under the capture process's `capture:` (two spaces in). */
  captureLines: readonly string[],
): Promise<CaptureBenchResult> {
  const urls = stackUrls();
  const { id, db, conn, nc, close } = await openBenchSource("bench");
  let child: ChildProcess | null = null;
  try {
    const start = await binlogEnd(conn);
    log(`${scenario}: writing ${rows.toLocaleString()} row changes to the source...`);
    const workload = await writeMixedWorkload(conn, rows, scenario === "one transaction");
    const end = await binlogEnd(conn);
    const endKey = end.sortable;
    log(`${scenario}: ${workload.seconds.toFixed(1)} s to write; binlog ${start} -> ${end}`);

    const dir = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    const cfgFile = join(dir, "bench.yaml");
    // --config lines are YAML merged into capture: (so `journal: { ... }` adds to the bench's own).
    const capture: Record<string, unknown> = {
      journal: { path: join(dir, "journal.db") },
      heartbeatIntervalMs: "100ms",
    };
    for (const line of captureLines) mergeInto(capture, parse(line) as Record<string, unknown>);
    const config = {
      source: {
        id,
        url: urls.sourceUrl,
        serverId: 4998,
        include: { databases: [db] },
        start: { from: "position", file: start.file, position: start.pos },
      },
      nats: { url: urls.natsUrl },
      capture,
      log: { level: "warn" },
    };
    writeFileSync(cfgFile, stringify(config));
    const t0 = performance.now();
    // DFS_BENCH_NODE_ARGS passes flags to the capture process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    child = spawnDfs(["capture", "-c", cfgFile]);
    const pid = child.pid!;
    let peak = 0;
    const stream = subjects.streamName(id);
    // Polled by hand (not waitFor): a capture that exits must fail the run at once.
    const deadline = Date.now() + 1_800_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `the capture process exited (code ${child.exitCode}, signal ${child.signalCode}) before publishing the backlog`,
        );
      }
      peak = Math.max(peak, peakRssMb(pid));
      const last = await lastPublished(nc, stream).catch(() => null);
      if (last?.headers[Headers.kind] === "heartbeat" && (last.headers[Headers.position] ?? "") >= endKey)
        break;
      if (Date.now() > deadline) throw new Error("capture did not publish the backlog within 30 minutes");
      await sleep(100);
    }
    const seconds = (performance.now() - t0) / 1000;
    peak = Math.max(peak, peakRssMb(pid));
    const cpu = cpuSeconds(pid);
    child.kill("SIGTERM");
    // Count the rows actually in the stream: the figure only counts if nothing is missing.
    const { rows: rowsInStream, messages } = await streamBatches(nc, stream);
    log(`${scenario}: measuring zongji alone over the same range...`);
    const baseline = zongjiBaseline(start, end);
    return {
      scenario,
      rows,
      rowsInStream,
      messages,
      seconds,
      rowsPerSecond: rows / seconds,
      peakRssMb: peak,
      cpuSeconds: cpu,
      baselineRowsPerSecond: baseline,
      workload,
    };
  } finally {
    child?.kill("SIGKILL");
    await close();
  }
}

/** Deep-merges `add` into `into` (mappings merged key by key; anything else replaced). */
function mergeInto(into: Record<string, unknown>, add: Record<string, unknown> | null): void {
  if (add === null || typeof add !== "object")
    throw new Error(`a --config line must be a YAML mapping (got ${JSON.stringify(add)})`);
  for (const [k, v] of Object.entries(add)) {
    const have = into[k];
    if (
      v &&
      typeof v === "object" &&
      !Array.isArray(v) &&
      have &&
      typeof have === "object" &&
      !Array.isArray(have)
    )
      mergeInto(have as Record<string, unknown>, v as Record<string, unknown>);
    else into[k] = v;
  }
}

export async function benchCapture(
  rows: number,
  scenarios: CaptureBenchResult["scenario"][],
  log: (s: string) => void,
  captureLines: readonly string[] = [],
): Promise<CaptureBenchResult[]> {
  await stackUp({ log: () => {} });
  const results: CaptureBenchResult[] = [];
  for (const s of scenarios) results.push(await runScenario(rows, s, log, captureLines));
  return results;
}
