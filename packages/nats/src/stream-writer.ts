import { jetstream } from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { type LastPublished, lastPublished } from "./streams.js";

/** What a publisher needs of a stream: publish with an id and an expectation, and read the tail. */
export interface StreamWriter {
  /**
   * Publishes one message and resolves once the stream stored it (or dropped it as a duplicate of
   * `msgId`). With `expectLastMsgId`, the stream refuses the message unless its last message has
   * that id, so nothing is stored after a gap.
   */
  publish(
    subject: string,
    payload: Uint8Array,
    options: { msgId: string; headers: Record<string, string>; expectLastMsgId?: string; timeoutMs: number },
  ): Promise<void>;
  /** The stream's last stored message, or null when it holds none. */
  last(): Promise<LastPublished | null>;
}

/** The StreamWriter of a JetStream stream. */
export function jetStreamWriter(nc: NatsConnection, stream: string): StreamWriter {
  const js = jetstream(nc);
  return {
    async publish(subject, payload, o) {
      const h = natsHeaders();
      for (const [k, v] of Object.entries(o.headers)) h.set(k, v);
      await js.publish(subject, payload, {
        msgID: o.msgId,
        headers: h,
        timeout: o.timeoutMs,
        expect: o.expectLastMsgId ? { lastMsgID: o.expectLastMsgId } : undefined,
        retries: 0,
      });
    },
    last: () => lastPublished(nc, stream),
  };
}
