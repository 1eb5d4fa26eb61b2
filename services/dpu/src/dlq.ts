import { decodeBatch, encodeBatchWithRows, Headers, messageIds, type TableRef } from "@dfs/codec";
import { brokerError, decodeToken, subjects } from "@dfs/nats";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import type { Rejected } from "./sink.js";

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
  await Promise.all(
    rejected.map((r) => {
      const { batch, raw, seq, rowIndex } = r.change;
      const { rows: _rows, ...header } = batch;
      const payload = encodeBatchWithRows(header, raw);
      return publishDeadLetter(nc, sourceId, consumer, batch, payload, r, seq, rowIndex);
    }),
  );
}

/**
 * Dead-letters a whole stream message that cannot be decoded (an unknown op, a malformed image),
 * exactly as it came, with the reason.
 */
export async function deadLetterMessage(
  nc: NatsConnection,
  sourceId: string,
  consumer: string,
  table: TableRef,
  payload: Uint8Array,
  seq: number,
  error: string,
): Promise<void> {
  await publishDeadLetter(nc, sourceId, consumer, table, payload, { error, errno: undefined }, seq, -1);
}

async function publishDeadLetter(
  nc: NatsConnection,
  sourceId: string,
  consumer: string,
  table: TableRef,
  payload: Uint8Array,
  why: { error: string; errno: number | undefined },
  seq: number,
  rowIndex: number,
): Promise<void> {
  const h = headers();
  h.set(Headers.kind, "batch");
  h.set(DlqHeaders.error, why.error.replace(/[\r\n]+/g, " ").slice(0, 2000));
  h.set(DlqHeaders.errno, String(why.errno ?? ""));
  h.set(DlqHeaders.streamSeq, String(seq));
  h.set(DlqHeaders.rowIndex, String(rowIndex));
  h.set(DlqHeaders.consumer, consumer);
  const subject = subjects.dlq(sourceId, table.db, table.table);
  // JetStream away or electing a leader: a TransientError, so the group is tried again (the
  // message id makes a second publish of the same dead letter harmless).
  await jetstream(nc)
    .publish(subject, payload, { msgID: messageIds.deadLetter(consumer, seq, rowIndex), headers: h })
    .catch((err: unknown) => Promise.reject(brokerError(err, `cannot dead-letter to ${subject}`)));
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
    // A refused message is kept as it came and may not decode: its subject names the table then.
    const table = tableOf(m.subject, m.data);
    out.push({
      seq: m.seq,
      subject: m.subject,
      db: table.db,
      table: table.table,
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

/** A dead letter's table: its batch's, or its subject's when the payload is not a batch. */
function tableOf(subject: string, payload: Uint8Array): TableRef {
  try {
    const b = decodeBatch(payload);
    if (b.db !== "" && b.table !== "") return { db: b.db, table: b.table };
  } catch {
    // not a batch: a message refused whole
  }
  const t = subject.split(".");
  if (t.length !== 5) return { db: "", table: "" };
  try {
    return { db: decodeToken(t[3]!), table: decodeToken(t[4]!) };
  } catch {
    return { db: t[3]!, table: t[4]! };
  }
}

/** Removes a dead letter once it has been replayed. */
export async function deleteDeadLetter(nc: NatsConnection, sourceId: string, seq: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.deleteMessage(subjects.dlqStreamName(sourceId), seq, false);
}
