// The stream reader (re)creates its consumer whenever reading starts again: at start, after a gap,
// after a failed large transaction. If NATS is away at that moment (a restart, a cluster electing
// the stream's leader) its JetStream API calls time out; the reader waits that out with the retry's
// backoff instead of failing the DPU with the client's raw TimeoutError. Runs on a nats-server of
// its own (the stack's is never stopped here).
import assert from "node:assert/strict";
import { test } from "node:test";
import { AbortedError, createLogger, type TransientRetry, waitFor } from "@dfs/common";
import { connectNats, ensureStreams, type NatsConnection, subjects } from "@dfs/nats";
import { startPrivateNats } from "@dfs/testkit";
import { jetstream } from "@nats-io/jetstream";
import { StreamReader } from "../../dist/stream-reader.js";

const SOURCE = "outage";

/** The DPU's stream reader on the test's source, with the given retry. */
function readerOn(nc: NatsConnection, retry: TransientRetry): StreamReader {
  return new StreamReader({
    nc,
    stream: subjects.streamName(SOURCE),
    consumer: "dpu-default",
    maxQueue: 1000,
    maxQueueBytes: 16 * 1024 * 1024,
    maxPullBytes: 8 * 1024 * 1024,
    applied: () => 0,
    retry,
    log: createLogger({ level: "silent", name: "test" }),
  });
}

test("reading starts again across a NATS outage: the consumer is created once NATS is back, nothing is missed", {
  timeout: 120_000,
}, async () => {
  const nats = await startPrivateNats();
  const nc = await connectNats({ url: nats.url, name: "test-stream-reader-outage" });
  const stop = new AbortController();
  const retries: string[] = [];
  const reader = readerOn(nc, {
    initialMs: 50,
    maxMs: 500,
    signal: stop.signal,
    onRetry: (err) => retries.push(err instanceof Error ? err.message : String(err)),
  });
  try {
    await ensureStreams(nc, SOURCE, { replicas: 1, maxAgeMs: 0, maxBytes: 0, duplicateWindowMs: 60_000 });
    const js = jetstream(nc);
    const subject = subjects.heartbeat(SOURCE);
    for (let i = 1; i <= 5; i++) await js.publish(subject, `m${i}`);

    await nats.stop({ hard: true });
    const reading = reader.readFrom(2);
    let settled = false;
    void reading.then(
      () => (settled = true),
      () => (settled = true),
    );
    await waitFor(() => retries.length >= 2, {
      timeoutMs: 30_000,
      what: "the reader to retry while NATS is away",
    });
    assert.equal(settled, false, "readFrom neither fails nor returns while NATS is away");
    await nats.start();
    await reading;

    // Delivery starts right after the checkpoint (2): messages 3, 4 and 5, in order.
    await waitFor(() => reader.queued >= 3, { timeoutMs: 30_000, what: "messages 3..5 in the queue" });
    const seqs = [reader.take().seq, reader.take().seq, reader.take().seq];
    assert.deepEqual(seqs, [3, 4, 5]);
    assert.ok(
      retries.every((m) => /stream DFS_OUTAGE/.test(m)),
      `each retry names what it waits for: ${retries.join(" | ")}`,
    );
  } finally {
    stop.abort();
    await reader.close();
    await nc.close();
    await nats.remove();
  }
});

test("a stop during the outage ends the waiting", { timeout: 60_000 }, async () => {
  const nats = await startPrivateNats();
  const nc = await connectNats({ url: nats.url, name: "test-stream-reader-stop" });
  const stop = new AbortController();
  let retried = 0;
  const reader = readerOn(nc, { initialMs: 50, maxMs: 200, signal: stop.signal, onRetry: () => retried++ });
  try {
    await ensureStreams(nc, SOURCE, { replicas: 1, maxAgeMs: 0, maxBytes: 0, duplicateWindowMs: 60_000 });
    await nats.stop({ hard: true });
    const reading = reader.readFrom(0);
    await waitFor(() => retried >= 1, { timeoutMs: 30_000, what: "a retry" });
    stop.abort();
    await assert.rejects(reading, AbortedError);
  } finally {
    await reader.close();
    await nc.close();
    await nats.remove();
  }
});
