import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  captureMetrics,
  dpuMetrics,
  monitorMetrics,
  serviceMetrics,
  setState,
  snapshotMetrics,
  verifyMetrics,
} from "../../dist/catalog.js";
import { parseMetrics, sumOf } from "../../dist/parse.js";
import { createRegistry } from "../../dist/registry.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "docs")) || !existsSync(join(dir, "packages"))) dir = dirname(dir);
  return dir;
}

function catalogNames(): string[] {
  const r = createRegistry("test", "s", false);
  for (const make of [
    serviceMetrics,
    captureMetrics,
    dpuMetrics,
    snapshotMetrics,
    verifyMetrics,
    monitorMetrics,
  ])
    make(r);
  return r.getMetricsAsArray().map((m) => m.name);
}

test("docs/metrics.md lists every metric of the catalog, and no other", () => {
  const doc = readFileSync(join(repoRoot(), "docs", "metrics.md"), "utf8");
  const rows = new Set([...doc.matchAll(/^\|\s*`(dfs_[a-z0-9_]+)`/gm)].map((m) => m[1]!));
  const names = catalogNames();
  assert.ok(names.length >= 25, `catalog has ${names.length} metrics`);
  const missing = names.filter((n) => !rows.has(n));
  assert.deepEqual(missing, [], "metrics without a row in docs/metrics.md");
  const unknown = [...rows].filter((n) => !names.includes(n));
  assert.deepEqual(unknown, [], "rows in docs/metrics.md for metrics that do not exist");
});

test("every name starts with dfs_, the process metrics too", async () => {
  const r = createRegistry("capture", "src1");
  captureMetrics(r);
  const samples = parseMetrics(await r.metrics());
  assert.ok(samples.length > 20);
  for (const s of samples) {
    assert.match(s.name, /^dfs_/, s.name);
    assert.equal(s.labels.service, "capture");
    assert.equal(s.labels.source, "src1");
  }
});

test("the state gauge has exactly one state at 1; parse and sum read labels and escapes", async () => {
  const r = createRegistry("dpu", "s", false);
  const m = serviceMetrics(r);
  setState(m, "paused");
  setState(m, "running");
  const d = dpuMetrics(r);
  d.applied.inc({ db: 'we"ird\\db', table: "t", op: "c" }, 3);
  d.applied.inc({ db: "x", table: "t", op: "u" }, 2);
  const samples = parseMetrics(await r.metrics());
  assert.equal(sumOf(samples, "dfs_service_state"), 1);
  assert.equal(sumOf(samples, "dfs_service_state", { state: "running" }), 1);
  assert.equal(sumOf(samples, "dfs_dpu_changes_applied_total", { db: 'we"ird\\db' }), 3);
  assert.equal(sumOf(samples, "dfs_dpu_changes_applied_total", { table: "t" }), 5);
});
