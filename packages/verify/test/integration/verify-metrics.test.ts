// The last verify result per table as the DPU's dfs_verify_* gauges: verify keeps it in the
// target's `_dfs_verify`, a running DPU reads it (at start, then every 30 s) and serves it on /metrics.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type CaptureService, startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { type DpuService, startDpu } from "@dfs/dpu";
import { runVerify, type TableResult } from "../../dist/index.js";
import { openHarness, q, quietLog } from "../support/harness.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The dfs_verify_* samples of a /metrics page (the text format: `name{a="x",b="y"} value`). */
async function scrapeVerify(port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  const out: Sample[] = [];
  for (const line of (await res.text()).split("\n")) {
    const m = /^(dfs_verify_\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The four gauges of one target table, keyed by metric name; fails unless each has exactly one series. */
function gaugesOf(
  samples: Sample[],
  db: string,
  table: string,
  service: Record<string, string>,
): { status: string; v: Record<string, number> } {
  const mine = samples.filter((s) => s.labels.db === db && s.labels.table === table);
  const names = [
    "dfs_verify_drifted_keys",
    "dfs_verify_rows_checked",
    "dfs_verify_duration_seconds",
    "dfs_verify_last_run_timestamp_seconds",
  ];
  assert.deepEqual(mine.map((s) => s.name).sort(), [...names].sort(), JSON.stringify(mine));
  const statuses = new Set(mine.map((s) => s.labels.status));
  assert.equal(statuses.size, 1, `one status per table: ${JSON.stringify(mine)}`);
  // The registry's labels (service, source, group), then the gauge's own (db, table, status).
  for (const s of mine)
    assert.deepEqual(s.labels, { ...service, db, table, status: mine[0]!.labels.status }, JSON.stringify(s));
  return { status: mine[0]!.labels.status!, v: Object.fromEntries(mine.map((s) => [s.name, s.value])) };
}

test("the DPU serves the last verify of each table as dfs_verify_*: drift, then 0 after --repair", async () => {
  const h = await openHarness("vfymet");
  let capture: CaptureService | null = null;
  let dpu: DpuService | null = null;
  try {
    for (const t of ["items", "clean"]) {
      await h.src.query(`CREATE TABLE ${q(h.db)}.${q(t)} (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL)`);
    }
    // The harness's start() keeps its DPU to itself: started here, for its metrics port.
    capture = await startCapture(h.cfg);
    dpu = await startDpu(h.cfg);
    const port = dpu.endpoints.http;
    const dpuLabels = { service: "dpu", source: h.id, group: h.cfg.dpu.group };
    await h.src.query(
      `INSERT INTO ${q(h.db)}.items SELECT seq, CONCAT('n', seq) FROM ${q(h.db)}.seq_1_to_3000`,
    );
    await h.src.query(
      `INSERT INTO ${q(h.db)}.clean SELECT seq, CONCAT('c', seq) FROM ${q(h.db)}.seq_1_to_500`,
    );
    await h.caughtUp(["items", "clean"]);

    // Behind the pipeline's back, on the target only: 2 different, 1 missing, 1 extra.
    const tt = `${q(h.targetDb)}.${q("items")}`;
    await h.dst.query(`UPDATE ${tt} SET name = 'changed' WHERE id IN (10, 2000)`);
    await h.dst.query(`DELETE FROM ${tt} WHERE id = 77`);
    await h.dst.query(`INSERT INTO ${tt} (id, name) VALUES (5000, 'extra')`);

    const tables = [
      { db: h.db, table: "items" },
      { db: h.db, table: "clean" },
    ];
    const t0 = Date.now();
    const first = await runVerify(h.cfg, { log: quietLog, chunkRows: 1000, tables });
    const t1 = Date.now();
    const items = first.tables.find((r) => r.target?.table === "items") as TableResult;
    const clean = first.tables.find((r) => r.target?.table === "clean") as TableResult;
    assert.equal(items.status, "drift", JSON.stringify(items));
    assert.equal(items.drift.length, 4);
    assert.equal(clean.status, "ok");

    // The DPU reads `_dfs_verify` every 30 s: wait for this run's result to be served.
    const s1 = await waitFor(
      async () => {
        const s = await scrapeVerify(port);
        return s.some((x) => x.labels.table === "items" && x.labels.status === "drift") ? s : null;
      },
      { timeoutMs: 45_000, intervalMs: 500, what: "the DPU to serve the first verify's result" },
    );
    const g1 = gaugesOf(s1, h.targetDb, "items", dpuLabels);
    assert.equal(g1.status, "drift");
    assert.equal(g1.v.dfs_verify_drifted_keys, 4);
    assert.equal(g1.v.dfs_verify_rows_checked, 3000);
    assert.equal(g1.v.dfs_verify_duration_seconds, items.seconds);
    assert.ok(items.seconds > 0);
    const ts1 = g1.v.dfs_verify_last_run_timestamp_seconds!;
    assert.ok(
      ts1 >= Math.floor(t0 / 1000) && ts1 <= t1 / 1000 + 1,
      `finished at ${ts1}, ran ${t0 / 1000}..${t1 / 1000}`,
    );
    const c1 = gaugesOf(s1, h.targetDb, "clean", dpuLabels);
    assert.equal(c1.status, "ok");
    assert.equal(c1.v.dfs_verify_drifted_keys, 0);
    assert.equal(c1.v.dfs_verify_rows_checked, 500);
    assert.equal(c1.v.dfs_verify_duration_seconds, clean.seconds);
    const cts = c1.v.dfs_verify_last_run_timestamp_seconds!;
    assert.ok(Math.abs(cts - ts1) < 1, `saved by the same run: ${cts} and ${ts1}`);
    // Series are labelled by the target table, never the source one.
    assert.ok(!s1.some((x) => x.labels.db === h.db), "no series of the source database");

    const repaired = await runVerify(h.cfg, {
      log: quietLog,
      chunkRows: 1000,
      tables: [{ db: h.db, table: "items" }],
      repair: true,
    });
    assert.equal(repaired.tables[0]!.status, "repaired", JSON.stringify(repaired.tables[0]));
    const again = await runVerify(h.cfg, {
      log: quietLog,
      chunkRows: 1000,
      tables: [{ db: h.db, table: "items" }],
    });
    const t2 = Date.now();
    assert.equal(again.tables[0]!.status, "ok");

    const s2 = await waitFor(
      async () => {
        const s = await scrapeVerify(port);
        return s.some((x) => x.labels.table === "items" && x.labels.status === "ok") ? s : null;
      },
      { timeoutMs: 45_000, intervalMs: 500, what: "the DPU to serve the verify after the repair" },
    );
    const g2 = gaugesOf(s2, h.targetDb, "items", dpuLabels);
    assert.equal(g2.status, "ok");
    assert.equal(g2.v.dfs_verify_drifted_keys, 0);
    assert.equal(g2.v.dfs_verify_rows_checked, 3000);
    assert.equal(g2.v.dfs_verify_duration_seconds, again.tables[0]!.seconds);
    const ts2 = g2.v.dfs_verify_last_run_timestamp_seconds!;
    assert.ok(ts2 > ts1 && ts2 <= t2 / 1000 + 1, `newer: ${ts2} after ${ts1}`);
    // The drift series is gone (the gauges hold the last result, not every status seen).
    assert.ok(!s2.some((x) => x.labels.status === "drift"), JSON.stringify(s2));
    // The clean table, not verified again, keeps its last result.
    assert.equal(gaugesOf(s2, h.targetDb, "clean", dpuLabels).v.dfs_verify_last_run_timestamp_seconds, cts);
  } finally {
    await dpu?.stop().catch(() => {});
    await capture?.stop().catch(() => {});
    await h.close();
  }
});
