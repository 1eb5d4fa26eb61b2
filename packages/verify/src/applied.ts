/**
 * "Has the DPU applied past this source position?": the question every chunk asks before its target
 * side is read. The source position is the binlog's end right after the source side was read. The
 * DPU's is read where the DPU itself keeps it: its low-water mark in the target's `_dfs_checkpoint`
 * (a stream sequence, written in the same transaction as the rows), and the source position that
 * capture put on that stream message (the Dfs-Pos header; heartbeats carry one too, so an idle
 * source or writes to tables nobody captures still move it). Nothing of the DPU's has to be
 * reachable but the target and the stream.
 */
import { Headers, Position } from "@dfs/codec";
import { DataError, ErrorCode, sleep, TransientError } from "@dfs/common";
import { MysqlErrno, type MysqlSession, quoteId } from "@dfs/mysql";
import { subjects } from "@dfs/nats";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** The source's binlog end as Position.sortable ("0000000042:000000001234"). */
export async function sourcePosition(s: MysqlSession): Promise<string> {
  let rows: { File?: string; Position?: string | number }[];
  try {
    rows = await s.query("SHOW MASTER STATUS");
  } catch (err) {
    // MySQL 8.4 renamed it.
    if ((err as { errno?: number }).errno !== MysqlErrno.PARSE_ERROR) throw err;
    rows = await s.query("SHOW BINARY LOG STATUS");
  }
  const r = rows[0];
  if (!r?.File)
    throw new DataError(
      ErrorCode.DATA_INVALID,
      "the source has no binary log (log_bin is off): nothing to verify against",
    );
  return Position.at(r.File, Number(r.Position)).sortable;
}

export interface AppliedOptions {
  target: MysqlSession;
  nc: NatsConnection;
  sourceId: string;
  metaDatabase: string;
  /** How long to wait for the DPU to pass one position before giving up. */
  waitMs: number;
  signal?: AbortSignal;
}

/** Follows the DPU's applied source position (every `dpu-*` consumer of the source: the slowest). */
export class AppliedWatch {
  private known = "";
  private readonly bySeq = new Map<number, string>();
  private jsm: JetStreamManager | null = null;
  /** Polls made (for the report). */
  polls = 0;

  constructor(private readonly o: AppliedOptions) {}

  /** The sortable source position every DPU consumer of the source has applied ("" = none yet). */
  async applied(): Promise<string> {
    this.polls++;
    const rows = await this.o.target
      .query<{ c: string; s: string | number }[]>(
        `SELECT consumer AS c, stream_seq AS s FROM ${quoteId(this.o.metaDatabase)}.\`_dfs_checkpoint\``,
      )
      .catch((err: unknown) => {
        if ((err as { errno?: number }).errno === MysqlErrno.NO_SUCH_TABLE) return [];
        throw err;
      });
    const prefix = `${this.o.sourceId}:dpu-`;
    let slowest: string | null = null;
    for (const r of rows) {
      if (!r.c.startsWith(prefix)) continue;
      const pos = await this.positionOf(Number(r.s));
      if (slowest === null || pos < slowest) slowest = pos;
    }
    return slowest ?? "";
  }

  /** Waits until the DPU has applied past `pos` (sortable); fails after `waitMs` naming both. */
  async waitPast(pos: string): Promise<void> {
    if (this.known >= pos) return;
    const deadline = Date.now() + this.o.waitMs;
    for (let i = 0; ; i++) {
      const now = await this.applied();
      if (now > this.known) this.known = now;
      if (this.known >= pos) return;
      if (Date.now() > deadline)
        throw new TransientError(
          ErrorCode.TARGET_UNAVAILABLE,
          `the DPU has not applied past source position ${show(pos)} within ${this.o.waitMs} ms (it is at ${show(this.known)}): is it running, and is it keeping up? (--wait raises the limit)`,
        );
      await sleep(Math.min(20 * 2 ** i, 250), this.o.signal);
    }
  }

  /** The source position of a stream message, from its Dfs-Pos header ("" when it has none). */
  private async positionOf(seq: number): Promise<string> {
    if (seq <= 0) return "";
    const cached = this.bySeq.get(seq);
    if (cached !== undefined) return cached;
    this.jsm ??= await jetstreamManager(this.o.nc);
    const m = await this.jsm.streams
      .getMessage(subjects.streamName(this.o.sourceId), { seq })
      .catch(() => null);
    // A message already gone from the stream: the DPU is past it, but where is not known; wait for the next.
    const pos = m?.header?.get(Headers.position) ?? "";
    if (this.bySeq.size > 1000) this.bySeq.clear();
    this.bySeq.set(seq, pos);
    return pos;
  }
}

function show(sortable: string): string {
  const m = /^(\d+):(\d+)$/.exec(sortable);
  return m ? `binlog file #${Number(m[1])} offset ${Number(m[2])}` : "(none yet)";
}
