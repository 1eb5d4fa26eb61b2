import {
  ChunkJoiner,
  chunkCount,
  chunkHeaders,
  chunkMsgId,
  chunkSlice,
  decodeBatch,
  encodeBatchWithRows,
  Headers,
  messageIds,
  parseChunkHeader,
  sha256Hex,
  type TableRef,
} from "@dfs/codec";
import { DataError, ErrorCode } from "@dfs/common";
import { brokerError, decodeToken, maxMessageBytes, subjects } from "@dfs/nats";
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
  /** A dead letter stored as chunks: how many (its own payload is then empty). */
  chunks: "Dfs-Dlq-Chunks",
  /** The subject its chunks are on (subjects.dlqChunks). */
  chunkSubject: "Dfs-Dlq-Chunk-Subject",
  /** The stream sequence of its first chunk (where reading them starts). */
  firstChunk: "Dfs-Dlq-First-Chunk",
  /** Bytes and SHA-256 (hex) of the whole payload. */
  bytes: "Dfs-Dlq-Bytes",
  sha256: "Dfs-Dlq-Sha256",
} as const;

/**
 * Publishes each refused change as a one-row ChangeBatch to dfs.<source>._dlq.<db>.<table>, with
 * the error. Message ids are stable (consumer, stream sequence, row index): a replayed batch does
 * not dead-letter twice. A row larger than a message is stored as chunks (see publishDeadLetter).
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

/**
 * One dead letter. A payload that fits in a message (the NATS server's max_payload, less room for
 * the headers) is the letter's own payload. A larger one (a refused row of many MB) is published
 * first, as chunks cut like the stream's (@dfs/codec chunks.ts), on a subject of the letter's own
 * (subjects.dlqChunks), one at a time; then the letter itself, without payload, names them (count,
 * subject, first sequence, size, SHA-256). The letter is thus stored only once its chunks are: a
 * DPU stopped midway leaves chunks no letter names (it publishes them again, deduplicated by their
 * ids, when the change is refused again), never a letter without its chunks. Chunks rather than a
 * reference to the stream's message: the dead-letter stream keeps the row however long the main
 * stream keeps its messages (their max_age or max_bytes may have dropped it by the time the cause
 * is fixed), as it does for a letter that fits in a message.
 */
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
  const id = messageIds.deadLetter(consumer, seq, rowIndex);
  const js = jetstream(nc);
  // JetStream away or electing a leader: a TransientError, so the group is tried again (the
  // message ids make a second publish of the same dead letter harmless).
  const fail = (err: unknown) => Promise.reject(brokerError(err, `cannot dead-letter to ${subject}`));
  const max = maxMessageBytes(nc);
  let body = payload;
  if (payload.byteLength > max) {
    const count = chunkCount(payload.byteLength, max);
    const sha256 = sha256Hex(payload);
    const chunkSubject = subjects.dlqChunks(sourceId, table.db, table.table, id);
    let first = 0;
    for (let index = 0; index < count; index++) {
      const ch = headers();
      for (const [k, v] of Object.entries(
        chunkHeaders({ index, count, bytes: payload.byteLength, sha256, of: id }),
      ))
        ch.set(k, v);
      const ack = await js
        .publish(chunkSubject, chunkSlice(payload, index, count), {
          msgID: chunkMsgId(id, index, count),
          headers: ch,
        })
        .catch(fail);
      if (index === 0) first = ack.seq; // a duplicate's ack names the chunk stored before
    }
    h.set(DlqHeaders.chunks, String(count));
    h.set(DlqHeaders.chunkSubject, chunkSubject);
    h.set(DlqHeaders.firstChunk, String(first));
    h.set(DlqHeaders.bytes, String(payload.byteLength));
    h.set(DlqHeaders.sha256, sha256);
    body = new Uint8Array(0);
  }
  await js.publish(subject, body, { msgID: id, headers: h }).catch(fail);
}

/** Where a dead letter stored as chunks keeps them. */
export interface DlqChunks {
  count: number;
  subject: string;
  /** Stream sequence of its first chunk. */
  firstSeq: number;
  bytes: number;
  sha256: string;
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
  /** Bytes of its payload. */
  bytes: number;
  /** Its payload; null for one stored as chunks (`chunks`): read it with readDeadLetter. */
  payload: Uint8Array | null;
  /** Where its chunks are, for a dead letter larger than a message; null otherwise. */
  chunks: DlqChunks | null;
}

/**
 * The dead letters of a source, oldest first. Only the letters are read (one message get each,
 * from one to the next by subject): the chunks of large ones stay in the stream until
 * readDeadLetter asks for them.
 */
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
  // Letters are on 5-token subjects, their chunks on 6-token ones.
  const letters = `dfs.${sourceId}._dlq.*.*`;
  let seq = info.state.first_seq;
  while (out.length < limit && seq <= info.state.last_seq) {
    const m = await jsm.streams.getMessage(stream, { seq, next_by_subj: letters } as never);
    if (!m) break;
    seq = m.seq + 1;
    const chunks = chunksOf((name) => m.header.get(name) || undefined);
    // A refused message is kept as it came and may not decode: its subject names the table then.
    const table = tableOf(m.subject, chunks ? null : m.data);
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
      bytes: chunks ? chunks.bytes : m.data.byteLength,
      payload: chunks ? null : m.data,
      chunks,
    });
  }
  return out;
}

/** What a letter's headers say of its chunks; null for a letter that holds its payload. */
function chunksOf(get: (name: string) => string | undefined): DlqChunks | null {
  const count = get(DlqHeaders.chunks);
  if (count === undefined) return null;
  return {
    count: Number(count),
    subject: get(DlqHeaders.chunkSubject) ?? "",
    firstSeq: Number(get(DlqHeaders.firstChunk) ?? 0),
    bytes: Number(get(DlqHeaders.bytes) ?? 0),
    sha256: get(DlqHeaders.sha256) ?? "",
  };
}

/**
 * A dead letter's payload: its own, or its chunks joined (read one at a time, by their subject,
 * into one buffer of the payload's size, checked against its size and SHA-256). A chunk of an
 * earlier, interrupted publish of the same letter (the same bytes, published again once its id
 * left the duplicate window) is passed over. Chunks missing, or not the letter's, are a DataError:
 * a dead letter is never replayed truncated.
 */
export async function readDeadLetter(
  nc: NatsConnection,
  sourceId: string,
  entry: DlqEntry,
): Promise<Uint8Array> {
  if (entry.payload) return entry.payload;
  const c = entry.chunks;
  const name = `dead letter ${entry.seq}`;
  if (!c || !(c.count > 0) || c.subject === "" || !/^[0-9a-f]{64}$/.test(c.sha256))
    throw new DataError(ErrorCode.DATA_INVALID, `${name} names its chunks with malformed headers`);
  const stream = subjects.dlqStreamName(sourceId);
  const jsm = await jetstreamManager(nc);
  const missing = (index: number) =>
    new DataError(
      ErrorCode.DATA_INVALID,
      `${name} is incomplete: chunk ${index} of ${c.count} is missing from ${stream} (subject ${c.subject}); it cannot be replayed`,
    );
  const joiner = new ChunkJoiner();
  let seq = c.firstSeq > 0 ? c.firstSeq : 1;
  let next = 0;
  for (;;) {
    const m = await jsm.streams.getMessage(stream, { seq, next_by_subj: c.subject } as never);
    if (!m) throw missing(next);
    seq = m.seq + 1;
    const h = parseChunkHeader((n) => m.header.get(n) || undefined);
    if (!h || h.count !== c.count || h.bytes !== c.bytes || h.sha256 !== c.sha256)
      throw new DataError(
        ErrorCode.DATA_INVALID,
        `${name}: message ${m.seq} on ${c.subject} is not one of its chunks`,
      );
    if (h.index < next) continue; // an earlier publish's copy of a chunk already joined
    if (h.index > next) throw missing(next);
    // The joiner checks each chunk's length and the whole's checksum; sequences are the chunks' own.
    const r = joiner.add({ header: h, seq: next + 1, data: m.data });
    next++;
    if (r.kind === "whole") return r.data;
  }
}

/** A dead letter's table: its batch's, or its subject's when the payload is not a batch. */
function tableOf(subject: string, payload: Uint8Array | null): TableRef {
  if (payload)
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

/**
 * Removes a dead letter once it has been replayed: the letter, then its chunks (the letter first,
 * so that one stopped midway leaves chunks no letter names, never a letter without its chunks).
 */
export async function deleteDeadLetter(
  nc: NatsConnection,
  sourceId: string,
  entry: Pick<DlqEntry, "seq" | "chunks">,
): Promise<void> {
  const stream = subjects.dlqStreamName(sourceId);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.deleteMessage(stream, entry.seq, false);
  if (entry.chunks?.subject) await jsm.streams.purge(stream, { filter: entry.chunks.subject });
}
