import { parseTableRef } from "@dfs/codec";
import { errorMessage, type Logger } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import type { Registry } from "@dfs/metrics";
import { verifyMetrics } from "@dfs/metrics";
import { MysqlErrno, MysqlSession, quoteId } from "@dfs/mysql";

/** How often the last verify results are read again. */
const REFRESH_MS = 30_000;

/**
 * Serves the last `dfs verify` result per target table as the `dfs_verify_*` gauges. `dfs verify`
 * is a one-shot command: it keeps its results in the target's `_dfs_verify` (packages/verify
 * src/results.ts), and the DPU, which is scraped anyway, reads them every 30 s. Returns the stop.
 */
export function serveVerifyResults(cfg: DfsConfig, registry: Registry, log: Logger): () => void {
  const m = verifyMetrics(registry);
  const table = `${quoteId(cfg.dpu.metaDatabase)}.\`_dfs_verify\``;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const refresh = async () => {
    if (!cfg.target) return;
    let s: MysqlSession | null = null;
    try {
      s = await MysqlSession.open(cfg.target.endpoint, { role: "target" });
      const rows = await s.query<
        { t: string; st: string; d: string; r: string; sec: number; at: number | string }[]
      >(
        `SELECT target_table AS t, status AS st, drifted_keys AS d, source_rows AS r, seconds AS sec,
                UNIX_TIMESTAMP(finished_at) AS at FROM ${table} WHERE source_id = ? AND target_table <> ''`,
        [cfg.source.id],
      );
      for (const g of Object.values(m)) g.reset();
      for (const row of rows) {
        const ref = parseTableRef(row.t);
        const labels = { db: ref.db, table: ref.table, status: row.st };
        m.drifted.set(labels, Number(row.d));
        m.rows.set(labels, Number(row.r));
        m.seconds.set(labels, Number(row.sec));
        m.finished.set(labels, Number(row.at));
      }
    } catch (err) {
      // No verify has run yet (no table), or the target is away: the gauges keep what they had.
      if ((err as { errno?: number }).errno !== MysqlErrno.NO_SUCH_TABLE)
        log.debug({ err: errorMessage(err) }, "cannot read the last verify results");
    } finally {
      await s?.close();
    }
  };
  const loop = () => {
    void refresh().finally(() => {
      if (!stopped) timer = setTimeout(loop, REFRESH_MS);
    });
  };
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
