import { Headers } from "@dfs/codec";
import { backoffMs, errorMessage, type Logger, sleep } from "@dfs/common";
import { lastPublished } from "@dfs/nats";
import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import type { Journal, JournalEntry } from "./journal.js";

export interface PublisherOptions {
  nc: NatsConnection;
  stream: string;
  journal: Journal;
  maxInFlight: number;
  /** The window is bounded by bytes too, so large messages cannot pile up in memory. */
  maxInFlightBytes: number;
  ackTimeoutMs: number;
  reconnect: { initialMs: number; maxMs: number };
  log: Logger;
  /** Every entry up to this SCN is acknowledged by JetStream (called in order, never backwards). */
  onPublished(scn: number, entries: number, rows: number): void;
  /** Each acknowledged batch, in order: its subject and rows per op (for the metrics). */
  onAcked?(subject: string, ops: string): void;
  /** A publish failed and the window is sent again after a backoff. */
  onRetry?(err: unknown): void;
}

interface InFlight {
  scn: number;
  rows: number;
  subject: string;
  ops: string;
  bytes: number;
  /** Acknowledged by the stream. */
  done: boolean;
  /** Acknowledged or failed: no longer outstanding. */
  settled: boolean;
}

/** A promise that the publisher waits on until something happens (new commits, an ack, a failure). */
class Signal {
  private resolve: (() => void) | null = null;
  private promise: Promise<void> | null = null;
  wait(): Promise<void> {
    if (!this.promise) this.promise = new Promise((r) => (this.resolve = r));
    return this.promise;
  }
  fire(): void {
    const r = this.resolve;
    this.resolve = null;
    this.promise = null;
    r?.();
  }
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
  private readonly js: JetStreamClient;
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
    this.js = jetstream(options.nc);
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
    const last = await lastPublished(this.o.nc, this.o.stream);
    let acked = journal.publishedScn;
    if (last && last.headers[Headers.journal] === journal.journalId) {
      acked = Math.max(acked, Number(last.headers[Headers.scn] ?? 0));
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
    const h = headers();
    h.set(Headers.kind, e.kind);
    h.set(Headers.scn, String(e.scn));
    h.set(Headers.journal, this.o.journal.journalId);
    h.set(Headers.position, e.pos);
    h.set(Headers.rows, String(e.rows));
    const item: InFlight = {
      scn: e.scn,
      rows: e.rows,
      subject: e.subject,
      ops: e.ops,
      bytes: e.payload.byteLength,
      done: false,
      settled: false,
    };
    this.inflight.push(item);
    this.inflightBytes += item.bytes;
    const expect = this.lastMsgId ? { lastMsgID: this.lastMsgId } : undefined;
    this.lastMsgId = e.msgId;
    this.sentScn = e.scn;
    this.js
      .publish(e.subject, e.payload, {
        msgID: e.msgId,
        headers: h,
        timeout: this.o.ackTimeoutMs,
        expect,
        retries: 0,
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
      if (head.ops) this.o.onAcked?.(head.subject, head.ops);
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
