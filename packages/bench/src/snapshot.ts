import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep } from "@dfs/common";
import { connectControl } from "@dfs/control";
import { parseMetrics, sumOf } from "@dfs/metrics";
import { stackUp, stackUrls } from "@dfs/stack";
import { freePort, peakRssMb } from "./proc.js";
import { openBenchSource } from "./workload.js";

const here = dirname(fileURLToPath(import.meta.url));

export interface SnapshotBenchResult {
  rows: number;
  published: number;
  seconds: number;
  rowsPerSecond: number;
  peakRssMb: number;
  chunkRows: number;
  /** The same table read by one plain full-scan SELECT (mysql2, rows parsed), for the ratio. */
  selectRowsPerSecond: number;
}

/**
 * Fills a table with `rows` rows, starts `dfs capture` in its own process, asks it for a
 * snapshot over the control plane, and times it until JetStream has acknowledged every row
 * (capture's own dfs_capture_published_changes_total{op="r"}).
 */
export async function benchSnapshot(
  rows: number,
  chunkRows: number,
  log: (s: string) => void,
): Promise<SnapshotBenchResult> {
  await stackUp({ log: () => {} });
  const urls = stackUrls();
  const { id, db, conn, close } = await openBenchSource("bsnap");
  let child: ChildProcess | null = null;
  try {
    log(`filling ${rows.toLocaleString("en")} rows...`);
    for (let from = 1; from <= rows; from += 100_000) {
      const to = Math.min(rows, from + 99_999);
      await conn.query(
        `INSERT INTO bench_rows SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 100, '2024-01-02 03:04:05.123456' + INTERVAL seq SECOND, seq * 1.5 FROM seq_${from}_to_${to}`,
      );
    }
    await conn.query("ANALYZE TABLE bench_rows");
    log("reading the table with one plain SELECT (baseline)...");
    const s0 = performance.now();
    const [all] = await conn.query("SELECT * FROM bench_rows");
    const selectSeconds = (performance.now() - s0) / 1000;
    if ((all as unknown[]).length !== rows) throw new Error("baseline SELECT did not read every row");

    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const dir = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    const cfgFile = join(dir, "bench.yaml");
    writeFileSync(
      cfgFile,
      [
        "source:",
        `  id: ${id}`,
        `  url: ${urls.sourceUrl}`,
        "  serverId: 4997",
        `  include: { databases: [${db}] }`,
        `nats: { url: "${urls.natsUrl}" }`,
        "capture:",
        `  journal: { path: ${join(dir, "journal.db")} }`,
        `  snapshot: { chunkRows: ${chunkRows} }`,
        `  http: { port: ${httpPort} }`,
        `  grpc: { port: ${grpcPort} }`,
        "control: { token: bench }",
        "log: { level: warn }",
        "",
      ].join("\n"),
    );
    child = spawn(
      process.execPath,
      [join(here, "..", "..", "cli", "bin", "dfs.js"), "capture", "-c", cfgFile],
      {
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
    const client = connectControl("capture", `127.0.0.1:${grpcPort}`, { token: "bench", timeoutMs: 5000 });
    const metricsUrl = `http://127.0.0.1:${httpPort}/metrics`;
    try {
      for (let i = 0; ; i++) {
        const ready = await client.health().catch(() => null);
        if (ready?.ready) break;
        if (i > 600) throw new Error("capture did not start");
        await sleep(100);
      }
      log("snapshot running...");
      const t0 = performance.now();
      await client.snapshot([{ db, table: "bench_rows" }]);
      let peak = 0;
      let published = 0;
      const deadline = Date.now() + 1_800_000;
      while (published < rows) {
        if (child.exitCode !== null) throw new Error(`capture exited (code ${child.exitCode})`);
        if (Date.now() > deadline) throw new Error("the snapshot did not finish within 30 minutes");
        peak = Math.max(peak, peakRssMb(child.pid!));
        const text = await (await fetch(metricsUrl)).text();
        published = sumOf(parseMetrics(text), "dfs_capture_published_changes_total", { op: "r" });
        if (published < rows) await sleep(50);
      }
      const seconds = (performance.now() - t0) / 1000;
      peak = Math.max(peak, peakRssMb(child.pid!));
      return {
        rows,
        published,
        seconds,
        rowsPerSecond: rows / seconds,
        peakRssMb: peak,
        chunkRows,
        selectRowsPerSecond: rows / selectSeconds,
      };
    } finally {
      client.close();
    }
  } finally {
    child?.kill("SIGTERM");
    await close();
  }
}
