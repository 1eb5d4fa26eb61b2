/**
 * The last result per table, kept in the target's meta database (`_dfs_verify`), where the DPU
 * reads it to serve the `dfs_verify_*` gauges on its /metrics (services/dpu/src/verify-metrics.ts):
 * a verify is a one-shot command, and this way its last result outlives it and is scraped with the
 * rest of the pipeline.
 */
import { formatTableRef } from "@dfs/codec";
import { type MysqlSession, quoteId } from "@dfs/mysql";
import type { TableResult } from "./run.js";

export async function saveResults(
  s: MysqlSession,
  metaDatabase: string,
  sourceId: string,
  results: readonly TableResult[],
): Promise<void> {
  const table = `${quoteId(metaDatabase)}.\`_dfs_verify\``;
  await s.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(metaDatabase)}`);
  await s.query(
    `CREATE TABLE IF NOT EXISTS ${table} (
       source_id VARCHAR(64) NOT NULL,
       source_table VARCHAR(200) NOT NULL,
       target_table VARCHAR(200) NOT NULL,
       status VARCHAR(16) NOT NULL,
       source_rows BIGINT NOT NULL,
       target_rows BIGINT NOT NULL,
       chunks BIGINT NOT NULL,
       drifted_keys BIGINT NOT NULL,
       unsettled_keys BIGINT NOT NULL,
       repaired_keys BIGINT NOT NULL,
       seconds DOUBLE NOT NULL,
       finished_at DATETIME(3) NOT NULL,
       detail TEXT NOT NULL,
       PRIMARY KEY (source_id, source_table, target_table)
     )`,
  );
  for (const r of results) {
    const left = r.repair ? r.repair.remaining.length : r.drift.length;
    await s.query(
      `REPLACE INTO ${table} (source_id, source_table, target_table, status, source_rows, target_rows, chunks,
         drifted_keys, unsettled_keys, repaired_keys, seconds, finished_at, detail)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3), ?)`,
      [
        sourceId,
        formatTableRef(r.source),
        r.target ? formatTableRef(r.target) : "",
        r.status,
        r.sourceRows,
        r.targetRows,
        r.chunks,
        left,
        r.unsettled,
        r.repair ? r.repair.upserted + r.repair.deleted : 0,
        r.seconds,
        r.reason ?? "",
      ],
    );
  }
}
