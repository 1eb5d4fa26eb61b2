import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "@dfs/common";
import { Replanner } from "../../dist/replanner.js";

function recorder(script: ("ok" | "fail")[] = []) {
  const events: string[] = [];
  let active = 0;
  let overlapped = false;
  const replanner = new Replanner({
    run: async () => {
      active++;
      if (active > 1) overlapped = true;
      events.push("run");
      await delay(30);
      active--;
      if (script.shift() === "fail") throw new Error("source gone");
    },
    debounceMs: 20,
    retry: { initialMs: 10, maxMs: 40 },
    onSuccess: () => events.push("ok"),
    onError: () => events.push("error"),
  });
  return { replanner, events, overlapped: () => overlapped };
}

test("a burst of requests makes one run after the debounce", async () => {
  const r = recorder();
  for (let i = 0; i < 5; i++) r.replanner.soon();
  await waitFor(() => r.events.includes("ok"), { timeoutMs: 2000, what: "a run" });
  await delay(100);
  assert.deepEqual(r.events, ["run", "ok"]);
  await r.replanner.stop();
});

test("a request during a run makes one more run after it, never two at once", async () => {
  const r = recorder();
  r.replanner.soon(0);
  await waitFor(() => r.events.includes("run"), { timeoutMs: 2000, what: "the first run" });
  r.replanner.soon(0);
  await waitFor(() => r.events.filter((e) => e === "ok").length === 2, { timeoutMs: 2000, what: "two runs" });
  assert.equal(r.overlapped(), false);
  await r.replanner.stop();
});

test("a failed run is tried again until one succeeds", async () => {
  const r = recorder(["fail", "fail", "ok"]);
  r.replanner.soon(0);
  await waitFor(() => r.events.includes("ok"), { timeoutMs: 2000, what: "a successful retry" });
  assert.deepEqual(r.events, ["run", "error", "run", "error", "run", "ok"]);
  await r.replanner.stop();
});

test("the first read throws its error; a request made during it runs after it", async () => {
  const r = recorder();
  await assert.rejects(
    r.replanner.first(async () => {
      throw new Error("no source");
    }),
    /no source/,
  );
  const first = r.replanner.first(async () => {
    r.events.push("first");
    await delay(50);
  });
  r.replanner.soon(0);
  await first;
  await waitFor(() => r.events.includes("ok"), { timeoutMs: 2000, what: "the run after the first" });
  assert.deepEqual(r.events, ["first", "run", "ok"]);
  await r.replanner.stop();
});

test("stop cancels a pending request", async () => {
  const r = recorder();
  r.replanner.soon(50);
  await r.replanner.stop();
  await delay(100);
  assert.deepEqual(r.events, []);
});
