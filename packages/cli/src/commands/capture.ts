import { parseArgs } from "node:util";
import { startCapture } from "@dfs/capture";
import { createLogger } from "@dfs/common";
import { describeConfig, loadConfig } from "@dfs/config";

/** `dfs capture -c FILE`: runs the capture service until SIGINT/SIGTERM or a fatal error. */
export async function runCapture(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: "string", short: "c" } },
    strict: true,
  });
  const cfg = loadConfig(values.config);
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
