// Test fixture: runs capture as its own process, like `dfs capture -c FILE`, for the failure tests
// (kill -9 needs a process). Usage: node run-capture.js <config.yaml>
// stdout: "READY" once started, then "STATUS <json>" lines every 200 ms; logs go to stderr.
// SIGTERM/SIGINT stop it cleanly (exit 0); a fatal error exits 1 with "FATAL <code> <message>" on stderr.
import { createLogger, errorMessage } from "@dfs/common";
import { loadConfig } from "@dfs/config";
import { startCapture } from "../../dist/index.js";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: run-capture <config.yaml>\n");
  process.exit(2);
}

try {
  const cfg = loadConfig(file);
  const log = createLogger({ level: cfg.log.level, name: "capture", destination: 2 });
  const capture = await startCapture(cfg, { log });
  process.stdout.write("READY\n");
  const timer = setInterval(() => process.stdout.write(`STATUS ${JSON.stringify(capture.status())}\n`), 200);
  const onSignal = () => void capture.stop();
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  try {
    await capture.done;
  } finally {
    clearInterval(timer);
  }
} catch (err) {
  process.stderr.write(`FATAL ${(err as { code?: string }).code ?? ""} ${errorMessage(err)}\n`);
  process.exitCode = 1;
}
