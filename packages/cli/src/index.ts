import { DfsError, ErrorCode } from "@dfs/common";
import { ControlCallError } from "@dfs/control";

const USAGE = `dfs: MySQL/MariaDB change-data-capture and synchronisation

Usage: dfs <command> [options]

Commands:
  stack up|down|status        the local test stack (source MariaDB :13306, target :13307, NATS :14222)
  capture -c FILE             read the source's binlog into the journal and publish it to JetStream
  relmgr -c FILE              the relationship graph, table groups and the plan DPUs follow; key-map look-ups
  dpu -c FILE                 apply the stream to the target (exactly-once, DDL, dead letters)
  monitor -c FILE             the web UI: pipeline, lag, rates, tables, recent changes and DML, errors, controls (:8080)
  run -c FILE                 capture, dpu, relmgr (pipeline use, table groups) and monitor in one process
  dlq list|replay -c FILE     list dead letters; apply them again (--seq N to pick) and remove them
  demo [-c FILE] [--seconds N]  start the stack and capture, write a small load, print the changes as they arrive
  bench capture [--rows N]    measure binlog -> journal -> JetStream-acked rows/s and capture RSS
  ctl <service> <call> [args] the gRPC control plane: status, pause, resume, set-position, dlq-list, ...
  snapshot [--wait] [db.table ...]  snapshot tables through the running capture (watermarks, no locks)

Not built yet (each answers with exit code 2): verify, archive.

Environment variables override the config file: DFS_SOURCE_URL, DFS_TARGET_URL, DFS_NATS_URL, ...
(docs/configuration.md lists them all).

Exit codes: 0 stopped cleanly; 1 stopped on an error (the message names it); 2 bad usage or config.`;

const PLANNED = new Set(["verify", "archive"]);

/**
 * Exit codes: 0 a clean stop; 1 the service stopped on an error (a server refused, a checkpoint was
 * purged, ...); 2 bad usage or a bad config, before anything ran.
 */
function exitCodeOf(err: DfsError): number {
  return err.code === ErrorCode.CONFIG_INVALID || err.code === ErrorCode.CONFIG_UNREADABLE ? 2 : 1;
}

/**
 * Runs one dfs command; returns the process exit code. Each command's module is loaded only when
 * it runs: `dfs run`'s main thread (which hosts only the monitor) does not load capture's and the
 * DPU's code, which their worker threads load, and every command starts faster.
 */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "stack":
        return await (await import("@dfs/stack")).runStackCli(rest);
      case "capture":
        return await (await import("./commands/capture.js")).runCapture(rest);
      case "bench":
        return await (await import("./commands/bench.js")).runBench(rest);
      case "demo":
        return await (await import("./commands/demo.js")).runDemo(rest);
      case "dpu":
        return await (await import("./commands/services.js")).runDpu(rest);
      case "relmgr":
        return await (await import("./commands/services.js")).runRelmgr(rest);
      case "run":
        return await (await import("./commands/services.js")).runAll(rest);
      case "dlq":
        return await (await import("./commands/services.js")).runDlq(rest);
      case "ctl":
        return await (await import("./commands/ctl.js")).runCtl(rest);
      case "snapshot":
        return await (await import("./commands/snapshot.js")).runSnapshot(rest);
      case "monitor":
        return await (await import("./commands/monitor.js")).runMonitor(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return 0;
      default:
        if (PLANNED.has(command)) {
          console.error(`dfs ${command}: not built yet in this version of dataflowsync`);
          return 2;
        }
        console.error(`dfs: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    // Errors we raise on purpose already name what is wrong: print the message, not a stack.
    if (err instanceof ControlCallError) {
      console.error(`dfs ${command}: ${err.message}`);
      return 1;
    }
    if (err instanceof DfsError) {
      console.error(`dfs ${command}: ${err.code}: ${err.message}`);
      return exitCodeOf(err);
    }
    // node:util parseArgs: an unknown option, a missing value, a stray argument.
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) {
      console.error(
        `dfs ${command}: ${(err as Error).message}\n(dfs --help lists the commands; dfs bench --help the benchmarks' options)`,
      );
      return 2;
    }
    throw err;
  }
}
