// pullOnce against a fake connection: how a pull ends, and that it leaves nothing behind on the
// generation's abort signal (which lives for many pulls).
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Pulled, pullOnce, streamSeqOf } from "../../dist/pull.js";

type Callback = (err: Error | null, msg: unknown) => void;

/** A connection whose subscriptions are fed by hand; publishes (the pull requests) are recorded. */
function fakeConnection() {
  const subs = new Map<string, Callback>();
  const requests: { subject: string; body: unknown; reply: string }[] = [];
  const nc = {
    subscribe(subject: string, opts: { callback: Callback }) {
      subs.set(subject, opts.callback);
      return { unsubscribe: () => subs.delete(subject) };
    },
    publish(subject: string, data: string, opts: { reply: string }) {
      requests.push({ subject, body: JSON.parse(data), reply: opts.reply });
    },
  };
  const deliver = (inbox: string, seq: number) =>
    subs.get(inbox)?.(null, {
      data: new Uint8Array([seq]),
      headers: undefined,
      reply: `$JS.ACK.S.C.1.${seq}.${seq}.0.0`,
    });
  const status = (inbox: string, code: number, description: string) =>
    subs.get(inbox)?.(null, {
      data: new Uint8Array(0),
      headers: { code, description, get: () => "" },
      reply: "",
    });
  return { nc: nc as unknown as NatsConnection, subs, requests, deliver, status };
}

test("a pull asks for messages and bytes, ends when the batch is delivered, and unsubscribes", async () => {
  const f = fakeConnection();
  const got: Pulled[] = [];
  const pull = pullOnce(f.nc, "S", "C", {
    batch: 2,
    maxBytes: 1000,
    expiresMs: 5000,
    onMessage: (m) => got.push(m),
  });
  const req = f.requests[0]!;
  assert.equal(req.subject, "$JS.API.CONSUMER.MSG.NEXT.S.C");
  assert.deepEqual(req.body, { batch: 2, max_bytes: 1000, expires: 5_000_000_000 });
  f.deliver(req.reply, 7);
  f.deliver(req.reply, 8);
  assert.deepEqual(await pull, { received: 2, status: 0, description: "" });
  assert.deepEqual(
    got.map((m) => m.seq),
    [7, 8],
  );
  assert.equal(f.subs.size, 0, "the inbox is unsubscribed");
});

test("a status from the server ends the pull with what was received", async () => {
  const f = fakeConnection();
  const pull = pullOnce(f.nc, "S", "C", { batch: 10, maxBytes: 1000, expiresMs: 5000, onMessage: () => {} });
  const inbox = f.requests[0]!.reply;
  f.deliver(inbox, 1);
  f.status(inbox, 100, "Idle Heartbeat"); // not an end
  f.status(inbox, 409, "Message Size Exceeds MaxBytes");
  assert.deepEqual(await pull, { received: 1, status: 409, description: "Message Size Exceeds MaxBytes" });
});

test("pulls leave no listener on the generation's signal; aborting ends a pull at once", async () => {
  const f = fakeConnection();
  const generation = new AbortController();
  for (let i = 0; i < 25; i++) {
    const pull = pullOnce(f.nc, "S", "C", {
      batch: 1,
      maxBytes: 1000,
      expiresMs: 5000,
      onMessage: () => {},
      signal: generation.signal,
    });
    f.deliver(f.requests[i]!.reply, i + 1);
    await pull;
  }
  assert.equal(getEventListeners(generation.signal, "abort").length, 0, "listeners removed");
  const open = pullOnce(f.nc, "S", "C", {
    batch: 5,
    maxBytes: 1000,
    expiresMs: 5000,
    onMessage: () => {},
    signal: generation.signal,
  });
  generation.abort();
  assert.equal((await open).status, 499);
  const late = await pullOnce(f.nc, "S", "C", {
    batch: 5,
    maxBytes: 1000,
    expiresMs: 5000,
    onMessage: () => {},
    signal: generation.signal,
  });
  assert.equal(late.status, 499, "a pull on an aborted signal ends at once");
});

test("streamSeqOf reads the stream sequence from both ack subject forms", () => {
  assert.equal(streamSeqOf("$JS.ACK.S.C.1.42.7.1700000000.3"), 42);
  assert.equal(streamSeqOf("$JS.ACK.dom.acchash.S.C.1.42.7.1700000000.3.tok"), 42);
  assert.equal(streamSeqOf("_INBOX.x"), null);
});
