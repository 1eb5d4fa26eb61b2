/**
 * The DPU on a worker thread, for `dfs run`: capture and DPU each get a core instead of taking
 * turns on one event loop. Messages: parent -> "stop"; worker -> { kind: "ready" (with the DPU's ports) | "stopped" | "error" }.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createLogger, errorMessage } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { startDpu } from "@dfs/dpu";

const port = parentPort!;
const cfg = (workerData as { cfg: DfsConfig }).cfg;
try {
  const dpu = await startDpu(cfg, { log: createLogger({ level: cfg.log.level, name: "dpu" }) });
  port.postMessage({ kind: "ready", endpoints: dpu.endpoints });
  port.on("message", (m) => {
    if (m === "stop") void dpu.stop();
  });
  await dpu.done;
  port.postMessage({ kind: "stopped" });
} catch (err) {
  port.postMessage({ kind: "error", message: errorMessage(err), code: (err as { code?: string }).code });
}
port.close();
