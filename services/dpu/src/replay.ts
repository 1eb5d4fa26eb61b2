import { decodeBatch, decodeChanges, formatTableRef } from "@dfs/codec";
import { DataError, ErrorCode, errorMessage, type Logger } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import type { NatsConnection } from "@nats-io/transport-node";
import { deleteDeadLetter, listDeadLetters, readDeadLetter } from "./dlq.js";
import type { Sink } from "./sink.js";
import { openStandaloneSink } from "./standalone-sink.js";
import { findNewerChange, keysOf } from "./superseded.js";

export interface ReplayResult {
  seq: number;
  table: string;
  ok: boolean;
  error?: string;
  /**
   * Not applied: a later change in the stream (this sequence) changes the same row, so replaying
   * would move it back to an older image. Removed from the dead letters like a replayed one.
   */
  superseded?: number;
}

/**
 * Applies dead letters again (after the cause was fixed) through a sink (the running DPU's own, or
 * one built the same way by `dfs dlq replay`) and the same decoding as the stream; each one that
 * commits is removed from the dead-letter stream. `seqs` picks dead letters (empty = all). A dead
 * letter whose row a later change in the stream changes again is not applied (it would move the
 * row back to an older image) but reported as superseded and removed; where the stream no longer
 * tells (later messages expired), it is refused unless `force`.
 */
export async function replayDeadLetters(
  nc: NatsConnection,
  sourceId: string,
  sink: Pick<Sink, "describe" | "replay">,
  seqs: readonly number[] = [],
  o: { force?: boolean } = {},
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  const wanted = new Set(seqs);
  for (const entry of await listDeadLetters(nc, sourceId)) {
    if (wanted.size > 0 && !wanted.has(entry.seq)) continue;
    const name = formatTableRef({ db: entry.db, table: entry.table });
    try {
      // A message refused whole (not capture's) does not decode: it stays, with this reason. A
      // letter stored as chunks is read now, one at a time (the list holds none of them).
      const batch = decodeBatch(await readDeadLetter(nc, sourceId, entry));
      const ref = { db: batch.db, table: batch.table };
      const target = await sink.describe(ref);
      if (!target) throw new DataError(ErrorCode.OBJECT_MISSING, `target table for ${name} does not exist`);
      const columns = batch.columns.map((c) => c.name).filter((n) => target.columns.has(n));
      const changes = decodeChanges(batch).map((d) => ({
        ...d,
        seq: entry.streamSeq,
        target,
        columns,
        keys: null,
      }));
      const keys = new Set(changes.flatMap((c) => keysOf(c, target.key)));
      if (!o.force && keys.size > 0) {
        const at = { seq: entry.streamSeq, rowIndex: entry.rowIndex };
        const s = await findNewerChange(nc, sourceId, ref, at, target.key, keys);
        if (s.kind === "superseded") {
          await deleteDeadLetter(nc, sourceId, entry);
          results.push({ seq: entry.seq, table: name, ok: true, superseded: s.seq });
          continue;
        }
        if (s.kind === "unknown")
          throw new DataError(
            ErrorCode.DATA_INVALID,
            `not replayed: ${s.reason}; replay it with --force to apply it anyway`,
          );
      }
      await sink.replay(changes);
      await deleteDeadLetter(nc, sourceId, entry);
      results.push({ seq: entry.seq, table: name, ok: true });
    } catch (err) {
      results.push({ seq: entry.seq, table: name, ok: false, error: errorMessage(err) });
    }
  }
  return results;
}

/** `dfs dlq replay` without a running DPU: the DPU's sink and decoding, on their own. */
export async function replayFromConfig(
  cfg: DfsConfig,
  nc: NatsConnection,
  seqs: readonly number[],
  log: Logger,
  o: { force?: boolean } = {},
): Promise<ReplayResult[]> {
  // The pipeline use replays through its mappings and key maps, as the DPU applies.
  const { sink, close } = await openStandaloneSink(cfg, log, "dlq-replay", "replaying dead letters");
  try {
    return await replayDeadLetters(nc, cfg.source.id, sink, seqs, o);
  } finally {
    await close();
  }
}
