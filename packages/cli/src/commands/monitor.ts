import { createLogger } from "@dfs/common";
import { describeConfig, loadConfig } from "@dfs/config";
import { startMonitor } from "@dfs/monitor";

/** `dfs monitor -c FILE`: serves the monitor's page, WebSocket and /metrics until SIGINT/SIGTERM. */
export async function runMonitor(o: { config?: string }): Promise<number> {
  const cfg = loadConfig(o.config);
  const log = createLogger({ level: cfg.log.level, name: "monitor" });
  log.info({ config: describeConfig(cfg) }, "starting monitor");
  const monitor = await startMonitor(cfg, { log });
  console.error(`dfs monitor: http://127.0.0.1:${monitor.port}/ (sign in with control.token)`);
  const onSignal = (signal: string) => {
    log.info({ signal }, "stopping");
    void monitor.stop();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  await monitor.done;
  return 0;
}
