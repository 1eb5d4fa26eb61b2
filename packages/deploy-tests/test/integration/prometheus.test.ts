// Debian's prometheus with the real deploy/prometheus/prometheus.yml and alerts.yml: every job,
// label and relabel rule as docker-compose.yml's Prometheus has them, only the targets' addresses
// pointed at capture, relmgr, the two DPU groups (orders, activity) and the monitor started here
// on free ports (against the stack's MariaDB and NATS), and the intervals shortened. Every
// service's dfs_ series is scraped with the labels the config promises; DfsDpuDown fires for the
// killed DPU's group (and not before), DfsCaptureDown for the killed capture.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { quoteId } from "@dfs/mysql";
import { sourceConnection, toYaml, uniqueId, urls } from "@dfs/testkit";
import { stringify } from "yaml";
import { promDir, readPromConfig, staticTargets } from "../support/prometheus.js";
import { requireTool } from "../support/repo.js";
import { type DfsProcess, freePort, getText, startDfs, stop } from "../support/services.js";

/** The parts of Prometheus's API answers this test reads. */
interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
interface Alert {
  labels: Record<string, string>;
  state: string;
}

test("prometheus with deploy/prometheus/prometheus.yml scrapes every service, and DfsDpuDown / DfsCaptureDown fire when they are killed", async () => {
  const prometheusBin = requireTool("prometheus", "apt-get install -y prometheus");
  const dir = mkdtempSync(join(tmpdir(), "dfs-prom-"));
  const id = uniqueId("prom");
  const db = `${id}_db`;
  const src = await sourceConnection();
  await src.query(`CREATE DATABASE ${quoteId(db)}`);
  for (const t of ["orders", "page_views"])
    await src.query(`CREATE TABLE ${quoteId(db)}.${quoteId(t)} (id INT PRIMARY KEY, v INT)`);
  const port: Record<string, number> = {};
  for (const k of ["capture", "captureGrpc", "relmgr", "relmgrGrpc", "monitor", "prometheus"])
    port[k] = await freePort();
  const groups = ["orders", "activity"] as const;
  for (const g of groups) {
    port[`dpu-${g}`] = await freePort();
    port[`dpu-${g}Grpc`] = await freePort();
  }
  const config = join(dir, "dfs.yaml");
  writeFileSync(
    config,
    toYaml({
      source: {
        id,
        url: urls.sourceUrl,
        serverId: 5000 + Math.floor(Math.random() * 50_000),
        include: { databases: [db] },
      },
      target: { url: urls.targetUrl },
      nats: { url: urls.natsUrl },
      capture: {
        journal: { path: join(dir, "journal.db") },
        heartbeatIntervalMs: 500,
        http: { port: port.capture },
        grpc: { port: port.captureGrpc },
      },
      relmgr: {
        http: { port: port.relmgr },
        grpc: { port: port.relmgrGrpc },
        groups: [
          { name: "orders", tables: [`${db}.orders`] },
          { name: "activity", tables: [`${db}.page_views`] },
        ],
      },
      dpu: { lease: { ttlMs: 1000 } },
      monitor: { http: { port: port.monitor } },
      control: { token: "t" },
      log: { level: "warn" },
    }),
  );

  // deploy/prometheus/prometheus.yml with only the addresses changed: compose's host names (the
  // services' names in docker-compose.yml, and Prometheus itself) to the ports used here.
  const prom = readPromConfig();
  const address = (a: string): string => {
    const host = a.split(":")[0]!;
    const p = host === "127.0.0.1" ? port.prometheus : port[host];
    if (p === undefined)
      throw new Error(`prometheus.yml scrapes ${a}, which this test does not start: add it`);
    return `127.0.0.1:${p}`;
  };
  const expected = staticTargets(prom);
  for (const job of prom.scrape_configs) {
    assert.equal(
      job.scrape_interval,
      undefined,
      `${job.job_name}: the test only shortens the global interval`,
    );
    for (const sc of job.static_configs ?? []) sc.targets = sc.targets.map(address);
  }
  prom.global = { ...prom.global, scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "900ms" };
  writeFileSync(join(dir, "prometheus.yml"), stringify(prom));
  for (const f of prom.rule_files ?? []) copyFileSync(join(promDir, f), join(dir, f));

  const procs: DfsProcess[] = [];
  const server = spawn(
    prometheusBin,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port.prometheus}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let promLog = "";
  server.stderr!.setEncoding("utf8").on("data", (c: string) => {
    promLog = (promLog + c).slice(-10_000);
  });
  const promExited = new Promise((r) => server.once("exit", r));
  const api = async <T>(path: string): Promise<T | null> => {
    const text = await getText(`http://127.0.0.1:${port.prometheus}/api/v1/${path}`);
    return text ? (JSON.parse(text) as { data: T }).data : null;
  };
  const query = async (q: string) =>
    (await api<{ result: Sample[] }>(`query?query=${encodeURIComponent(q)}`))?.result ?? [];
  const why = () =>
    `${procs.map((p) => `--- ${p.name}\n${p.output()}`).join("\n")}\n--- prometheus\n${promLog}`;
  const until = <T>(what: string, timeoutMs: number, check: () => Promise<T | null>) =>
    waitFor(check, { timeoutMs, intervalMs: 500, what }).catch((e: Error) =>
      assert.fail(`${e.message}\n${why()}`),
    );
  const alerts = async (name: string) =>
    ((await api<{ alerts: Alert[] }>("alerts"))?.alerts ?? []).filter((a) => a.labels.alertname === name);
  try {
    procs.push(startDfs("capture", ["capture", "-c", config]));
    procs.push(startDfs("relmgr", ["relmgr", "-c", config]));
    for (const g of groups)
      procs.push(
        startDfs(`dpu-${g}`, ["dpu", "-c", config], {
          DFS_DPU_GROUP: g,
          DFS_DPU_HTTP_PORT: String(port[`dpu-${g}`]),
          DFS_DPU_GRPC_PORT: String(port[`dpu-${g}Grpc`]),
        }),
      );
    procs.push(startDfs("monitor", ["monitor", "-c", config]));

    // Every dfs target is up, and its dfs_ series are there under its job with its service and
    // group: the (job, service, group) of each target of prometheus.yml.
    const key = (l: Record<string, string>) => `${l.job} ${l.service ?? "-"} ${l.group ?? "-"}`;
    const dfsTargets = expected.filter((t) => t.labels.service).map((t) => key(t.labels));
    assert.equal(dfsTargets.length, 5, `dfs targets of prometheus.yml: ${dfsTargets.join(", ")}`);
    await until("every dfs target up", 90_000, async () => {
      const up = (await query("up == 1")).map((s) => key(s.metric));
      return dfsTargets.every((k) => up.includes(k)) || null;
    });
    const seen = await until("dfs_ series of every target", 60_000, async () => {
      const r = await query('count by (job, service, group) ({__name__=~"dfs_.+"})');
      const got = r.map((s) => key(s.metric)).sort();
      return dfsTargets.every((k) => got.includes(k)) ? got : null;
    });
    assert.deepEqual(seen, [...dfsTargets].sort(), "dfs_ series only under the targets' own labels");
    // The services' own metrics, not only process ones.
    for (const q of [
      'dfs_capture_journal_limit_bytes{service="capture"}',
      'dfs_dpu_stream_max_age_seconds{service="dpu", group="orders"}',
      'dfs_dpu_stream_max_age_seconds{service="dpu", group="activity"}',
      'dfs_service_state{service="relmgr", state="running"}',
      'dfs_service_state{service="monitor"}',
    ])
      await until(q, 30_000, async () => (await query(q)).length > 0 || null);
    // A target label and a sample label of the same name: the sample's, never exported_*.
    const series =
      (await api<Record<string, string>[]>(`series?match[]=${encodeURIComponent('{__name__=~"dfs_.+"}')}`)) ??
      [];
    assert.ok(series.length > 20, `only ${series.length} dfs_ series`);
    const exported = series.filter((s) => Object.keys(s).some((k) => k.startsWith("exported_")));
    assert.deepEqual(exported.slice(0, 3), [], "series with exported_* labels");

    // Nothing is down now: the alerts of the start-up (targets not yet listening) are gone.
    await until("no DfsDpuDown or DfsCaptureDown while all run", 30_000, async () => {
      return (await alerts("DfsDpuDown")).length + (await alerts("DfsCaptureDown")).length === 0 || null;
    });

    await stop(procs.find((p) => p.name === "dpu-orders")!, "SIGKILL");
    // up{service="dpu"} == 0 for the orders DPU only: pending at once.
    const pending = await until("DfsDpuDown pending", 30_000, async () => {
      const a = await alerts("DfsDpuDown");
      return a.length > 0 ? a : null;
    });
    assert.deepEqual(
      pending.map((a) => [a.state, a.labels.group, a.labels.job]),
      [["pending", "orders", "dfs-dpu"]],
      "DfsDpuDown for the killed DPU's group",
    );
    assert.deepEqual(await alerts("DfsCaptureDown"), [], "capture still runs");

    await stop(procs.find((p) => p.name === "capture")!, "SIGKILL");
    await until(
      "DfsCaptureDown pending",
      30_000,
      async () => (await alerts("DfsCaptureDown")).length > 0 || null,
    );
    // Firing after the rules' `for` (1 minute).
    for (const name of ["DfsDpuDown", "DfsCaptureDown"])
      await until(
        `${name} firing`,
        120_000,
        async () => (await alerts(name)).some((a) => a.state === "firing") || null,
      );
    const dpuDown = await alerts("DfsDpuDown");
    assert.deepEqual(
      dpuDown.map((a) => a.labels.group),
      ["orders"],
      "the activity DPU still runs",
    );
  } finally {
    for (const p of procs) await stop(p);
    server.kill("SIGTERM");
    await promExited;
    await src.query(`DROP DATABASE IF EXISTS ${quoteId(db)}`).catch(() => {});
    await src.end();
    rmSync(dir, { recursive: true, force: true });
  }
});
