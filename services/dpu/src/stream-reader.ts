import { Headers } from "@dfs/codec";
import { type Logger, Signal } from "@dfs/common";
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** A stream message as the unit builder sees it. */
export interface StreamMessage {
  readonly seq: number;
  readonly data: Uint8Array;
  /** The Dfs-Kind header: "batch", "ddl" or "heartbeat". */
  readonly kind: string;
  ack(): void;
}

/** What the unit builder needs of a stream: the queue of delivered messages and the gap check. */
export interface MessageSource {
  /** The next delivered message, without taking it. */
  peek(): StreamMessage | undefined;
  /** Takes the next delivered message. */
  take(): StreamMessage;
  /** Whether the stream still holds a message with a sequence in [from, to). */
  anyStored(from: number, to: number): Promise<boolean>;
}

export interface StreamReaderOptions {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  /** Most messages queued in memory before reading pauses. */
  maxQueue: number;
  /** Most bytes one pull may ask for: well under the server's per-client pending limit. */
  maxPullBytes: number;
  log: Logger;
}

/**
 * Reads the stream through a durable pull consumer into a bounded queue, in stream order.
 *
 * Delivery always starts right after the checkpoint: the consumer is (re)created at checkpoint + 1
 * whenever reading starts again. Messages delivered but not acknowledged (a crashed process's
 * prefetch, messages lost when NATS cut a slow client off) would otherwise come back only after
 * ack_wait, behind newer ones, and the checkpoint would have passed them. Each (re)creation is a
 * new generation; a reader of an older generation adds nothing more to the queue.
 */
export class StreamReader implements MessageSource {
  private readonly queue: StreamMessage[] = [];
  /** Fires when a message arrives, or room frees up, or reading stops. */
  readonly arrived = new Signal();
  private messages: ConsumerMessages | null = null;
  private reading: Promise<void> = Promise.resolve();
  private generation = 0;
  private closed = false;
  private jsmValue: JetStreamManager | null = null;
  /** Messages after the checkpoint that the consumer has not had acknowledged, refreshed in the background. */
  pending = 0;
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
    if (this.queue.length < this.o.maxQueue) this.arrived.fire();
    return m;
  }

  /** Starts (or restarts) delivery at the message after `checkpoint`. */
  async readFrom(checkpoint: number): Promise<void> {
    // The old reader is not awaited (its pending pull may take a while to end); its generation is
    // stale from here on, so it can no longer add to the queue.
    const gen = ++this.generation;
    void this.messages?.close().catch(() => {});
    this.queue.length = 0;
    this.arrived.fire();
    const jsm = await this.jsm();
    const { stream, consumer: name } = this.o;
    await jsm.consumers.delete(stream, name).catch(() => {}); // none yet: nothing to delete
    await jsm.consumers.add(stream, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: checkpoint + 1,
      max_ack_pending: 20_000,
      ack_wait: 300_000_000_000, // 5 min: the checkpoint, not redelivery, protects against doubles
    });
    const consumer = await jetstream(this.o.nc).consumers.get(stream, name);
    const messages = await consumer.consume({ max_bytes: this.o.maxPullBytes });
    this.messages = messages;
    this.reading = this.pump(messages, gen);
    this.pendingTimer ??= setInterval(() => void this.refreshPending(), 2000);
  }

  async anyStored(from: number, to: number): Promise<boolean> {
    const jsm = await this.jsm();
    const info = await jsm.streams.info(this.o.stream);
    const start = Math.max(from, info.state.first_seq);
    // A long run of missing sequences is read again rather than checked one by one.
    if (to - start > 1000) return true;
    for (let seq = start; seq < to; seq++) {
      if (await jsm.streams.getMessage(this.o.stream, { seq }).catch(() => null)) return true;
    }
    return false;
  }

  /** The stream's last sequence (for "latest"). */
  async lastSeq(): Promise<number> {
    return (await (await this.jsm()).streams.info(this.o.stream)).state.last_seq;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    if (this.pendingTimer) clearInterval(this.pendingTimer);
    this.arrived.fire();
    await this.messages?.close().catch(() => {});
    await this.reading.catch(() => {});
  }

  private async pump(messages: ConsumerMessages, gen: number): Promise<void> {
    for await (const m of messages) {
      if (gen !== this.generation) break; // a reader of a replaced consumer: its messages are stale
      this.queue.push(wrap(m));
      this.arrived.fire();
      while (this.queue.length >= this.o.maxQueue && gen === this.generation && !this.closed)
        await this.arrived.wait();
    }
  }

  private async refreshPending(): Promise<void> {
    try {
      const ci = await (await this.jsm()).consumers.info(this.o.stream, this.o.consumer);
      this.pending = ci.num_pending + ci.num_ack_pending;
    } catch {
      // NATS away: the count stays as it was
    }
  }

  private async jsm(): Promise<JetStreamManager> {
    this.jsmValue ??= await jetstreamManager(this.o.nc);
    return this.jsmValue;
  }
}

function wrap(m: JsMsg): StreamMessage {
  return {
    seq: m.seq,
    data: m.data,
    kind: m.headers?.get(Headers.kind) ?? "",
    ack: () => m.ack(),
  };
}
