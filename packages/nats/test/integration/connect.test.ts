import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, ErrorCode, TransientError } from "@dfs/common";
import { connectNats } from "../../dist/connect.js";
import { TEST_NATS_URL } from "../../dist/testing.js";

test("connectNats connects to the test server", async () => {
  const nc = await connectNats({ url: TEST_NATS_URL, name: "nats-test-connect" });
  try {
    assert.ok(nc.info?.jetstream, "the test server runs JetStream");
  } finally {
    await nc.close();
  }
});

test("connectNats refuses a malformed URL as a config error", async () => {
  await assert.rejects(connectNats({ url: "http://x:1", name: "t" }), ConfigError);
  await assert.rejects(connectNats({ url: " , ", name: "t" }), ConfigError);
});

test("connectNats gives up on the first connect after 5 s with the redacted URL", async () => {
  // Port 1 on loopback: nothing listens, every dial is refused at once.
  const started = Date.now();
  await assert.rejects(connectNats({ url: "nats://user:secret@127.0.0.1:1", name: "t" }), (err: unknown) => {
    assert.ok(err instanceof TransientError);
    assert.equal(err.code, ErrorCode.BROKER_UNAVAILABLE);
    assert.match(err.message, /127\.0\.0\.1:1/);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
  const took = Date.now() - started;
  assert.ok(took >= 4_900 && took < 8_000, `gave up after ${took} ms`);
});
