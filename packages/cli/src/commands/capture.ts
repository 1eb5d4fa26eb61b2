import { startCapture } from "@dfs/capture";
import { createLogger } from "@dfs/common";
import { describeConfig, loadConfig } from "@dfs/config";

/** `dfs capture -c FILE`: runs the capture service until SIGINT/SIGTERM or a fatal error. */
export async function runCapture(o: { config?: string }): Promise<number> {
  const cfg = loadConfig(o.config);
  const log = createLogger({ level: cfg.log.level, name: "capture" });
  log.info({ config: describeConfig(cfg) }, "starting capture");
  const capture = await startCapture(cfg, { log });
  const onSignal = (signal: string) => {
    log.info({ signal }, "stopping");
    void capture.stop();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  await capture.done;
  return 0;
}
