import { formatTableRef, type Row, type TableRef } from "@dfs/codec";
import { DataError, ErrorCode, type Logger } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { ChangeBatch } from "@dfs/proto";
import type { Change } from "./sink.js";
import { openStandaloneSink } from "./standalone-sink.js";

/** A row `dfs verify --repair` puts right: the source's row (upsert), or a row to delete. */
export interface RepairRow {
  /** "r": write the source's current row, as a snapshot read is written; "d": delete the row. */
  op: "r" | "d";
  /** The whole row in the source table's column names (for "d", at least its key). */
  row: Row;
}

/** Applies repairs through the DPU's own sink: the same statements, mappings and key maps. */
export interface RepairSink {
  /** Applies rows of one source table in one target transaction; a refusal is thrown. */
  apply(source: TableRef, rows: readonly RepairRow[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The sink `dfs verify --repair` writes through: built as `dfs dlq replay` builds its own, so a
 * repaired row is written exactly as the DPU writes a snapshot read (upsert) or a delete, through
 * the pipeline's mappings where the table is mapped. It does not move the DPU's checkpoint.
 */
export async function openRepairSink(cfg: DfsConfig, log: Logger): Promise<RepairSink> {
  const { sink, close } = await openStandaloneSink(cfg, log, "verify-repair", "repairing");
  return {
    async apply(source, rows) {
      if (rows.length === 0) return;
      const target = await sink.describe(source);
      if (!target)
        throw new DataError(
          ErrorCode.OBJECT_MISSING,
          `target table for ${formatTableRef(source)} does not exist`,
        );
      const batch = ChangeBatch.fromPartial({ db: source.db, table: source.table });
      const changes: Change[] = rows.map((r, i) => ({
        ref: source,
        op: r.op,
        rowIndex: i,
        before: r.op === "d" ? r.row : null,
        after: r.op === "r" ? r.row : null,
        sourceTxn: 0,
        batch,
        raw: new Uint8Array(),
        seq: 0,
        target,
        columns: Object.keys(r.row).filter((n) => target.columns.has(n)),
        keys: null,
      }));
      await sink.replay(changes);
    },
    close,
  };
}
