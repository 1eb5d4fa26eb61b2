import type { Position } from "@dfs/codec";
import { errorMessage, type Logger } from "@dfs/common";
import type { Assembler } from "./assembler.js";
import type { Checkpoint, Journal, JournalEntry } from "./journal.js";
import type { CaptureTelemetry } from "./telemetry.js";

/** Holds the binlog reader back while the journal is full (other reasons to pause are kept apart). */
export interface Throttle {
  pause(): void;
  resume(): void;
  /** Whether this throttle holds the reader now. */
  readonly paused: boolean;
}

export interface JournalWriterOptions {
  journal: Journal;
  /** Told that committed entries are waiting to be published. */
  notify(): void;
  /** The acknowledged SCN: entries up to it are trimmed from the journal. */
  acked(): number;
  telemetry: CaptureTelemetry;
  throttle: Throttle;
  /** Where the reader is, for heartbeats between transactions. */
  position(): Position;
  groupCommitMs: number;
  groupCommitBytes: number;
  /** Unpublished journal bytes at which the reader pauses (resumes below 80%). */
  maxJournalBytes: number;
  heartbeatIntervalMs: number;
  trimIntervalMs: number;
  log: Logger;
  /** A journal write failed: capture cannot go on. */
  onFatal(err: unknown): void;
}

/**
 * Moves what the assembler completes into the journal: group commit (complete transactions wait at
 * most groupCommitMs, or until groupCommitBytes are pending, so several share one fsync), the
 * heartbeat between transactions, trimming of published entries, and backpressure on the reader
 * when the unpublished journal reaches its size limit.
 */
export class JournalWriter {
  private assembler!: Assembler;
  private flushScheduled = false;
  private flushTimer: NodeJS.Timeout | null = null;
  private txnsCounted = 0;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private trimTimer: NodeJS.Timeout | null = null;

  constructor(private readonly o: JournalWriterOptions) {}

  /** The assembler this writer flushes (the assembler writes through `write`). */
  bind(assembler: Assembler): void {
    this.assembler = assembler;
  }

  /** The assembler's write: entries and (for complete transactions) the checkpoint, in one commit. */
  readonly write = (entries: JournalEntry[], checkpoint: Checkpoint | null): void => {
    const { journal, telemetry } = this.o;
    journal.append(entries, checkpoint);
    telemetry.journaled(entries);
    telemetry.transactions(this.assembler.txnsSeen - this.txnsCounted);
    this.txnsCounted = this.assembler.txnsSeen;
    this.o.notify();
    // Checked on every write too, so a burst cannot overshoot the limit by much.
    if (journal.stats().bytes >= this.o.maxJournalBytes) this.backpressure();
  };

  /** After every binlog event: commit now, or within groupCommitMs. */
  afterEvent(): void {
    const a = this.assembler;
    if (!a.hasPending) return;
    if (a.pendingBytes >= this.o.groupCommitBytes) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      const ms = this.o.groupCommitMs;
      if (ms > 0) this.flushTimer = setTimeout(() => this.flush(), ms);
      else setImmediate(() => this.flush());
    }
  }

  /** Writes every complete transaction held in memory. */
  flush(): void {
    this.flushScheduled = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    try {
      this.assembler.flush();
    } catch (err) {
      this.o.onFatal(err);
    }
  }

  /**
   * Keeps what is complete and forgets the rest, so that the journal and the assembler are both at
   * the checkpoint, from where a new reader starts. The reader must be stopped.
   */
  settle(): Checkpoint {
    this.assembler.flush();
    const { journal } = this.o;
    journal.discardIncomplete();
    const c = journal.checkpoint!;
    this.assembler.reset(journal.nextScn, c.txnOrdinal, c.position);
    return c;
  }

  /** Moves the checkpoint to `position` (a control call; the reader is stopped and settled). */
  moveTo(position: Position): Checkpoint {
    const c = this.settle();
    const moved = { ...c, position };
    this.o.journal.append([], moved);
    this.assembler.reset(this.o.journal.nextScn, c.txnOrdinal, position);
    return moved;
  }

  start(): void {
    this.heartbeatTimer = setInterval(() => {
      // No position while the reader is being restarted (stopped, waiting out its backoff): a
      // heartbeat then would make the checkpoint empty, and the next reader would start at the
      // beginning of the binlog. The checkpoint stays where the last transaction left it.
      const at = this.o.position();
      if (!at.isNone) this.assembler.heartbeat(at);
      if (!this.flushScheduled) this.flush();
    }, this.o.heartbeatIntervalMs);
    this.trimTimer = setInterval(() => {
      try {
        this.o.journal.markPublished(this.o.acked());
        this.backpressure();
      } catch (err) {
        this.o.onFatal(err);
      }
    }, this.o.trimIntervalMs);
  }

  /** Stops the timers and writes what is complete; the last acknowledged entries are trimmed. */
  close(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.trimTimer) clearInterval(this.trimTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    try {
      this.assembler.flush();
      this.o.journal.markPublished(this.o.acked());
    } catch (err) {
      // The journal may already be closed after a fatal error.
      this.o.log.debug({ err: errorMessage(err) }, "final journal flush skipped");
    }
  }

  /** Pauses the reader while the unpublished journal is at its limit; resumes below 80% of it. */
  private backpressure(): void {
    const bytes = this.o.journal.stats().bytes;
    const { throttle, maxJournalBytes } = this.o;
    if (bytes >= maxJournalBytes && !throttle.paused) {
      this.o.log.warn({ bytes }, "journal full: pausing the binlog reader until publishing catches up");
      throttle.pause();
    } else if (bytes < maxJournalBytes * 0.8 && throttle.paused) {
      throttle.resume();
    }
  }
}
