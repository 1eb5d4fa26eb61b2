import { createLogger, errorMessage } from "@dfs/common";
import { type DfsConfig, parseMysqlUrl } from "@dfs/config";
import { connectNats } from "@dfs/nats";
import { Applier } from "./apply.js";
import { changesOf, decodeBatch } from "./changes.js";
import { deleteDeadLetter, listDeadLetters } from "./dlq.js";
import { TargetCatalog } from "./target.js";

export interface ReplayResult {
  seq: number;
  table: string;
  ok: boolean;
  error?: string;
}

/**
 * Applies dead letters to the target again (after the cause was fixed) with the DPU's own
 * statement path; each one that commits is removed from the dead-letter stream.
 */
export async function replayDeadLetters(cfg: DfsConfig, seqs: number[] = []): Promise<ReplayResult[]> {
  if (!cfg.target) throw new Error("target: replaying dead letters needs a target (target.url)");
  const log = createLogger({ level: cfg.log.level, name: "dlq-replay", destination: 2 });
  const t = parseMysqlUrl(cfg.target.url);
  const targetDb = cfg.target.database;
  const catalog = new TargetCatalog({ mapDb: (db) => targetDb ?? db, log });
  const stop = new AbortController();
  const applier = new Applier({
    connection: { host: t.host, port: t.port, user: t.user, password: t.password },
    catalog,
    consumer: `${cfg.source.id}:dlq-replay`,
    metaDatabase: cfg.dpu.metaDatabase,
    statementRows: cfg.dpu.batch.statementRows,
    retry: { initialMs: cfg.dpu.retry.initialMs, maxMs: Math.min(cfg.dpu.retry.maxMs, 2000) },
    log,
    signal: stop.signal,
    deadLetter: async () => {},
  });
  const nc = await connectNats({ url: cfg.nats.url, token: cfg.nats.token, name: "dfs-dlq-replay" });
  const results: ReplayResult[] = [];
  try {
    const wanted = new Set(seqs);
    for (const entry of await listDeadLetters(nc, cfg.source.id)) {
      if (wanted.size > 0 && !wanted.has(entry.seq)) continue;
      const batch = decodeBatch(entry.payload);
      const name = `${batch.db}.${batch.table}`;
      try {
        const table = await applier.withRetry("describe", (conn) =>
          catalog.table(conn, batch.db, batch.table),
        );
        if (!table) throw new Error(`target table ${catalog.mapDb(batch.db)}.${batch.table} does not exist`);
        await applier.applyDirect(changesOf(batch, entry.streamSeq, table));
        await deleteDeadLetter(nc, cfg.source.id, entry.seq);
        results.push({ seq: entry.seq, table: name, ok: true });
      } catch (err) {
        results.push({ seq: entry.seq, table: name, ok: false, error: errorMessage(err) });
      }
    }
  } finally {
    stop.abort();
    await applier.close();
    await nc.close();
  }
  return results;
}
