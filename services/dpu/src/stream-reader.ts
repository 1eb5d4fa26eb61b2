import type { ChunkHeader } from "@dfs/codec";
import {
  backoffMs,
  DataError,
  ErrorCode,
  errorMessage,
  type Logger,
  retryTransient,
  Signal,
  sleep,
  type TransientRetry,
} from "@dfs/common";
import { brokerError } from "@dfs/nats";
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Pulled, pullOnce } from "./pull.js";

/** A stream message as the transaction builder sees it. */
export interface StreamMessage {
  readonly seq: number;
  /** The subject it was published on ("" when not known). */
  readonly subject: string;
  readonly data: Uint8Array;
  /** The Dfs-Kind header: "batch", "ddl" or "heartbeat" (anything else is refused, see admit.ts). */
  readonly kind: string;
  /** The Dfs-Scn and Dfs-Journal headers, "" when absent. */
  readonly scn: string;
  readonly journal: string;
  /** A slice of a larger message (chunked-source.ts joins them); absent or null for a whole one. */
  readonly chunk?: ChunkHeader | null;
  /** A joined message: the sequence of its first chunk (`seq` is its last one's). */
  readonly firstSeq?: number;
  ack(): void;
}

/** What the transaction builder needs of a stream: the queue of delivered messages and the gap check. */
export interface MessageSource {
  /** The next delivered message, without taking it. */
  peek(): StreamMessage | undefined;
  /** Takes the next delivered message. */
  take(): StreamMessage;
  /** Whether the stream still holds a message with a sequence in [from, to). */
  anyStored(from: number, to: number): Promise<boolean>;
  /** Resolves when a message arrives, or after `ms`. */
  waitForMore?(ms: number): Promise<void>;
  /** Reading starts again after `lowWater`: anything half-taken is forgotten. */
  reset?(lowWater: number): void;
}

export interface StreamReaderOptions {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  /** Most messages queued in memory; reading waits for room. */
  maxQueue: number;
  /** Most payload bytes queued in memory; reading waits for room. */
  maxQueueBytes: number;
  /** Most bytes one pull may ask for: well under the server's per-client pending limit. */
  maxPullBytes: number;
  /** The sequence everything up to which is in the target (the checkpoint), for the pending message's age. */
  applied(): number;
  /**
   * How JetStream API calls (stream info, consumer re-creation) wait while JetStream is away or
   * electing a leader; its signal ends the waiting when the DPU stops.
   */
  retry: TransientRetry;
  log: Logger;
}

/** How long a pull waits for messages when the stream has none. */
const PULL_EXPIRES_MS = 2_000;
/** How long before a pull's expiry the next one is asked for (see pump). */
const RENEW_BEFORE_MS = 300;
/** Most messages one pull asks for. */
const PULL_BATCH = 1_000;
/** A pull asks for at least this many bytes, so that one large message always fits. */
const MIN_PULL_BYTES = 8 * 1024 * 1024;

/**
 * Reads the stream through a durable pull consumer into a bounded queue, in stream order.
 *
 * Reading pulls only what the queue has room for (messages and bytes), one pull at a time, after
 * the queue has room again. A consume() loop would not do: it asks for more whenever messages
 * arrive, not when they are used, so a DPU slower than the stream buffers in the client until the
 * consumer's max_ack_pending stops the server, whose open pull requests on nats-server 2.9 then
 * sit until they expire (30 s) before anything more is delivered: idle time with work pending.
 *
 * Delivery always starts right after the checkpoint: the consumer is (re)created at checkpoint + 1
 * whenever reading starts again. Messages delivered but not acknowledged (a crashed process's
 * prefetch, messages lost when NATS cut a slow client off) would otherwise come back only after
 * ack_wait, behind newer ones, and the checkpoint would have passed them. Each (re)creation is a
 * new generation; a reader of an older generation adds nothing more to the queue.
 */
export class StreamReader implements MessageSource {
  private readonly queue: StreamMessage[] = [];
  private queueBytes = 0;
  /** Fires when a message arrives, or reading stops. */
  readonly arrived = new Signal();
  /** Fires when the queue has more room, or reading stops. */
  private readonly roomFreed = new Signal();
  private reading: Promise<void> = Promise.resolve();
  private generation = 0;
  private closed = false;
  private jsmValue: JetStreamManager | null = null;
  /** Aborted when the current generation ends (a new one, or a stop): its pull ends at once. */
  private generationStop = new AbortController();
  /** Messages after the checkpoint that the consumer has not had acknowledged, refreshed in the background. */
  pending = 0;
  /** Stream time (ms) of the oldest message after the checkpoint; 0 when none. Refreshed with `pending`. */
  oldestPendingMs = 0;
  /** The stream's max_age in seconds (0: kept forever). Refreshed with `pending`. */
  streamMaxAgeSeconds = 0;
  private pendingTimer: NodeJS.Timeout | null = null;

  constructor(private readonly o: StreamReaderOptions) {}

  get queued(): number {
    return this.queue.length;
  }

  peek(): StreamMessage | undefined {
    return this.queue[0];
  }

  take(): StreamMessage {
    const m = this.queue.shift();
    if (!m) throw new Error("take() on an empty queue");
    this.queueBytes -= m.data.byteLength;
    this.roomFreed.fire();
    return m;
  }

  /** Starts (or restarts) delivery at the message after `checkpoint`. */
  async readFrom(checkpoint: number): Promise<void> {
    // The old reader is not awaited (its pending pull may take a while to end); its generation is
    // stale from here on, so it can no longer add to the queue.
    const gen = ++this.generation;
    this.generationStop.abort();
    this.generationStop = new AbortController();
    this.queue.length = 0;
    this.queueBytes = 0;
    this.arrived.fire();
    this.roomFreed.fire();
    const { stream, consumer: name } = this.o;
    const last = (await this.api("read stream", (jsm) => jsm.streams.info(stream))).state.last_seq;
    if (gen !== this.generation) return; // replaced (or closed) meanwhile
    if (last < checkpoint)
      // Reading on would skip the new stream's messages up to the checkpoint without a word.
      throw new DataError(
        ErrorCode.STREAM_LOST,
        `stream ${stream} ends at sequence ${last}, below this DPU's checkpoint ${checkpoint}: the stream was re-created or purged after the DPU applied up to ${checkpoint}, so sequences no longer match what it applied. Restore the stream, or start this consumer over on the new one: delete its rows (consumer = '${name}') from the target's _dfs_checkpoint and _dfs_applied and re-snapshot the tables (docs/dpu.md, "Lost messages")`,
      );
    await this.api("delete consumer", (jsm) =>
      jsm.consumers.delete(stream, name).catch((err: unknown) => {
        // None yet: nothing to delete.
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return true;
        throw err;
      }),
    );
    await this.api("create consumer", (jsm) =>
      jsm.consumers.add(stream, {
        durable_name: name,
        // Acknowledging a group's last message acknowledges the whole group.
        ack_policy: AckPolicy.All,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: checkpoint + 1,
        // Reading is bounded by the queue (pulls ask only for what it has room for), not by this.
        max_ack_pending: 1_000_000,
        ack_wait: 300_000_000_000, // 5 min: the checkpoint, not redelivery, protects against doubles
      }),
    );
    if (gen !== this.generation) return;
    this.reading = this.pump(gen);
    this.pendingTimer ??= setInterval(() => void this.refreshPending(), 2000);
  }

  async waitForMore(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.arrived.wait(), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  async anyStored(from: number, to: number): Promise<boolean> {
    // The stream's first sequence (below it: expired or purged) and its interior deletions.
    const info = await this.api("read stream", (jsm) =>
      jsm.streams.info(this.o.stream, { deleted_details: true }),
    );
    const start = Math.max(from, info.state.first_seq);
    if (start >= to) return false;
    let deleted = 0;
    for (const seq of info.state.deleted ?? []) if (seq >= start && seq < to) deleted++;
    return deleted < to - start;
  }

  /** The stream's first stored sequence (for "earliest"). */
  async firstSeq(): Promise<number> {
    return Math.max(1, (await (await this.jsm()).streams.info(this.o.stream)).state.first_seq);
  }

  /** The stream's last sequence (for "latest"). */
  async lastSeq(): Promise<number> {
    return (await (await this.jsm()).streams.info(this.o.stream)).state.last_seq;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    this.generationStop.abort();
    if (this.pendingTimer) clearInterval(this.pendingTimer);
    this.arrived.fire();
    this.roomFreed.fire();
    await this.reading.catch(() => {});
  }

  /**
   * Pulls for what the queue has room for (messages and bytes), one pull at a time, except near a
   * pull's expiry: then the next one is asked for before it ends. nats-server 2.9 drops a pull
   * request that expires just as a message arrives without telling the client (no 408), and
   * delivers nothing more until the client gives up on it; with the next request already waiting,
   * the message goes to that one instead (measured: 2 s stalls in about one run of three before).
   */
  private async pump(gen: number): Promise<void> {
    let failures = 0;
    let minBytes = MIN_PULL_BYTES;
    /** Messages and bytes the open pulls may still deliver. */
    let askedMessages = 0;
    let askedBytes = 0;
    let open = 0;
    const ended = new Signal();
    while (gen === this.generation && !this.closed) {
      const roomMessages = this.o.maxQueue - this.queue.length - askedMessages;
      const roomBytes = this.o.maxQueueBytes - this.queueBytes - askedBytes;
      if (open >= 2 || roomMessages <= 0 || (open === 0 && roomBytes < minBytes / 2)) {
        await Promise.race([this.roomFreed.wait(), ended.wait()]);
        continue;
      }
      // A pull asks for at least minBytes, so that one large message always fits; the one asked
      // for near another's expiry may go past the queue's byte bound by that much, no more.
      const maxBytes = Math.min(Math.max(this.o.maxPullBytes, minBytes), Math.max(minBytes, roomBytes));
      const batch = Math.min(roomMessages, PULL_BATCH);
      let gotMessages = 0;
      let gotBytes = 0;
      let failed = false;
      askedMessages += batch;
      askedBytes += maxBytes;
      open++;
      const asked = performance.now();
      const pull = pullOnce(this.o.nc, this.o.stream, this.o.consumer, {
        batch,
        maxBytes,
        expiresMs: PULL_EXPIRES_MS,
        // The next pull is already waiting by then: one the server dropped is given up soon.
        graceMs: 500,
        signal: this.generationStop.signal,
        onMessage: (m) => {
          if (gen !== this.generation) return; // a pull of a replaced consumer: its messages are stale
          gotMessages++;
          gotBytes += m.data.byteLength;
          askedMessages--;
          askedBytes -= m.data.byteLength;
          this.queue.push(this.wrap(m));
          this.queueBytes += m.data.byteLength;
          this.arrived.fire();
        },
      }).then(
        (r) => {
          this.o.log.debug(
            {
              received: r.received,
              status: r.status,
              why: r.description,
              ms: Math.round(performance.now() - asked),
            },
            "pull ended",
          );
          // One message larger than the pull's byte bound: ask for more next time.
          if (r.status === 409 && r.received === 0 && /MaxBytes/i.test(r.description)) minBytes *= 2;
          else if (r.received > 0) minBytes = MIN_PULL_BYTES;
          failures = 0;
          return true;
        },
        async (err: unknown) => {
          failed = true;
          if (gen !== this.generation || this.closed) return false;
          const wait = backoffMs(failures++, 100, 5000);
          this.o.log.warn(
            { err: errorMessage(err), retryInMs: wait },
            "pulling from the stream failed; retrying",
          );
          await sleep(wait).catch(() => {});
          return false;
        },
      );
      const done = pull.finally(() => {
        askedMessages -= batch - gotMessages;
        askedBytes -= maxBytes - gotBytes;
        open--;
        ended.fire();
      });
      // Until this pull ends, or is near its expiry (then the next is asked for beside it).
      let timer: NodeJS.Timeout | undefined;
      const renew = new Promise<void>((r) => (timer = setTimeout(r, PULL_EXPIRES_MS - RENEW_BEFORE_MS)));
      await Promise.race([done, renew]);
      clearTimeout(timer);
      if (failed) await done; // its backoff first
    }
    while (open > 0) await ended.wait();
  }

  private wrap(m: Pulled): StreamMessage {
    const nc = this.o.nc;
    const { reply, ...rest } = m;
    return { ...rest, ack: () => nc.publish(reply, "+ACK") };
  }

  private async refreshPending(): Promise<void> {
    try {
      const jsm = await this.jsm();
      const ci = await jsm.consumers.info(this.o.stream, this.o.consumer);
      this.pending = ci.num_pending + ci.num_ack_pending;
      const info = await jsm.streams.info(this.o.stream);
      this.streamMaxAgeSeconds = Math.round(info.config.max_age / 1e9);
      this.oldestPendingMs = await oldestAfter(jsm, this.o.stream, this.o.applied(), info.state);
    } catch {
      // NATS away: the figures stay as they were
    }
  }

  /**
   * A JetStream API call that waits out JetStream being away (a restart, a cluster electing the
   * stream's leader: its requests time out meanwhile) with the retry's backoff; other errors throw.
   */
  private api<T>(what: string, call: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
    return retryTransient(async () => {
      try {
        return await call(await this.jsm());
      } catch (err) {
        throw brokerError(err, `${what} ${this.o.stream}`);
      }
    }, this.o.retry);
  }

  private async jsm(): Promise<JetStreamManager> {
    this.jsmValue ??= await jetstreamManager(this.o.nc);
    return this.jsmValue;
  }
}

/**
 * Stream time (ms) of the oldest stored message after `applied`; 0 when there is none. Below the
 * stream's first sequence the first stored message is the oldest (its first_ts); a message deleted
 * from the middle counts as none (the DPU's gap check reports it).
 */
async function oldestAfter(
  jsm: JetStreamManager,
  stream: string,
  applied: number,
  state: { first_seq: number; last_seq: number; first_ts: string },
): Promise<number> {
  const seq = Math.max(applied + 1, state.first_seq);
  if (seq > state.last_seq) return 0;
  if (seq === state.first_seq) return Date.parse(state.first_ts) || 0;
  try {
    return (await jsm.streams.getMessage(stream, { seq }))?.time.getTime() ?? 0;
  } catch {
    return 0;
  }
}
