// Test fixture: runs the DPU as its own process, like `dfs dpu -c FILE`, for the failure tests
// (kill -9 needs a process). Usage: node run-dpu.js <config.yaml>
// stdout: "READY" once started, then "STATUS <json>" lines every 50 ms; logs go to stderr.
// SIGTERM/SIGINT stop it cleanly (exit 0); a fatal error exits 1 with "FATAL <code> <message>" on stderr.
import { createLogger, errorMessage } from "@dfs/common";
import { loadConfig } from "@dfs/config";
import { startDpu } from "../../dist/index.js";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: run-dpu <config.yaml>\n");
  process.exit(2);
}

try {
  const cfg = loadConfig(file);
  const log = createLogger({ level: cfg.log.level, name: "dpu", destination: 2 });
  const dpu = await startDpu(cfg, { log });
  const report = () => process.stdout.write(`STATUS ${JSON.stringify(dpu.status())}\n`);
  report();
  process.stdout.write("READY\n");
  const timer = setInterval(report, 50);
  const onSignal = () => void dpu.stop();
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  try {
    await dpu.done;
  } finally {
    clearInterval(timer);
  }
} catch (err) {
  process.stderr.write(`FATAL ${(err as { code?: string }).code ?? ""} ${errorMessage(err)}\n`);
  process.exitCode = 1;
}
