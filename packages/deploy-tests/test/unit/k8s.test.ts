// deploy/k8s: `kubectl kustomize` builds the base and every overlay; every object validates
// against the Kubernetes OpenAPI schemas (kubernetes-models' validators, offline); the workloads
// keep the rules docs/deploy.md promises (non-root, read-only root, probes, limits, scrape
// annotations), and each overlay's dfs.yaml is a config the services accept.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parseConfig } from "@dfs/config";
import { parse, parseAllDocuments } from "yaml";
import { repoRoot, requireTool, run } from "../support/repo.js";

const k8s = join(repoRoot(), "deploy", "k8s");
const builds = ["base", ...readdirSync(join(k8s, "overlays")).map((o) => `overlays/${o}`)];

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked untyped
type Obj = any;

function build(dir: string): Obj[] {
  const kubectl = requireTool("kubectl", "apt-get install -y kubectl");
  const r = run(kubectl, ["kustomize", join(k8s, dir)]);
  assert.equal(r.status, 0, `kubectl kustomize ${dir}:\n${r.output}`);
  return parseAllDocuments(r.output).map((d) => d.toJS());
}

/** The kubernetes-models module of a kind: apps/v1 StatefulSet -> kubernetes-models/apps/v1/StatefulSet. */
async function model(o: Obj): Promise<new (data: Obj) => { validate(): void }> {
  const api = String(o.apiVersion).includes("/") ? o.apiVersion : `v1/${o.apiVersion}`.replace("v1/v1", "v1");
  const mod = await import(`kubernetes-models/${api}/${o.kind}`);
  return mod[o.kind];
}

async function validate(o: Obj): Promise<string | null> {
  const Model = await model(o);
  try {
    new Model(o).validate();
    return null;
  } catch (err) {
    return `${o.kind}/${o.metadata?.name}: ${(err as Error).message}`;
  }
}

test("kubectl kustomize builds the base and every overlay, dev and prod among them", () => {
  assert.ok(builds.includes("overlays/dev") && builds.includes("overlays/prod"), builds.join(", "));
  for (const b of builds) assert.ok(build(b).length > 10, `${b}: too few objects`);
});

test("every object of every build validates against the Kubernetes schemas", async () => {
  const problems: string[] = [];
  let checked = 0;
  for (const b of builds) {
    for (const o of build(b)) {
      const p = await validate(o);
      checked++;
      if (p) problems.push(`${b}: ${p}`);
    }
  }
  assert.ok(checked > 60, `only ${checked} objects`);
  assert.deepEqual(problems, []);
});

test("the validator catches a wrong object", async () => {
  const sts = build("base").find((o) => o.kind === "StatefulSet" && o.metadata.name === "capture");
  sts.spec.replicas = "one";
  sts.spec.template.spec.containers[0].ports[0].containerPort = "http";
  const p = await validate(sts);
  assert.match(p ?? "", /replicas must be integer/);
  assert.match(p ?? "", /containerPort/);
});

test("workloads: non-root, read-only root, no escalation, no capabilities, probes, requests and limits", () => {
  for (const b of builds) {
    for (const o of build(b).filter((x) => ["StatefulSet", "Deployment"].includes(x.kind))) {
      const where = `${b}: ${o.kind}/${o.metadata.name}`;
      const pod = o.spec.template.spec;
      assert.equal(pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
      assert.equal(pod.automountServiceAccountToken, false, `${where}: no service account token`);
      const mounts = new Set<string>();
      for (const c of pod.containers) {
        const sc = c.securityContext ?? {};
        assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
        assert.deepEqual(sc.capabilities?.drop, ["ALL"], `${where}: drop ALL`);
        assert.ok(c.resources?.requests?.cpu && c.resources?.limits?.memory, `${where}: requests and limits`);
        assert.ok(c.livenessProbe?.httpGet && c.readinessProbe?.httpGet, `${where}: probes`);
        for (const m of c.volumeMounts ?? []) mounts.add(m.mountPath);
      }
      if (o.metadata.labels?.["app.kubernetes.io/name"] !== "dataflowsync") continue;
      const c = pod.containers[0];
      assert.equal(c.livenessProbe.httpGet.path, "/healthz", `${where}: liveness on /healthz`);
      assert.equal(c.readinessProbe.httpGet.path, "/readyz", `${where}: readiness on /readyz`);
      assert.equal(c.args[0], o.metadata.labels["app.kubernetes.io/component"], `${where}: command`);
      assert.deepEqual(c.args.slice(1), ["-c", "/etc/dfs/dfs.yaml"], `${where}: config file`);
      assert.ok(mounts.has("/tmp"), `${where}: a writable /tmp`);
      const ann = o.spec.template.metadata.annotations ?? {};
      assert.equal(ann["prometheus.io/scrape"], "true", `${where}: scrape annotation`);
      assert.equal(
        ann["prometheus.io/port"],
        String(c.readinessProbe.httpGet.port === "http" ? c.ports[0].containerPort : 0),
      );
      // Secrets only from files: no secret value in an environment variable.
      for (const e of c.env ?? []) assert.ok(!e.valueFrom?.secretKeyRef, `${where}: ${e.name} from a secret`);
      assert.ok(
        (c.env ?? []).some((e: Obj) => e.name === "DFS_CONTROL_TOKEN_FILE"),
        `${where}: token file`,
      );
    }
  }
});

test("capture: a StatefulSet of one with a volume for the journal; a DPU StatefulSet per group", () => {
  for (const b of builds) {
    const objs = build(b);
    const capture = objs.find((o) => o.kind === "StatefulSet" && o.metadata.name === "capture");
    assert.equal(capture.spec.replicas, 1, `${b}: capture replicas`);
    assert.equal(capture.spec.volumeClaimTemplates[0].metadata.name, "journal");
    const mount = capture.spec.template.spec.containers[0].volumeMounts.find(
      (m: Obj) => m.name === "journal",
    );
    const cfg = dfsConfig(objs);
    assert.ok(cfg.capture.journal.path.startsWith(`${mount.mountPath}/`), `${b}: journal on its volume`);
    const dpus = objs.filter(
      (o) => o.kind === "StatefulSet" && o.metadata.labels["app.kubernetes.io/component"] === "dpu",
    );
    const groups = dpus.map(
      (d) => d.spec.template.spec.containers[0].env.find((e: Obj) => e.name === "DFS_DPU_GROUP").value,
    );
    assert.deepEqual(groups.sort(), cfg.relmgr.groups.map((g) => g.name).sort(), `${b}: a DPU per group`);
    const nats = objs.find((o) => o.kind === "StatefulSet" && o.metadata.name === "nats");
    assert.equal(nats.spec.replicas, 3, `${b}: NATS nodes`);
  }
});

function dfsConfig(objs: Obj[]) {
  const cm = objs.find((o) => o.kind === "ConfigMap" && String(o.metadata.name).startsWith("dfs-config"));
  return parseConfig(parse(cm.data["dfs.yaml"]), {}, "dfs.yaml");
}

test("prod: stream replicas 3 and more DPU replicas than dev; every overlay's dfs.yaml loads", () => {
  const replicas = (b: string) =>
    build(b)
      .filter((o) => o.kind === "StatefulSet" && o.metadata.name.startsWith("dpu-"))
      .reduce((n, o) => n + o.spec.replicas, 0);
  const prod = dfsConfig(build("overlays/prod"));
  assert.equal(prod.nats.stream.replicas, 3);
  assert.equal(dfsConfig(build("overlays/dev")).nats.stream.replicas, 1);
  assert.ok(replicas("overlays/prod") > replicas("overlays/dev"));
  for (const b of builds) {
    const cfg = dfsConfig(build(b));
    assert.equal(cfg.control.host, "0.0.0.0", `${b}: control planes reachable in the pod network`);
    assert.equal(cfg.monitor.http.host, "0.0.0.0", `${b}: monitor reachable`);
  }
});

test("NATS has a PodDisruptionBudget; every namespace object is in the dataflowsync namespace", () => {
  const objs = build("overlays/prod");
  assert.ok(
    objs.some(
      (o) =>
        o.kind === "PodDisruptionBudget" && o.spec.selector.matchLabels["app.kubernetes.io/name"] === "nats",
    ),
  );
  assert.ok(objs.some((o) => o.kind === "NetworkPolicy" && o.metadata.name === "default-deny-ingress"));
  for (const o of objs)
    if (o.kind !== "Namespace") assert.equal(o.metadata.namespace, "dataflowsync", o.metadata.name);
});
