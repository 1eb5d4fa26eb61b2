import { ChunkJoiner } from "@dfs/codec";
import type { Logger } from "@dfs/common";
import type { MessageSource, StreamMessage } from "./stream-reader.js";

/**
 * The stream as the transaction builder sees it: messages larger than the NATS server's
 * max_payload, which capture publishes as chunks (@dfs/codec chunks.ts), come out joined, exactly
 * the bytes capture journaled, as one message whose `firstSeq` is its first chunk's sequence and
 * whose `seq` and `ack` are its last chunk's. The transaction builder therefore never sees a
 * chunk, and the checkpoint (a message's last sequence) never stops inside a message.
 *
 * Chunks are taken off the reader's queue as they come (its byte bound holds chunks, not whole
 * messages), into the one message being joined: memory holds one large message, at its final
 * size, beside the queue. Delivery that skips chunks drops the partial message; the next message
 * handed on then starts past the builder's cursor, and the builder's gap check re-reads from the
 * checkpoint (or goes on, when the stream no longer holds what was skipped). A stream whose
 * consecutive chunks contradict each other, or whose joined bytes fail their SHA-256, is an error
 * that stops the DPU: a value is never applied truncated or mixed.
 */
export class ChunkedSource implements MessageSource {
  private readonly joiner = new ChunkJoiner();
  private ready: StreamMessage | null = null;
  /** The last sequence handed on (or the checkpoint): chunks at or below it are redeliveries. */
  private floor = 0;

  constructor(
    private readonly inner: MessageSource,
    private readonly log: Logger,
  ) {}

  /** Bytes held for the message being joined (for status). */
  get joiningBytes(): number {
    return this.joiner.heldBytes;
  }

  peek(): StreamMessage | undefined {
    if (this.ready) return this.ready;
    for (;;) {
      const m = this.inner.peek();
      if (m === undefined) return undefined;
      if (!m.chunk) {
        if (this.joiner.joining) this.gap(this.joiner.interrupted(m.seq));
        return m;
      }
      this.inner.take();
      if (m.seq <= this.floor) continue; // a redelivery of what was handed on already
      const r = this.joiner.add({ header: m.chunk, seq: m.seq, data: m.data });
      if (r.kind === "gap") this.gap(r);
      else if (r.kind === "whole") {
        this.ready = {
          seq: r.lastSeq,
          firstSeq: r.firstSeq,
          data: r.data,
          subject: m.subject,
          kind: m.kind,
          scn: m.scn,
          journal: m.journal,
          chunk: null,
          ack: m.ack,
        };
        return this.ready;
      }
    }
  }

  take(): StreamMessage {
    const m = this.ready ?? this.inner.take();
    this.ready = null;
    this.floor = Math.max(this.floor, m.seq);
    return m;
  }

  anyStored(from: number, to: number): Promise<boolean> {
    return this.inner.anyStored(from, to);
  }

  waitForMore(ms: number): Promise<void> {
    return this.inner.waitForMore ? this.inner.waitForMore(ms) : Promise.resolve();
  }

  reset(lowWater: number): void {
    this.joiner.reset();
    this.ready = null;
    this.floor = lowWater;
    this.inner.reset?.(lowWater);
  }

  private gap(r: { kind: string; reason?: string }): void {
    if (r.kind === "gap")
      this.log.warn({ why: r.reason }, "a chunked message was not delivered whole; it is read again");
  }
}
