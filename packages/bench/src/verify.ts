import { loadavg } from "node:os";
import { createLogger, waitFor } from "@dfs/common";
import { parseConfig } from "@dfs/config";
import { stackUrls } from "@dfs/stack";
import { runVerify } from "@dfs/verify";
import mysql from "mysql2/promise";
import { startDfsRun, stopChild } from "./run.js";
import { binlogEnd, openBenchSource } from "./workload.js";

export interface VerifyBenchResult {
  rows: number;
  chunkRows: number;
  chunks: number;
  seconds: number;
  rowsPerSecond: number;
  /** The machine's 1-minute load average before and after the verify (it is shared). */
  load: [number, number];
  status: string;
}

/**
 * Fills the bench table with `rows` rows, lets `dfs run` (its own process) copy them into the
 * target, then times `dfs verify` of the table (in this process) while `dfs run` keeps running,
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
    const cfg = parseConfig(
      {
        source: { id, url: urls.sourceUrl, include: { databases: [db] } },
        target: { url: urls.targetUrl },
        nats: { url: urls.natsUrl },
      },
      {},
      "bench",
    );
    log("verifying...");
    const before = loadavg()[0]!;
    const t0 = performance.now();
    const report = await runVerify(cfg, {
      log: createLogger({ level: "warn", name: "bench-verify", destination: 2 }),
      tables: [{ db, table: "bench_rows" }],
      chunkRows,
    });
    const seconds = (performance.now() - t0) / 1000;
    const r = report.tables[0]!;
    if (r.sourceRows !== rows || r.status !== "ok")
      throw new Error(`verify read ${r.sourceRows} rows with status ${r.status}: figure not recorded`);
    await tgt.query("DELETE FROM `_dfs`.`_dfs_verify` WHERE source_id = ?", [id]).catch(() => {});
    return {
      rows,
      chunkRows,
      chunks: r.chunks,
      seconds,
      rowsPerSecond: rows / seconds,
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
