import { ConfigError, ErrorCode, type Logger } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { type MysqlSink, mysqlSinkOf } from "./mysql-sink.js";
import { openPipeline } from "./pipeline/setup.js";

/**
 * The DPU's own MySQL sink outside a running DPU (`dfs dlq replay`, `dfs verify --repair`): the
 * same statements, and in the pipeline use the same mappings and key maps; its own `consumer`, so
 * the DPU's checkpoint is not moved; nothing dead-lettered. `needs` names the command in the error
 * when the config has no target.
 */
export async function openStandaloneSink(
  cfg: DfsConfig,
  log: Logger,
  consumer: string,
  needs: string,
): Promise<{ sink: MysqlSink; close(): Promise<void> }> {
  if (!cfg.target)
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [`target: ${needs} needs a target (target.url)`]);
  const stop = new AbortController();
  const pipeline = await openPipeline(cfg, { log, signal: stop.signal });
  const sink = mysqlSinkOf(cfg, { log, signal: stop.signal, deadLetter: async () => {}, consumer, pipeline });
  return {
    sink,
    async close() {
      stop.abort();
      await sink.close();
    },
  };
}
