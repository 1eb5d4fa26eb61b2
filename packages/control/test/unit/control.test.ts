import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "@dfs/common";
import type { StageStatus } from "@dfs/proto";
import { ActivityLog } from "../../dist/activity.js";
import { connectControl } from "../../dist/client.js";
import { serveControl } from "../../dist/server.js";

const log = createLogger({ level: "fatal", name: "test" });

function fakeStatus(state: string): StageStatus {
  return {
    service: "dpu",
    state,
    sourceId: "s",
    position: "",
    gtid: "",
    lagSeconds: 0,
    backlog: 0n,
    backlogBytes: 0n,
    changesTotal: 0n,
    lastError: "",
    sourcePosition: undefined,
    streamSeq: 0n,
    details: {},
  };
}

test("the token guards every call but Health; errors keep their meaning", async () => {
  let state = "running";
  const server = await serveControl({
    kind: "dpu",
    port: 0,
    host: "127.0.0.1",
    token: "s3cret",
    log,
    handlers: {
      health: () => ({ live: true, ready: state === "running", detail: state }),
      status: () => fakeStatus(state),
      pause: () => {
        state = "paused";
        return fakeStatus(state);
      },
      setPosition: () => {
        throw new Error("boom");
      },
    },
  });
  const good = connectControl("dpu", `127.0.0.1:${server.port}`, { token: "s3cret" });
  const bad = connectControl("dpu", `127.0.0.1:${server.port}`, { token: "s3cret-not" });
  try {
    assert.equal((await bad.health()).live, true);
    await assert.rejects(bad.pause(), (e: Error & { codeName?: string }) => e.codeName === "UNAUTHENTICATED");
    assert.equal(state, "running", "a refused call does nothing");
    assert.equal((await good.pause()).state, "paused");
    assert.equal((await good.status()).state, "paused");
    await assert.rejects(good.resume(), /UNIMPLEMENTED: dpu does not serve resume/);
    await assert.rejects(good.setPosition("x"), /INTERNAL: boom/);
  } finally {
    good.close();
    bad.close();
    await server.close();
  }
});

test("without a configured token only Health is served", async () => {
  const server = await serveControl({
    kind: "capture",
    port: 0,
    host: "127.0.0.1",
    token: undefined,
    log,
    handlers: {
      health: () => ({ live: true, ready: true, detail: "" }),
      status: () => fakeStatus("running"),
    },
  });
  const c = connectControl("capture", `127.0.0.1:${server.port}`, { token: "" });
  try {
    assert.equal((await c.health()).ready, true);
    await assert.rejects(c.status(), /UNAUTHENTICATED: the control plane has no token configured/);
  } finally {
    c.close();
    await server.close();
  }
});

test("an unreachable service is reported by name", async () => {
  const c = connectControl("relmgr", "127.0.0.1:1", { token: "t", timeoutMs: 1500 });
  try {
    await assert.rejects(c.status(), /relmgr\.status: (UNAVAILABLE|DEADLINE_EXCEEDED)/);
  } finally {
    c.close();
  }
});

test("errors are kept apart: a stream of other items does not push them out", () => {
  const a = new ActivityLog(3, 2);
  a.add({ kind: "error", text: "first" });
  for (let i = 0; i < 10; i++) a.add({ kind: "dml", text: `st${i}` });
  const items = a.query({ afterId: 0n, limit: 100 }).items;
  assert.deepEqual(
    items.map((i) => i.text),
    ["first", "st7", "st8", "st9"],
  );
});

test("the activity log keeps the newest items and pages by id", () => {
  const a = new ActivityLog(3);
  for (let i = 1; i <= 5; i++) a.add({ kind: "change", table: `t${i}` });
  const all = a.query({ afterId: 0n, limit: 0 }).items;
  assert.deepEqual(
    all.map((i) => i.table),
    ["t3", "t4", "t5"],
  );
  assert.deepEqual(
    a.query({ afterId: 4n, limit: 0 }).items.map((i) => i.table),
    ["t5"],
  );
  assert.deepEqual(
    a.query({ afterId: 0n, limit: 1 }).items.map((i) => i.table),
    ["t5"],
  );
});
