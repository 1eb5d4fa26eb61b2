import { createLogger } from "@dfs/common";
import { loadConfig } from "@dfs/config";
import { ExitCode } from "../exit.js";
import { tableArg } from "./ctl.js";

export interface VerifyArgs {
  config?: string;
  table?: string[];
  repair?: boolean;
  json?: boolean;
  chunkRows?: number;
  rounds?: number;
  wait?: number;
}

/** Progress on stderr: a bar on a terminal (cli-progress), a line per table and every 10 s otherwise. */
async function progress(): Promise<{
  table(name: string, estimated: number): void;
  rows(n: number): void;
  /** The last table was read to its end. */
  finish(): void;
  stop(): void;
}> {
  if (process.stderr.isTTY) {
    const { default: cli } = await import("cli-progress");
    const bar = new cli.SingleBar(
      {
        format: "{table} [{bar}] {percentage}% {value}/{total} rows {rate} rows/s",
        stream: process.stderr,
        hideCursor: true,
      },
      cli.Presets.shades_classic,
    );
    let started = false;
    let t0 = 0;
    let done = 0;
    // The estimated rows are InnoDB's estimate: a table read to its end is 100% of the rows read.
    const complete = () => {
      if (done > 0) bar.setTotal(done);
      bar.update(done);
    };
    return {
      table(name, estimated) {
        if (started) {
          complete();
          bar.stop();
        }
        bar.start(Math.max(estimated, 1), 0, { table: name, rate: 0 });
        started = true;
        t0 = performance.now();
        done = 0;
      },
      rows(n) {
        done += n;
        if (done > bar.getTotal()) bar.setTotal(done);
        bar.update(done, { rate: Math.round(done / Math.max((performance.now() - t0) / 1000, 0.001)) });
      },
      finish() {
        if (started) complete();
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let current = "";
  let done = 0;
  let last = 0;
  return {
    table(name, estimated) {
      current = name;
      done = 0;
      last = Date.now();
      console.error(`verifying ${name} (about ${estimated} rows)`);
    },
    rows(n) {
      done += n;
      if (Date.now() - last > 10_000) {
        last = Date.now();
        console.error(`${current}: ${done} rows`);
      }
    },
    finish() {},
    stop() {},
  };
}

/**
 * `dfs verify -c FILE [--table db.t ...] [--repair] [--json]`: compares source and target
 * (docs/verify.md). Exit code 65 when drift is left (with --repair: what it could not fix).
 */
export async function runVerifyCommand(o: VerifyArgs): Promise<number> {
  const tables = (o.table ?? []).map(tableArg);
  const cfg = loadConfig(o.config);
  const { runVerify, formatReport, reportJson } = await import("@dfs/verify");
  const log = createLogger({ level: cfg.log.level, name: "verify", destination: 2 });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const bar = o.json ? null : await progress();
  try {
    const report = await runVerify(cfg, {
      tables,
      repair: o.repair === true,
      log,
      signal: stop.signal,
      ...(o.chunkRows ? { chunkRows: o.chunkRows } : {}),
      ...(o.rounds ? { rounds: o.rounds } : {}),
      ...(o.wait !== undefined ? { waitMs: o.wait * 1000 } : {}),
      ...(bar ? { onTable: bar.table, onRows: bar.rows } : {}),
    });
    bar?.finish();
    bar?.stop();
    console.log(o.json ? reportJson(report) : formatReport(report));
    return report.drift ? ExitCode.DATAERR : ExitCode.OK;
  } finally {
    bar?.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
