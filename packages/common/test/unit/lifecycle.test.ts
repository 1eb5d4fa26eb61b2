import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffMs, Completion, Scope, Signal } from "../../dist/index.js";

test("a scope closes in reverse order, once, even when a closer throws", async () => {
  const scope = new Scope();
  const order: string[] = [];
  scope.defer(() => order.push("first"));
  scope.use({ close: () => order.push("second") });
  scope.defer(() => {
    order.push("third");
    throw new Error("a closer failed");
  });
  assert.equal(scope.signal.aborted, false);
  await Promise.all([scope.close(), scope.close()]);
  assert.deepEqual(order, ["third", "second", "first"]);
  assert.equal(scope.signal.aborted, true);
});

test("a completion settles once and never leaves an unhandled rejection", async () => {
  const c = new Completion();
  c.reject(new Error("first"));
  c.resolve();
  assert.equal(c.settled, true);
  await assert.rejects(c.promise, /first/);
});

test("a signal wakes every waiter", async () => {
  const s = new Signal();
  const woken: number[] = [];
  const waits = [1, 2, 3].map((n) => s.wait().then(() => woken.push(n)));
  s.fire();
  await Promise.all(waits);
  assert.deepEqual(woken.sort(), [1, 2, 3]);
});

test("backoff grows to its ceiling, with jitter in the upper half", () => {
  for (let attempt = 0; attempt < 30; attempt++) {
    const ceiling = Math.min(1000, 100 * 2 ** attempt);
    const ms = backoffMs(attempt, 100, 1000);
    assert.ok(ms >= ceiling / 2 && ms <= ceiling, `attempt ${attempt}: ${ms}`);
  }
});
