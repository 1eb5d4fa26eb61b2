import { decodeBatch, encodeBatch, Headers } from "@dfs/codec";
import { subjects } from "@dfs/nats";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import type { Rejected } from "./apply.js";

/** Headers of a dead letter, besides Dfs-Kind. */
export const DlqHeaders = {
  error: "Dfs-Error",
  errno: "Dfs-Errno",
  streamSeq: "Dfs-Stream-Seq",
  rowIndex: "Dfs-Row-Index",
  consumer: "Dfs-Consumer",
} as const;

/**
 * Publishes each refused change as a one-row ChangeBatch to dfs.<source>._dlq.<db>.<table>, with
 * the error. Message ids are stable (consumer, stream sequence, row index): a replayed batch does
 * not dead-letter twice.
 */
export async function publishDeadLetters(
  nc: NatsConnection,
  sourceId: string,
  consumer: string,
  rejected: Rejected[],
): Promise<void> {
  const js = jetstream(nc);
  await Promise.all(
    rejected.map(async (r) => {
      const origin = r.change.origin;
      if (!origin) throw new Error("a dead letter needs the change's envelope");
      const h = headers();
      h.set(Headers.kind, "batch");
      h.set(DlqHeaders.error, r.error.replace(/[\r\n]+/g, " ").slice(0, 2000));
      h.set(DlqHeaders.errno, String(r.errno ?? ""));
      h.set(DlqHeaders.streamSeq, String(r.change.seq));
      h.set(DlqHeaders.rowIndex, String(r.change.rowIndex));
      h.set(DlqHeaders.consumer, consumer);
      const payload = encodeBatch({ ...origin.batch, rows: [origin.row] });
      await js.publish(subjects.dlq(sourceId, origin.batch.db, origin.batch.table), payload, {
        msgID: `dlq:${consumer}:${r.change.seq}:${r.change.rowIndex}`,
        headers: h,
      });
    }),
  );
}

export interface DlqEntry {
  seq: number;
  subject: string;
  db: string;
  table: string;
  error: string;
  errno: string;
  streamSeq: number;
  rowIndex: number;
  timeMs: number;
  payload: Uint8Array;
}

/** The dead letters of a source, oldest first. */
export async function listDeadLetters(
  nc: NatsConnection,
  sourceId: string,
  limit = 1000,
): Promise<DlqEntry[]> {
  const stream = subjects.dlqStreamName(sourceId);
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const out: DlqEntry[] = [];
  if (info.state.messages === 0) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && out.length < limit; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m) continue;
    const batch = decodeBatch(m.data);
    out.push({
      seq: m.seq,
      subject: m.subject,
      db: batch.db,
      table: batch.table,
      error: m.header.get(DlqHeaders.error) ?? "",
      errno: m.header.get(DlqHeaders.errno) ?? "",
      streamSeq: Number(m.header.get(DlqHeaders.streamSeq) ?? 0),
      rowIndex: Number(m.header.get(DlqHeaders.rowIndex) ?? 0),
      timeMs: m.timestamp ? Date.parse(m.timestamp) : 0,
      payload: m.data,
    });
  }
  return out;
}

/** Removes a dead letter once it has been replayed. */
export async function deleteDeadLetter(nc: NatsConnection, sourceId: string, seq: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.deleteMessage(subjects.dlqStreamName(sourceId), seq, false);
}
