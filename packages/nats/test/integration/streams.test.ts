import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "@dfs/common";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { ensureStreams, lastPublished, type StreamSettings } from "../../dist/streams.js";
import { subjects } from "../../dist/subjects.js";
import { uniqueSource, withNats } from "../../dist/testing.js";

const SETTINGS: StreamSettings = {
  replicas: 1,
  maxAgeMs: 3_600_000,
  maxBytes: 64 * 1024 * 1024,
  duplicateWindowMs: 120_000,
};

/** Deletes the source's streams whatever state the test left them in. */
async function dropStreams(nc: NatsConnection, source: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const name of [subjects.streamName(source), subjects.dlqStreamName(source)]) {
    await jsm.streams.delete(name).catch(() => false);
  }
}

test("ensureStreams creates both streams, is idempotent and repairs drift", async () => {
  await withNats("nats-test-streams", async (nc) => {
    const source = uniqueSource();
    try {
      await ensureStreams(nc, source, SETTINGS);
      const jsm = await jetstreamManager(nc);
      const main = (await jsm.streams.info(subjects.streamName(source))).config;
      assert.deepEqual(
        [...main.subjects].sort(),
        [`dfs.${source}.*.*`, `dfs.${source}._ddl`, `dfs.${source}._heartbeat`].sort(),
      );
      assert.equal(main.storage, "file");
      assert.equal(main.retention, "limits");
      assert.equal(main.discard, "old");
      assert.equal(main.duplicate_window, 120_000 * 1e6);
      assert.equal(main.max_age, 3_600_000 * 1e6);
      assert.equal(main.max_bytes, 64 * 1024 * 1024);
      assert.equal(main.allow_direct, true);
      const dlq = (await jsm.streams.info(subjects.dlqStreamName(source))).config;
      assert.deepEqual(dlq.subjects, [`dfs.${source}._dlq.*.*`, `dfs.${source}._dlq.*.*.*`]);

      // Idempotent: a second call changes nothing (and does not fail on "already in use").
      await ensureStreams(nc, source, SETTINGS);
      assert.deepEqual((await jsm.streams.info(subjects.streamName(source))).config, main);

      // Drift: someone narrowed the subjects and the window; ensureStreams puts ours back.
      await jsm.streams.update(subjects.streamName(source), {
        subjects: [`dfs.${source}._ddl`],
        duplicate_window: 1e9,
      });
      await ensureStreams(nc, source, { ...SETTINGS, duplicateWindowMs: 60_000 });
      const repaired = (await jsm.streams.info(subjects.streamName(source))).config;
      assert.equal(repaired.subjects.length, 3);
      assert.equal(repaired.duplicate_window, 60_000 * 1e6);

      // Data goes to the main stream, dead letters to the DLQ stream.
      const js = jetstream(nc);
      assert.equal(
        (await js.publish(subjects.data(source, "a.b", "we ird*"), "x")).stream,
        subjects.streamName(source),
      );
      assert.equal(
        (await js.publish(subjects.dlq(source, "a.b", "t"), "x")).stream,
        subjects.dlqStreamName(source),
      );
      assert.equal(
        (await js.publish(subjects.data(source, "_ddl", "t"), "x")).stream,
        subjects.streamName(source),
      );
    } finally {
      await dropStreams(nc, source);
    }
  });
});

test("the duplicate window drops a republished message id", async () => {
  await withNats("nats-test-dup", async (nc) => {
    const source = uniqueSource();
    try {
      await ensureStreams(nc, source, SETTINGS);
      const js = jetstream(nc);
      const subject = subjects.data(source, "shop", "orders");
      const first = await js.publish(subject, "one", { msgID: "pos-1" });
      const second = await js.publish(subject, "one again", { msgID: "pos-1" });
      assert.equal(first.duplicate, false);
      assert.equal(second.duplicate, true);
      assert.equal(second.seq, first.seq, "a duplicate ack names the original's sequence");
      const jsm = await jetstreamManager(nc);
      assert.equal((await jsm.streams.info(subjects.streamName(source))).state.messages, 1);
    } finally {
      await dropStreams(nc, source);
    }
  });
});

test("lastPublished: null when empty, then the last message id and headers", async () => {
  await withNats("nats-test-last", async (nc) => {
    const source = uniqueSource();
    const stream = subjects.streamName(source);
    try {
      await ensureStreams(nc, source, SETTINGS);
      assert.equal(await lastPublished(nc, stream), null);
      const js = jetstream(nc);
      await js.publish(subjects.data(source, "d", "t"), "1", { msgID: "m-1" });
      const h = headers();
      h.set("Dfs-Position", "binlog.000001:4711");
      h.set("Dfs-Gtid", "uuid:1-5");
      await js.publish(subjects.ddl(source), "2", { msgID: "m-2", headers: h, expect: { lastMsgID: "m-1" } });
      const last = await lastPublished(nc, stream);
      assert.ok(last);
      assert.equal(last.seq, 2);
      assert.equal(last.msgId, "m-2");
      assert.equal(last.headers["Dfs-Position"], "binlog.000001:4711");
      assert.equal(last.headers["Dfs-Gtid"], "uuid:1-5");
      assert.equal(last.headers["Nats-Msg-Id"], "m-2");

      // A message without a msg id.
      await js.publish(subjects.heartbeat(source), "3");
      assert.deepEqual(await lastPublished(nc, stream), { seq: 3, msgId: undefined, headers: {} });

      // The last message deleted by hand: the one before it is the last.
      const jsm = await jetstreamManager(nc);
      await jsm.streams.deleteMessage(stream, 3);
      assert.equal((await lastPublished(nc, stream))?.msgId, "m-2");
    } finally {
      await dropStreams(nc, source);
    }
  });
});

test("lastPublished on a missing stream and bad settings are config errors", async () => {
  await withNats("nats-test-errors", async (nc) => {
    await assert.rejects(lastPublished(nc, "DFS_NO_SUCH_STREAM_X"), ConfigError);
    const source = uniqueSource();
    await assert.rejects(ensureStreams(nc, source, { ...SETTINGS, replicas: 0 }), ConfigError);
    await assert.rejects(
      ensureStreams(nc, source, { ...SETTINGS, maxAgeMs: 1000, duplicateWindowMs: 5000 }),
      ConfigError,
    );
  });
});

test("ensureStreams refuses a stream that belongs to another source", async () => {
  await withNats("nats-test-clash", async (nc) => {
    const source = uniqueSource("a-");
    const clash = source.replace("-", "_");
    try {
      await ensureStreams(nc, source, SETTINGS);
      await assert.rejects(ensureStreams(nc, clash, SETTINGS), ConfigError);
    } finally {
      await dropStreams(nc, source);
    }
  });
});
