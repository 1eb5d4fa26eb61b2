import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { waitFor } from "@dfs/common";
import { stackUrls } from "@dfs/stack";
import mysql from "mysql2/promise";
import { projectRoot, startDfsRun, stopChild } from "./run.js";
import { binlogEnd, openBenchSource } from "./workload.js";

export interface VerifyBenchResult {
  rows: number;
  chunkRows: number;
  chunks: number;
  /** `dfs verify`'s own time (its report), and the whole command's (node start-up included). */
  seconds: number;
  rowsPerSecond: number;
  commandSeconds: number;
  /** The machine's 1-minute load average before and after the verify (it is shared). */
  load: [number, number];
  status: string;
}

/**
 * Fills the bench table with `rows` rows, lets `dfs run` (its own process) copy them into the
 * target, then times `dfs verify --json` of the table (its own process) while `dfs run` keeps running,
 * idle: chunk checksums on both servers, each chunk's target side read after the DPU's checkpoint
 * passed its source position.
 */
export async function benchVerify(
  rows: number,
  chunkRows: number,
  log: (s: string) => void,
): Promise<VerifyBenchResult> {
  const urls = stackUrls();
  const { id, db, conn, close } = await openBenchSource("bvfy");
  const tgt = await mysql.createConnection({ host: "127.0.0.1", port: 13307, user: "root" });
  const run = startDfsRun(urls, id, db, await binlogEnd(conn));
  try {
    log(`filling ${rows.toLocaleString("en")} rows and syncing them to the target...`);
    for (let from = 1; from <= rows; from += 100_000) {
      const to = Math.min(rows, from + 99_999);
      await conn.query(
        `INSERT INTO bench_rows SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 100, '2024-01-02 03:04:05.123456' + INTERVAL seq SECOND, IF(seq % 10 = 0, NULL, seq * 1.5) FROM seq_${from}_to_${to}`,
      );
    }
    await waitFor(
      async () => {
        const [r] = await tgt
          .query(`SELECT COUNT(*) AS n FROM \`${db}\`.bench_rows`)
          .catch(() => [[{ n: 0 }]]);
        return Number((r as { n: number | string }[])[0]!.n) === rows;
      },
      { timeoutMs: 1_800_000, intervalMs: 1000, what: "the target to hold every row" },
    );
    const cfgFile = join(run.dir, "verify.yaml");
    writeFileSync(
      cfgFile,
      JSON.stringify({
        source: { id, url: urls.sourceUrl, include: { databases: [db] } },
        target: { url: urls.targetUrl },
        nats: { url: urls.natsUrl },
        log: { level: "warn" },
      }),
    );
    log("verifying...");
    const before = loadavg()[0]!;
    const t0 = performance.now();
    const out = await dfsVerify(cfgFile, `${db}.bench_rows`, chunkRows);
    const commandSeconds = (performance.now() - t0) / 1000;
    const r = out.tables[0]!;
    if (r.sourceRows !== rows || r.status !== "ok")
      throw new Error(`verify read ${r.sourceRows} rows with status ${r.status}: figure not recorded`);
    const seconds = out.seconds;
    await tgt.query("DELETE FROM `_dfs`.`_dfs_verify` WHERE source_id = ?", [id]).catch(() => {});
    return {
      rows,
      chunkRows,
      chunks: r.chunks,
      seconds,
      rowsPerSecond: rows / seconds,
      commandSeconds,
      load: [before, loadavg()[0]!],
      status: r.status,
    };
  } finally {
    await stopChild(run.child, 10_000);
    await tgt.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await tgt
      .query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer LIKE ?", [`${id}:%`])
      .catch(() => {});
    await tgt.end();
    await close();
  }
}

interface VerifyJson {
  seconds: number;
  tables: { sourceRows: number; status: string; chunks: number }[];
}

/** Runs `dfs verify --json` and returns its report (its exit code must be 0: no drift). */
function dfsVerify(cfgFile: string, table: string, chunkRows: number): Promise<VerifyJson> {
  const bin = join(projectRoot(), "packages/cli/bin/dfs.js");
  const child = spawn(
    process.execPath,
    [bin, "verify", "-c", cfgFile, "--table", table, "--chunk-rows", String(chunkRows), "--json"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (b: Buffer) => {
    out += b.toString("utf8");
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`dfs verify exited with ${code}: ${out.slice(0, 2000)}`));
      else resolve(JSON.parse(out) as VerifyJson);
    });
  });
}
