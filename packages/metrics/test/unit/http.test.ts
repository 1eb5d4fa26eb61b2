import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "@dfs/common";
import { serviceMetrics } from "../../dist/catalog.js";
import { serveHttp } from "../../dist/http.js";
import { createRegistry } from "../../dist/registry.js";

test("/metrics, /healthz and /readyz answer; readiness follows the service", async () => {
  const registry = createRegistry("test", "s", false);
  serviceMetrics(registry).errors.inc({ kind: "data" });
  let ready = false;
  let scrapes = 0;
  const http = await serveHttp({
    port: 0,
    host: "127.0.0.1",
    registry,
    health: () => ({ live: true, ready, detail: ready ? "running" : "starting" }),
    beforeScrape: () => scrapes++,
  });
  const url = (p: string) => `http://127.0.0.1:${http.port}${p}`;
  try {
    assert.equal((await fetch(url("/healthz"))).status, 200);
    const notReady = await fetch(url("/readyz"));
    assert.equal(notReady.status, 503);
    assert.deepEqual(await notReady.json(), { live: true, ready: false, detail: "starting" });
    ready = true;
    assert.equal((await fetch(url("/readyz"))).status, 200);
    const metrics = await (await fetch(url("/metrics"))).text();
    assert.match(metrics, /dfs_errors_total\{kind="data",service="test",source="s"\} 1/);
    assert.equal(scrapes, 1);
    assert.equal((await fetch(url("/nothing"))).status, 404);
  } finally {
    await http.close();
  }
});

test("a port in use is a config error naming the key", async () => {
  const registry = createRegistry("test", "s", false);
  const health = () => ({ live: true, ready: true, detail: "" });
  const first = await serveHttp({ port: 0, host: "127.0.0.1", registry, health });
  try {
    await assert.rejects(
      serveHttp({ port: first.port, host: "127.0.0.1", registry, health, portKey: "capture.http.port" }),
      (err: Error) =>
        err instanceof ConfigError &&
        /capture\.http\.port: cannot listen .*the port is in use/.test(err.message),
    );
  } finally {
    await first.close();
  }
});
