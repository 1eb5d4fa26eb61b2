// deploy/prometheus's scrape configs against alerts.yml, offline: `up` carries only a target's
// labels, so every rule selecting on `up{...}` must match some target's labels or it can never
// fire for a service that is down. Checked for prometheus.yml (docker-compose.yml's Prometheus)
// and for kubernetes.yml applied to the pods of every kustomize build of deploy/k8s.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import {
  type Labels,
  promDir,
  readAlertRules,
  readPromConfig,
  staticTargets,
  targetLabels,
  unsatisfiedUpRules,
  upSelectors,
} from "../support/prometheus.js";
import { repoRoot, requireTool, run } from "../support/repo.js";

const root = repoRoot();
const rules = readAlertRules();
/** The labels every dfs service puts on its own samples (packages/metrics createRegistry; the DPU adds group). */
const SAMPLE_LABELS = ["service", "source", "group"];
const DFS_COMMANDS = new Set(["capture", "relmgr", "dpu", "monitor"]);

test("promtool check config accepts prometheus.yml with its rule file", () => {
  const r = run(
    requireTool("promtool", "apt-get install -y prometheus"),
    ["check", "config", "prometheus.yml"],
    promDir,
  );
  assert.equal(r.status, 0, r.output);
});

test("the up selectors of the rules are read: DfsCaptureDown and DfsDpuDown select on service", () => {
  const byName = new Map(rules.map((r) => [r.alert, upSelectors(r.expr)]));
  assert.deepEqual(byName.get("DfsCaptureDown"), [[{ name: "service", op: "=", value: "capture" }]]);
  assert.deepEqual(byName.get("DfsDpuDown"), [[{ name: "service", op: "=", value: "dpu" }]]);
  assert.deepEqual(upSelectors('dfs_x_up{a="b"} + up + foo{state="up"}'), [[]]);
});

test("prometheus.yml: every rule selecting on up matches a target's labels", () => {
  const targets = staticTargets(readPromConfig()).map((t) => t.labels);
  assert.ok(targets.length >= 5, `only ${targets.length} targets`);
  assert.deepEqual(unsatisfiedUpRules(rules, targets), [], JSON.stringify(targets, null, 1));
});

test("prometheus.yml: a job whose targets set a label the samples carry too honours the samples' (no exported_*)", () => {
  for (const { job, labels } of staticTargets(readPromConfig())) {
    const shared = SAMPLE_LABELS.filter((l) => l in labels);
    if (shared.length > 0)
      assert.equal(
        job.honor_labels,
        true,
        `job ${job.job_name} sets ${shared.join(", ")}: honor_labels: true`,
      );
  }
});

test("prometheus.yml: every dfs service of docker-compose.yml is a target with its service and group", () => {
  const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8")) as {
    services: Record<string, { command?: string[]; environment?: Record<string, string> }>;
  };
  const targets = staticTargets(readPromConfig());
  const dfs = Object.entries(compose.services).filter(([, s]) => DFS_COMMANDS.has(s.command?.[0] ?? ""));
  assert.ok(dfs.length >= 5, `only ${dfs.length} dfs services in docker-compose.yml`);
  for (const [name, s] of dfs) {
    const t = targets.filter((x) => x.address.split(":")[0] === name);
    assert.equal(t.length, 1, `docker-compose.yml's ${name}: one target in prometheus.yml`);
    assert.equal(t[0]!.labels.service, s.command![0], `${name}: service label`);
    assert.equal(t[0]!.labels.group, s.environment?.DFS_DPU_GROUP, `${name}: group label`);
  }
  // The ports are the ones the monitor polls (deploy/compose/dfs.yaml monitor.services).
  const dfsYaml = parse(readFileSync(join(root, "deploy", "compose", "dfs.yaml"), "utf8")) as {
    monitor: { services: { kind: string; http: string }[] };
  };
  for (const s of dfsYaml.monitor.services) {
    const address = new URL(s.http).host;
    const t = targets.find((x) => x.address === address);
    assert.equal(t?.labels.service, s.kind, `${address} (monitor.services) is scraped as ${s.kind}`);
  }
});

test("the check fails prometheus.yml's targets without their labels (the config before the fix)", () => {
  const config = readPromConfig();
  for (const job of config.scrape_configs) for (const sc of job.static_configs ?? []) delete sc.labels;
  const problems = unsatisfiedUpRules(
    rules,
    staticTargets(config).map((t) => t.labels),
  );
  assert.ok(
    problems.some((p) => p.startsWith("DfsCaptureDown:")),
    problems.join("\n"),
  );
  assert.ok(
    problems.some((p) => p.startsWith("DfsDpuDown:")),
    problems.join("\n"),
  );
});

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked untyped
type Obj = any;

/** Prometheus's name for a Kubernetes label or annotation in a meta label: [^a-zA-Z0-9_] -> _. */
const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, "_");

/**
 * The targets kubernetes_sd_configs (role: pod) discovers for a workload's pods: one per
 * container port, with the pod's meta labels; the pod IP is made up.
 */
function podTargets(o: Obj, replicas: number): Labels[] {
  const out: Labels[] = [];
  const tpl = o.spec.template;
  for (let i = 0; i < replicas; i++) {
    const meta: Labels = {
      __meta_kubernetes_namespace: o.metadata.namespace,
      __meta_kubernetes_pod_name: `${o.metadata.name}-${i}`,
    };
    for (const [k, v] of Object.entries<string>(tpl.metadata.labels ?? {})) {
      meta[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
      meta[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = "true";
    }
    for (const [k, v] of Object.entries<string>(tpl.metadata.annotations ?? {})) {
      meta[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
      meta[`__meta_kubernetes_pod_annotationpresent_${sanitize(k)}`] = "true";
    }
    for (const c of tpl.spec.containers)
      for (const p of c.ports ?? [])
        out.push({
          ...meta,
          __address__: `10.0.0.${i + 1}:${p.containerPort}`,
          __meta_kubernetes_pod_container_name: c.name,
          __meta_kubernetes_pod_container_port_name: p.name ?? "",
          __meta_kubernetes_pod_container_port_number: String(p.containerPort),
        });
  }
  return out;
}

test("kubernetes.yml: every dfs pod of every kustomize build is one target with its service and group, and the up rules match", () => {
  const kubectl = requireTool("kubectl", "apt-get install -y kubectl");
  const k8s = join(root, "deploy", "k8s");
  const job = readPromConfig("kubernetes.yml").scrape_configs[0]!;
  assert.equal(job.honor_labels, true, "honor_labels: the samples carry service and group too");
  const sd = (job.kubernetes_sd_configs as { role: string; namespaces?: { names: string[] } }[])[0]!;
  assert.equal(sd.role, "pod");
  for (const b of ["base", ...readdirSync(join(k8s, "overlays")).map((o) => `overlays/${o}`)]) {
    const r = run(kubectl, ["kustomize", join(k8s, b)]);
    assert.equal(r.status, 0, `kubectl kustomize ${b}:\n${r.output}`);
    const workloads = parseAllDocuments(r.output)
      .map((d) => d.toJS() as Obj)
      .filter((o) => ["Deployment", "StatefulSet"].includes(o.kind));
    const all: Labels[] = [];
    let dfsPods = 0;
    for (const o of workloads) {
      const where = `${b}: ${o.kind}/${o.metadata.name}`;
      const container = o.spec.template.spec.containers[0];
      const command = container.args?.[0] ?? container.command?.[0];
      const isDfs = DFS_COMMANDS.has(command);
      if (sd.namespaces) assert.ok(sd.namespaces.names.includes(o.metadata.namespace), `${where}: namespace`);
      const replicas = o.spec.replicas ?? 1;
      const kept = new Map<string, Labels>();
      for (const t of podTargets(o, replicas)) {
        const labels = targetLabels(job, t);
        if (labels) kept.set(JSON.stringify(Object.entries(labels).sort()), labels);
      }
      if (!isDfs) continue;
      dfsPods += replicas;
      assert.equal(kept.size, replicas, `${where}: one target per pod`);
      const group = container.env?.find((e: Obj) => e.name === "DFS_DPU_GROUP")?.value;
      for (const labels of kept.values()) {
        assert.equal(labels.service, command, `${where}: service label`);
        assert.equal(labels.group, group, `${where}: group label (DFS_DPU_GROUP)`);
        all.push(labels);
      }
    }
    assert.ok(dfsPods >= 5, `${b}: only ${dfsPods} dfs pods`);
    assert.deepEqual(unsatisfiedUpRules(rules, all), [], `${b}: ${JSON.stringify(all)}`);
  }
});
