// The DPU's apply loop alone, with stand-ins for the stream, the transaction builder and the target:
// a failure found while a group is being applied (the next messages gone from the stream) is
// reported only once that group has committed, so a DPU that stops on it leaves everything before
// the failure in the target (docs/dpu.md, "Lost messages": it applies what came before, then stops).
import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger, DataError, ErrorCode, Scope, Signal } from "@dfs/common";
import { DpuRuntime } from "../../dist/runtime.js";
import { DpuTelemetry } from "../../dist/telemetry.js";

test("a failure found while a group is applied stops the DPU after that group committed", async () => {
  const events: string[] = [];
  const group = {
    kind: "group",
    txns: [],
    rows: 0,
    lastSeq: 7,
    lastMessage: { ack: () => events.push("ack 7") },
    captureTimesMs: [],
    heartbeatSourceMs: 0,
    position: null,
  };
  let calls = 0;
  const builder = {
    deadLettered: 0,
    reset() {},
    async next() {
      if (++calls === 1) return group;
      // Found at once, while the group is still being written.
      throw new DataError(
        ErrorCode.STREAM_LOST,
        "stream message 8 expired or was deleted before this DPU applied it",
      );
    },
  };
  const sink = {
    parallelism: 1,
    stats: { rowsApplied: 0, rejected: 0, retries: 0, waitingFor: "", lastError: "" },
    async open() {
      return { lowWater: 6, applied: new Set<string>() };
    },
    prepare() {},
    async applyGroup(part: { lastSeq: number }) {
      await new Promise((r) => setTimeout(r, 200)); // the target takes its time
      events.push(`commit ${part.lastSeq}`);
    },
    async advance() {},
    async flush() {},
    async close() {},
  };
  const reader = {
    arrived: new Signal(),
    queued: 0,
    pending: 0,
    oldestPendingMs: 0,
    streamMaxAgeSeconds: 0,
    async readFrom() {},
    async close() {},
  };
  const dpu = new DpuRuntime({
    sourceId: "s",
    consumer: "dpu-default",
    log: createLogger({ level: "fatal" }),
    nc: {} as never,
    telemetry: new DpuTelemetry("s", "default"),
    reader: reader as never,
    builder: builder as never,
    sink: sink as never,
    parallelFromRows: 1000,
    retry: { initialMs: 1, maxMs: 1 },
    scope: new Scope(),
    stopping: new AbortController(),
  });
  await dpu.start();
  await assert.rejects(dpu.done, (err: DataError) => {
    events.push("stopped");
    return err.code === ErrorCode.STREAM_LOST;
  });
  assert.deepEqual(
    events,
    ["commit 7", "ack 7", "stopped"],
    "the group committed before the stop was reported",
  );
  assert.equal(dpu.status().appliedSeq, 7);
  assert.equal(dpu.status().state, "error");
  await dpu.stop();
});
