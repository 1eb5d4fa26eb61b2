/**
 * Capture or the DPU on a worker thread, for `dfs run`: each service gets its own event loop (a
 * core each, neither delayed by the other or by the monitor) and its own bounded heap. Messages:
 * parent -> "stop"; worker -> { kind: "ready" (with the service's ports) | "stopped" | "error" }.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createLogger, errorMessage } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";

export type ServiceKind = "capture" | "dpu";

const port = parentPort!;
const { cfg, kind } = workerData as { cfg: DfsConfig; kind: ServiceKind };
try {
  const log = createLogger({ level: cfg.log.level, name: kind });
  // Each worker loads only its own service's code.
  const service =
    kind === "capture"
      ? await (await import("@dfs/capture")).startCapture(cfg, { log })
      : await (await import("@dfs/dpu")).startDpu(cfg, { log });
  port.postMessage({ kind: "ready", endpoints: service.endpoints });
  port.on("message", (m) => {
    if (m === "stop") void service.stop();
  });
  await service.done;
  port.postMessage({ kind: "stopped" });
} catch (err) {
  port.postMessage({ kind: "error", message: errorMessage(err), code: (err as { code?: string }).code });
}
port.close();
