// Debian's prometheus, started here with a scrape config for capture, relmgr, a DPU and the
// monitor run by this test (on free ports, against the stack's MariaDB and NATS) and with
// deploy/prometheus/alerts.yml: it scrapes every service's dfs_ series, and DfsDpuDown goes to
// firing once the DPU is killed (and not before).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { sourceConnection, toYaml, uniqueId, urls } from "@dfs/testkit";
import { repoRoot, requireTool } from "../support/repo.js";
import { type DfsProcess, freePort, getText, startDfs, stop } from "../support/services.js";

const SERVICES = ["capture", "relmgr", "dpu", "monitor"] as const;

/** The parts of Prometheus's API answers this test reads. */
interface ApiData {
  result?: { metric: Record<string, string> }[];
  alerts?: { labels: Record<string, string>; state: string }[];
}

test("prometheus scrapes every service's dfs_ series, and DfsDpuDown fires when the DPU is killed", async () => {
  const prometheusBin = requireTool("prometheus", "apt-get install -y prometheus");
  const dir = mkdtempSync(join(tmpdir(), "dfs-prom-"));
  const id = uniqueId("prom");
  const db = `${id}_db`;
  const src = await sourceConnection();
  await src.query(`CREATE DATABASE ${db}`);
  await src.query(`CREATE TABLE ${db}.t (id INT PRIMARY KEY, v INT)`);
  const port = {
    captureHttp: await freePort(),
    captureGrpc: await freePort(),
    relmgrHttp: await freePort(),
    relmgrGrpc: await freePort(),
    dpuHttp: await freePort(),
    dpuGrpc: await freePort(),
    monitor: await freePort(),
    prometheus: await freePort(),
  };
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
        http: { port: port.captureHttp },
        grpc: { port: port.captureGrpc },
      },
      relmgr: { http: { port: port.relmgrHttp }, grpc: { port: port.relmgrGrpc } },
      dpu: { http: { port: port.dpuHttp }, grpc: { port: port.dpuGrpc }, lease: { ttlMs: 1000 } },
      monitor: { http: { port: port.monitor } },
      control: { token: "t" },
      log: { level: "warn" },
    }),
  );
  const targets: Record<(typeof SERVICES)[number], number> = {
    capture: port.captureHttp,
    relmgr: port.relmgrHttp,
    dpu: port.dpuHttp,
    monitor: port.monitor,
  };
  writeFileSync(
    join(dir, "prometheus.yml"),
    toYaml({
      global: { scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "900ms" },
      rule_files: [join(repoRoot(), "deploy", "prometheus", "alerts.yml")],
    }) +
      `scrape_configs:\n  - job_name: dfs\n    static_configs:\n${SERVICES.map(
        (s) => `      - targets: ["127.0.0.1:${targets[s]}"]\n        labels: { service: ${s} }\n`,
      ).join("")}`,
  );
  const procs: DfsProcess[] = [];
  const prom = spawn(
    prometheusBin,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port.prometheus}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let promLog = "";
  prom.stderr!.setEncoding("utf8").on("data", (c: string) => {
    promLog = (promLog + c).slice(-10_000);
  });
  const promExited = new Promise((r) => prom.once("exit", r));
  const api = async (path: string) => {
    const text = await getText(`http://127.0.0.1:${port.prometheus}/api/v1/${path}`);
    return text ? (JSON.parse(text) as { data: ApiData }).data : null;
  };
  const why = () =>
    `${procs.map((p) => `--- ${p.name}\n${p.output()}`).join("\n")}\n--- prometheus\n${promLog}`;
  try {
    for (const s of SERVICES) procs.push(startDfs(s, [s, "-c", config]));
    // Every service's dfs_ series, scraped with its service label.
    const seen = await waitFor(
      async () => {
        const r = await api(
          `query?query=${encodeURIComponent('count by (service) ({__name__=~"dfs_.+", job="dfs"})')}`,
        );
        const services = new Set<string>((r?.result ?? []).map((x) => x.metric.service ?? ""));
        return SERVICES.every((s) => services.has(s)) ? services : null;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: "dfs_ series of every service in prometheus" },
    ).catch((e: Error) => assert.fail(`${e.message}\n${why()}`));
    assert.equal(seen.size, 4);
    // The service's own metrics, not only process ones: capture's and the DPU's.
    for (const q of [
      'dfs_capture_journal_limit_bytes{service="capture"}',
      'dfs_dpu_stream_max_age_seconds{service="dpu"}',
      'dfs_service_state{service="relmgr", state="running"}',
    ]) {
      await waitFor(
        async () => ((await api(`query?query=${encodeURIComponent(q)}`))?.result ?? []).length > 0,
        {
          timeoutMs: 30_000,
          intervalMs: 500,
          what: q,
        },
      ).catch((e: Error) => assert.fail(`${e.message}\n${why()}`));
    }
    const alertState = async (name: string) => {
      const r = await api("alerts");
      return (r?.alerts ?? []).filter((a) => a.labels.alertname === name).map((a) => a.state);
    };
    assert.deepEqual(await alertState("DfsDpuDown"), [], "DfsDpuDown before its cause");
    await stop(procs.find((p) => p.name === "dpu")!, "SIGKILL");
    // up{service="dpu"} == 0: pending at once, firing after the rule's `for` (1 minute).
    await waitFor(async () => (await alertState("DfsDpuDown")).includes("pending"), {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: "DfsDpuDown pending",
    }).catch((e: Error) => assert.fail(`${e.message}\n${why()}`));
    await waitFor(async () => (await alertState("DfsDpuDown")).includes("firing"), {
      timeoutMs: 120_000,
      intervalMs: 1000,
      what: "DfsDpuDown firing",
    }).catch((e: Error) => assert.fail(`${e.message}\n${why()}`));
    assert.deepEqual(await alertState("DfsCaptureDown"), [], "capture still runs");
  } finally {
    for (const p of procs) await stop(p);
    prom.kill("SIGTERM");
    await promExited;
    await src.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
    await src.end();
    rmSync(dir, { recursive: true, force: true });
  }
});
