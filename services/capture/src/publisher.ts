import { Headers, type TableRef } from "@dfs/codec";
import { backoffMs, errorMessage, type Logger, Signal, sleep } from "@dfs/common";
import type { StreamWriter } from "@dfs/nats";
import { entryRows, type JournalEntry, type OpCounts } from "./journal.js";

/** What the publisher needs of the journal. */
export interface PublishSource {
  readonly journalId: string;
  readonly publishedScn: number;
  read(afterScn: number, limit: number): JournalEntry[];
}

export interface PublisherOptions {
  /** The stream (JetStream in the service, a fake in unit tests). */
  stream: StreamWriter;
  journal: PublishSource;
  maxInFlight: number;
  /** The window is bounded by bytes too, so large messages cannot pile up in memory. */
  maxInFlightBytes: number;
  ackTimeoutMs: number;
  reconnect: { initialMs: number; maxMs: number };
  log: Logger;
  /** Every entry up to this SCN is acknowledged by JetStream (called in order, never backwards). */
  onPublished(scn: number, entries: number, rows: number): void;
  /** Each acknowledged batch, in order: its table and rows per op (for the metrics). */
  onAcked?(ref: TableRef, ops: OpCounts): void;
  /** A publish failed and the window is sent again after a backoff. */
  onRetry?(err: unknown): void;
}

interface InFlight {
  scn: number;
  rows: number;
  ref: TableRef | null;
  ops: OpCounts | null;
  bytes: number;
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
    if (last && last.headers[Headers.journal] === journal.journalId) {
      const scn = Number(last.headers[Headers.scn] ?? 0);
      // Only a message this journal published counts: its message id is the entry's. Anyone may
      // publish on the stream, and a foreign message carrying this journal's headers would
      // otherwise move the cursor past entries never sent (they would never be published).
      const entry = Number.isSafeInteger(scn) && scn > acked ? journal.read(scn - 1, 1)[0] : undefined;
      if (entry?.scn === scn && entry.msgId === last.msgId) acked = scn;
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
      if (this.page.length === 0) {
        // Small pages, kept until sent: reading bounded by the window, never read twice.
        this.page = journal.read(this.sentScn, Math.min(Math.max(maxInFlight - this.inflight.length, 1), 32));
        if (this.page.length === 0) {
          await this.signal.wait();
          continue;
        }
      }
      while (
        this.page.length > 0 &&
        this.inflight.length < maxInFlight &&
        this.inflightBytes < maxInFlightBytes
      ) {
        this.send(this.page.shift()!);
      }
      if (this.page.length > 0) await this.signal.wait();
    }
  }

  private send(e: JournalEntry): void {
    const rows = entryRows(e);
    const headers = {
      [Headers.kind]: e.kind,
      [Headers.scn]: String(e.scn),
      [Headers.journal]: this.o.journal.journalId,
      [Headers.position]: e.sortable,
      [Headers.rows]: String(rows),
    };
    const item: InFlight = {
      scn: e.scn,
      rows,
      ref: e.ref,
      ops: e.ops,
      bytes: e.payload.byteLength,
      done: false,
      settled: false,
    };
    this.inflight.push(item);
    this.inflightBytes += item.bytes;
    const expectLastMsgId = this.lastMsgId;
    this.lastMsgId = e.msgId;
    this.sentScn = e.scn;
    this.o.stream
      .publish(e.subject, e.payload, {
        msgId: e.msgId,
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
    while (this.inflight.length > 0 && this.inflight[0]!.done) {
      const head = this.inflight.shift()!;
      this.inflightBytes -= head.bytes;
      this.ackedScn = head.scn;
      entries++;
      rows += head.rows;
      if (head.ref && head.ops) this.o.onAcked?.(head.ref, head.ops);
    }
    if (entries > 0) {
      this.publishedEntries += entries;
      this.publishedRows += rows;
      this.o.onPublished(this.ackedScn, entries, rows);
      this.signal.fire();
    }
  }

  /** Waits until no publish is outstanding (each has its own ack timeout). */
  private async settle(): Promise<void> {
    const deadline = Date.now() + this.o.ackTimeoutMs + 1000;
    while (this.inflight.some((i) => !i.settled) && Date.now() < deadline) {
      await sleep(20).catch(() => {});
    }
  }
}
