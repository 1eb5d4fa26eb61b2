import { type ChunkHeader, Headers, parseChunkHeader } from "@dfs/codec";
import { DataError, ErrorCode, TransientError } from "@dfs/common";
import { createInbox, type Msg, type NatsConnection } from "@nats-io/transport-node";

/** A message a pull delivered: its stream sequence, payload, Dfs-Kind and where to acknowledge it. */
export interface Pulled {
  seq: number;
  subject: string;
  data: Uint8Array;
  kind: string;
  /** The Dfs-Scn and Dfs-Journal headers ("" when absent). */
  scn: string;
  journal: string;
  /** A slice of a message larger than max_payload (its Dfs-Chunk headers), or null. */
  chunk: ChunkHeader | null;
  /** The reply subject: publishing "+ACK" to it acknowledges the message (and, AckAll, those before). */
  reply: string;
}

export interface PullOptions {
  /** Most messages this pull delivers. */
  batch: number;
  /** Most payload bytes it delivers (the server stops before the message that would pass it). */
  maxBytes: number;
  /** How long the server keeps the pull open when fewer messages are there. */
  expiresMs: number;
  /**
   * How long past the expiry the pull waits for the server's word before it ends by itself
   * (default 2 s). The server delivers nothing after the expiry; this only covers the way back.
   */
  graceMs?: number;
  onMessage(m: Pulled): void;
  /** Ends the pull at once (its later messages are dropped): a stop or a new generation. */
  signal?: AbortSignal;
}

export interface PullResult {
  received: number;
  /** The status that ended the pull: 0 when the batch was delivered, 408 expired, 409 a limit. */
  status: number;
  description: string;
}

/**
 * One pull request of a JetStream pull consumer, bounded by both a message count and bytes (the
 * protocol allows both; nats.js's fetch takes one or the other, and with bytes only it waits for the
 * request to expire even when the count was delivered). Ends when the batch is delivered, or the
 * server ends the request with a status (408 expired, 409 a limit reached, 404 nothing), or the
 * expiry passes without word from the server.
 */
export function pullOnce(
  nc: NatsConnection,
  stream: string,
  consumer: string,
  o: PullOptions,
): Promise<PullResult> {
  const inbox = createInbox();
  return new Promise<PullResult>((resolve, reject) => {
    let received = 0;
    let finished = false;
    const finish = (r: PullResult | Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sub.unsubscribe();
      o.signal?.removeEventListener("abort", stopped);
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const sub = nc.subscribe(inbox, {
      callback: (err, msg: Msg) => {
        if (err)
          return finish(
            new TransientError(ErrorCode.BROKER_UNAVAILABLE, `pull from ${stream}: ${err.message}`),
          );
        const code = msg.headers?.code ?? 0;
        if (code !== 0 && msg.data.length === 0) {
          if (code === 100) return; // idle heartbeat
          const description = msg.headers?.description ?? "";
          if (code === 404 || code === 408 || code === 409)
            return finish({ received, status: code, description });
          return finish(
            new DataError(ErrorCode.DATA_INVALID, `pull from ${stream} refused: ${code} ${description}`),
          );
        }
        if (o.signal?.aborted) return;
        const seq = streamSeqOf(msg.reply ?? "");
        if (seq === null)
          return finish(new DataError(ErrorCode.DATA_INVALID, `unexpected reply subject ${msg.reply}`));
        received++;
        let chunk: ChunkHeader | null;
        try {
          chunk = msg.headers ? parseChunkHeader((name) => msg.headers!.get(name) || undefined) : null;
        } catch (err) {
          return finish(err as Error);
        }
        const h = msg.headers;
        o.onMessage({
          seq,
          subject: msg.subject,
          data: msg.data,
          kind: h?.get(Headers.kind) ?? "",
          scn: h?.get(Headers.scn) ?? "",
          journal: h?.get(Headers.journal) ?? "",
          chunk,
          reply: msg.reply!,
        });
        if (received >= o.batch) finish({ received, status: 0, description: "" });
      },
    });
    const timer = setTimeout(
      () => finish({ received, status: 408, description: "no word from the server" }),
      o.expiresMs + (o.graceMs ?? 2000),
    );
    // Removed again when the pull ends: the signal lives for a whole generation of many pulls.
    const stopped = () => finish({ received, status: 499, description: "stopped" });
    o.signal?.addEventListener("abort", stopped, { once: true });
    if (o.signal?.aborted) return stopped();
    const request = { batch: o.batch, max_bytes: o.maxBytes, expires: o.expiresMs * 1_000_000 };
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify(request), { reply: inbox });
  });
}

/**
 * The stream sequence in an ack subject: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>,
 * or with domain and account hash after $JS.ACK (12 tokens, since nats-server 2.9).
 */
export function streamSeqOf(reply: string): number | null {
  const t = reply.split(".");
  if (t[0] !== "$JS" || t[1] !== "ACK") return null;
  const at = t.length === 9 ? 5 : t.length >= 12 ? 7 : -1;
  const seq = Number(t[at]);
  return at > 0 && Number.isSafeInteger(seq) ? seq : null;
}
