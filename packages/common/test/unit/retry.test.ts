import assert from "node:assert/strict";
import { test } from "node:test";
import { AbortedError, ConfigError, ErrorCode, retryTransient, TransientError } from "../../dist/index.js";

const transient = () => new TransientError(ErrorCode.BROKER_UNAVAILABLE, "away");

test("retryTransient tries again after a TransientError, with growing waits, until it resolves", async () => {
  let calls = 0;
  const waits: number[] = [];
  const out = await retryTransient(
    async () => {
      calls++;
      if (calls < 4) throw transient();
      return "up";
    },
    { initialMs: 1, maxMs: 8, onRetry: (_err, ms) => waits.push(ms) },
  );
  assert.equal(out, "up");
  assert.equal(calls, 4);
  assert.equal(waits.length, 3);
  for (const [i, ms] of waits.entries()) assert.ok(ms >= 2 ** i / 2 && ms <= 2 ** i, `wait ${i}: ${ms} ms`);
});

test("retryTransient throws any other error at once", async () => {
  let calls = 0;
  await assert.rejects(
    retryTransient(
      async () => {
        calls++;
        throw new ConfigError(ErrorCode.CONFIG_INVALID, ["bad"]);
      },
      { initialMs: 1, maxMs: 1 },
    ),
    ConfigError,
  );
  assert.equal(calls, 1);
});

test("retryTransient stops waiting when its signal aborts", async () => {
  const ac = new AbortController();
  const p = retryTransient(
    async () => {
      throw transient();
    },
    { initialMs: 60_000, maxMs: 60_000, signal: ac.signal },
  );
  ac.abort();
  await assert.rejects(p, AbortedError);
});
