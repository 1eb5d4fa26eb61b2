import {
  chunkCount,
  chunkHeaders,
  chunkMsgId,
  Headers,
  parseChunkHeader,
  sha256Hex,
  sliceRange,
  type TableRef,
} from "@dfs/codec";
import { backoffMs, errorMessage, type Logger, Signal, sleep } from "@dfs/common";
import type { StreamWriter } from "@dfs/nats";
import { entryBytes, entryRows, type JournalEntry, type OpCounts } from "./journal.js";

/** What the publisher needs of the journal. */
export interface PublishSource {
  readonly journalId: string;
  readonly publishedScn: number;
  /**
   * Committed entries after `afterScn`: at most `limit`, and past the first, at most `maxBytes` of
   * payload. An entry read back whose payload is stored in parts has `stored` (read a range at a time).
   */
  read(afterScn: number, limit: number, maxBytes?: number): JournalEntry[];
}

export interface PublisherOptions {
  /** The stream (JetStream in the service, a fake in unit tests). */
  stream: StreamWriter;
  journal: PublishSource;
  maxInFlight: number;
  /** The window is bounded by bytes too, so large messages cannot pile up in memory. */
  maxInFlightBytes: number;
  ackTimeoutMs: number;
  /**
   * Most payload bytes of one message: the NATS server's max_payload (as the connection's server
   * info says now) less room for headers: @dfs/nats maxMessageBytes. A larger entry is published as chunks (@dfs/codec chunks.ts).
   */
  maxMessageBytes(): number;
  reconnect: { initialMs: number; maxMs: number };
  log: Logger;
  /** Every entry up to this SCN is acknowledged by JetStream (called in order, never backwards). */
  onPublished(scn: number, entries: number, rows: number): void;
  /** Each acknowledged batch, in order: its table and rows per op (for the metrics). */
  onAcked?(ref: TableRef, ops: OpCounts): void;
  /** A publish failed and the window is sent again after a backoff. */
  onRetry?(err: unknown): void;
}

/** An entry being published as chunks. */
interface Chunking {
  e: JournalEntry;
  /** Bytes of its payload. */
  bytes: number;
  next: number;
  count: number;
  sha256: string;
}

interface InFlight {
  scn: number;
  rows: number;
  ref: TableRef | null;
  ops: OpCounts | null;
  bytes: number;
  /** The entry's last message (its only one, or its last chunk): acknowledging it completes the entry. */
  complete: boolean;
  /** Acknowledged by the stream. */
  done: boolean;
  /** Acknowledged or failed: no longer outstanding. */
  settled: boolean;
}

/**
 * Publishes committed journal entries to JetStream in SCN order with a bounded window of
 * unacknowledged messages. The acknowledged cursor only moves to the oldest unacknowledged
 * entry, never past a gap. Every message carries a stable id (dedupe on replay) and expects the
 * previous message's id (Nats-Expected-Last-Msg-Id), so the stream can never store a later
 * message while an earlier one is missing: per-table order holds even across failures.
 */
export class Publisher {
  private readonly o: PublisherOptions;
  private readonly signal = new Signal();
  private inflight: InFlight[] = [];
  private inflightBytes = 0;
  /** Entries read from the journal and not yet sent, in SCN order. */
  private page: JournalEntry[] = [];
  /** An entry published as chunks, from chunk `next` of `count` (a resync may resume it midway). */
  private chunking: Chunking | null = null;
  /** Where the stream's last message left a chunked entry: its scn, the next chunk and the count. */
  private resume: { scn: number; next: number; count: number } | null = null;
  private sentScn = 0;
  private ackedScn = 0;
  private lastMsgId: string | undefined;
  private failure: unknown = null;
  private stopped = false;
  private running: Promise<void> | null = null;
  /** Counters for status and metrics. */
  publishedEntries = 0;
  publishedRows = 0;
  failures = 0;
  lastError = "";

  constructor(options: PublisherOptions) {
    this.o = options;
  }

  get inFlight(): number {
    return this.inflight.length;
  }

  get acked(): number {
    return this.ackedScn;
  }

  start(): void {
    this.running ??= this.run();
  }

  /** New committed entries are in the journal. */
  notify(): void {
    this.signal.fire();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.signal.fire();
    await this.running;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      try {
        await this.resync();
        attempt = 0;
        await this.pump();
      } catch (err) {
        if (this.stopped) break;
        this.failures++;
        this.lastError = errorMessage(err);
        this.o.onRetry?.(err);
        const wait = backoffMs(attempt++, this.o.reconnect.initialMs, this.o.reconnect.maxMs);
        this.o.log.warn(
          { err: this.lastError, retryInMs: wait, inFlight: this.inflight.length },
          "publish failed; will resync and retry",
        );
        await this.settle();
        await sleep(wait).catch(() => {});
      }
    }
    await this.settle();
  }

  /**
   * Finds where the stream really is: the last stored message tells which journal entry made it,
   * whatever acks were lost. Publishing restarts right after it.
   */
  private async resync(): Promise<void> {
    const journal = this.o.journal;
    const last = await this.o.stream.last();
    let acked = journal.publishedScn;
    this.resume = null;
    if (last && last.headers[Headers.journal] === journal.journalId) {
      const scn = Number(last.headers[Headers.scn] ?? 0);
      // Only a message this journal published counts: its message id is the entry's (or one of its
      // chunks'). Anyone may publish on the stream, and a foreign message carrying this journal's
      // headers would otherwise move the cursor past entries never sent (they would never be published).
      const chunk = parseChunkHeader((name) => last.headers[name]);
      const entry = Number.isSafeInteger(scn) && scn > acked ? journal.read(scn - 1, 1)[0] : undefined;
      const ours =
        entry?.scn === scn &&
        (chunk
          ? last.msgId === chunkMsgId(entry.msgId, chunk.index, chunk.count)
          : entry.msgId === last.msgId);
      if (ours && chunk && chunk.index < chunk.count - 1) {
        // The stream holds the first chunks of an entry: it goes on from the next one, cut as before.
        acked = Math.max(acked, scn - 1);
        this.resume = { scn, next: chunk.index + 1, count: chunk.count };
      } else if (ours) acked = scn;
      else if (scn > acked)
        this.o.log.warn(
          { scn, publishedScn: acked },
          "the stream's last message names this journal but is not one it published; resuming from the published cursor",
        );
    }
    // The first message after a resync carries no expectation: we have just read what the stream
    // holds and nothing of ours is in flight (settled first). The server's own "last msg id" can
    // differ from the last stored message (it is empty after a server restart, and a message
    // deleted by hand leaves it behind), and expecting it would fail forever. The chain restarts
    // from the first message sent.
    this.lastMsgId = undefined;
    this.failure = null;
    this.inflight = [];
    this.inflightBytes = 0;
    this.page = [];
    this.chunking = null;
    this.sentScn = acked;
    if (acked > this.ackedScn) {
      this.ackedScn = acked;
      this.o.onPublished(acked, 0, 0);
    }
    this.ackedScn = acked;
  }

  private async pump(): Promise<void> {
    const { journal, maxInFlight, maxInFlightBytes } = this.o;
    while (!this.stopped) {
      if (this.failure) throw this.failure;
      if (this.page.length === 0 && this.chunking === null) {
        // Small pages, kept until sent: reading bounded by the window (messages and bytes, so that
        // a page of large entries is not read at once), never read twice.
        this.page = journal.read(
          this.sentScn,
          Math.min(Math.max(maxInFlight - this.inflight.length, 1), 32),
          Math.max(maxInFlightBytes - this.inflightBytes, 1),
        );
        if (this.page.length === 0) {
          await this.signal.wait();
          continue;
        }
      }
      while (
        (this.chunking !== null || this.page.length > 0) &&
        this.inflight.length < maxInFlight &&
        this.inflightBytes < maxInFlightBytes
      ) {
        if (this.chunking) this.sendChunk(this.chunking);
        else this.send(this.page.shift()!);
      }
      if (this.chunking !== null || this.page.length > 0) await this.signal.wait();
    }
  }

  private headersOf(e: JournalEntry, rows: number): Record<string, string> {
    return {
      [Headers.kind]: e.kind,
      [Headers.scn]: String(e.scn),
      [Headers.journal]: this.o.journal.journalId,
      [Headers.position]: e.sortable,
      [Headers.rows]: String(rows),
    };
  }

  private send(e: JournalEntry): void {
    const max = this.o.maxMessageBytes();
    const bytes = entryBytes(e);
    const resume = this.resume?.scn === e.scn ? this.resume : null;
    this.resume = null;
    if (resume || bytes > max) {
      const count = resume?.count ?? chunkCount(bytes, max);
      const sha256 = e.sha256 ?? sha256Hex(e.payload);
      this.chunking = { e, bytes, next: resume?.next ?? 0, count, sha256 };
      this.sendChunk(this.chunking);
      return;
    }
    const rows = entryRows(e);
    const payload = e.stored ? e.stored.whole() : e.payload;
    this.publish(e, e.subject, payload, e.msgId, this.headersOf(e, rows), true);
  }

  /**
   * The next chunk of an entry larger than a message; the last one completes the entry. A payload
   * the journal stores in parts is read a chunk at a time, never whole.
   */
  private sendChunk(c: Chunking): void {
    const { e, count, bytes } = c;
    const index = c.next++;
    const complete = index === count - 1;
    if (complete) this.chunking = null;
    const headers = {
      ...this.headersOf(e, entryRows(e)),
      ...chunkHeaders({ index, count, bytes, sha256: c.sha256, of: e.msgId }),
    };
    const [start, end] = sliceRange(bytes, index, count);
    const slice = e.stored ? e.stored.slice(start, end) : e.payload.subarray(start, end);
    this.publish(e, e.subject, slice, chunkMsgId(e.msgId, index, count), headers, complete);
  }

  private publish(
    e: JournalEntry,
    subject: string,
    payload: Uint8Array,
    msgId: string,
    headers: Record<string, string>,
    complete: boolean,
  ): void {
    const item: InFlight = {
      scn: e.scn,
      rows: complete ? entryRows(e) : 0,
      ref: complete ? e.ref : null,
      ops: complete ? e.ops : null,
      bytes: payload.byteLength,
      complete,
      done: false,
      settled: false,
    };
    this.inflight.push(item);
    this.inflightBytes += item.bytes;
    const expectLastMsgId = this.lastMsgId;
    this.lastMsgId = msgId;
    if (complete) this.sentScn = e.scn;
    this.o.stream
      .publish(subject, payload, {
        msgId,
        headers,
        timeoutMs: this.o.ackTimeoutMs,
        ...(expectLastMsgId ? { expectLastMsgId } : {}),
      })
      .then(
        () => {
          item.done = true;
          item.settled = true;
          this.advance();
        },
        (err: unknown) => {
          item.settled = true;
          this.failure ??= err;
          this.signal.fire();
        },
      );
  }

  /** Moves the acknowledged cursor over the acked prefix of the window. */
  private advance(): void {
    let entries = 0;
    let rows = 0;
    let freed = false;
    while (this.inflight.length > 0 && this.inflight[0]!.done) {
      const head = this.inflight.shift()!;
      this.inflightBytes -= head.bytes;
      freed = true;
      if (!head.complete) continue; // a chunk: its entry is acknowledged with its last chunk
      this.ackedScn = head.scn;
      entries++;
      rows += head.rows;
      if (head.ref && head.ops) this.o.onAcked?.(head.ref, head.ops);
    }
    if (entries > 0) {
      this.publishedEntries += entries;
      this.publishedRows += rows;
      this.o.onPublished(this.ackedScn, entries, rows);
    }
    if (freed) this.signal.fire();
  }

  /** Waits until no publish is outstanding (each has its own ack timeout). */
  private async settle(): Promise<void> {
    const deadline = Date.now() + this.o.ackTimeoutMs + 1000;
    while (this.inflight.some((i) => !i.settled) && Date.now() < deadline) {
      await sleep(20).catch(() => {});
    }
  }
}
