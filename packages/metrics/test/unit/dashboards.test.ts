import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  captureMetrics,
  dpuMetrics,
  monitorMetrics,
  serviceMetrics,
  snapshotMetrics,
  verifyMetrics,
} from "../../dist/catalog.js";
import { createRegistry, type Registry } from "../../dist/registry.js";

/**
 * The Grafana dashboards under deploy/grafana query only metrics the catalog defines, and show
 * every metric of the pipeline (service, capture, dpu, snapshot) somewhere.
 */

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, not a JS template
const DS_UID = "${DS_PROMETHEUS}";
/** Minimum number of (non-row) panels per dashboard file; others need at least one. */
const MIN_PANELS: Record<string, number> = {
  "dfs-pipeline-overview.json": 6,
  "dfs-table-detail.json": 4,
};

// biome-ignore lint/suspicious/noExplicitAny: dashboard JSON is walked untyped
type Json = any;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "deploy")) && statSync(join(dir, "deploy")).isDirectory()) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("no folder with deploy/ above this test");
    dir = parent;
  }
}

function jsonFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...jsonFiles(path));
    else if (entry.name.endsWith(".json")) files.push(path);
  }
  return files.sort();
}

/** Series names a registry exposes: histograms as _bucket, _sum and _count. */
async function exposedNames(registry: Registry): Promise<Map<string, string>> {
  const names = new Map<string, string>(); // series name -> metric family
  for (const m of await registry.getMetricsAsJSON()) {
    const type = String(m.type);
    if (type === "histogram") {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.set(`${m.name}${suffix}`, m.name);
    } else if (type === "summary") {
      for (const suffix of ["", "_sum", "_count"]) names.set(`${m.name}${suffix}`, m.name);
    } else {
      names.set(m.name, m.name);
    }
  }
  return names;
}

/** Every series name any service exposes, and the families the dashboards must show. */
async function catalog(): Promise<{ exposed: Map<string, string>; required: Set<string> }> {
  const exposed = new Map<string, string>();
  const add = (names: Map<string, string>) => {
    for (const [k, v] of names) exposed.set(k, v);
  };
  const capture = createRegistry("capture", "s");
  serviceMetrics(capture);
  captureMetrics(capture);
  snapshotMetrics(capture);
  const dpu = createRegistry("dpu", "s");
  serviceMetrics(dpu);
  dpuMetrics(dpu);
  verifyMetrics(dpu);
  const monitor = createRegistry("monitor", "s");
  serviceMetrics(monitor);
  monitorMetrics(monitor);
  for (const r of [capture, dpu, monitor]) add(await exposedNames(r));

  // Without process metrics: the families the pipeline dashboards must all show.
  const pipeline = createRegistry("any", "s", false);
  serviceMetrics(pipeline);
  captureMetrics(pipeline);
  dpuMetrics(pipeline);
  snapshotMetrics(pipeline);
  verifyMetrics(pipeline);
  const required = new Set((await pipeline.getMetricsAsJSON()).map((m) => m.name));
  return { exposed, required };
}

interface Query {
  where: string;
  expr: string;
}

/** Panels at every depth (rows keep their panels in `panels` when collapsed). */
function allPanels(panels: Json[] | undefined): Json[] {
  const out: Json[] = [];
  for (const p of panels ?? []) {
    out.push(p);
    if (Array.isArray(p.panels)) out.push(...allPanels(p.panels));
  }
  return out;
}

/** Every PromQL expression of a dashboard: panel targets and query variables. */
function queries(dash: Json): Query[] {
  const out: Query[] = [];
  for (const p of allPanels(dash.panels)) {
    for (const t of p.targets ?? []) {
      if (typeof t.expr === "string") out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
    }
  }
  for (const v of dash.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    if (typeof q === "string") out.push({ where: `variable ${v.name}`, expr: q });
  }
  return out;
}

function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bdfs_[a-zA-Z0-9_]+/g)].map((m) => m[0]);
}

function loadDashboards(): { file: string; dash: Json }[] {
  const root = repoRoot();
  const files = jsonFiles(join(root, "deploy", "grafana"));
  return files.map((path) => {
    const file = relative(join(root, "deploy", "grafana"), path);
    let dash: Json;
    try {
      dash = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      assert.fail(`${file} is not valid JSON: ${(e as Error).message}`);
    }
    return { file, dash };
  });
}

test("the dashboards exist and are valid JSON", () => {
  const files = loadDashboards().map((d) => d.file);
  for (const f of Object.keys(MIN_PANELS)) assert.ok(files.includes(f), `deploy/grafana/${f} is missing`);
});

test("every metric a dashboard queries is in the catalog", async () => {
  const { exposed } = await catalog();
  const unknown: string[] = [];
  let checked = 0;
  for (const { file, dash } of loadDashboards()) {
    for (const q of queries(dash)) {
      const names = metricNames(q.expr);
      assert.ok(names.length > 0, `${file} ${q.where}: no dfs_ metric in ${q.expr}`);
      for (const name of names) {
        checked++;
        if (!exposed.has(name)) unknown.push(`${file} ${q.where}: ${name}`);
      }
    }
  }
  assert.ok(checked > 0, "no metric references found");
  assert.deepEqual(unknown, [], `unknown metrics:\n  ${unknown.join("\n  ")}`);
});

test("every service, capture, dpu and snapshot metric is on a dashboard", async () => {
  const { exposed, required } = await catalog();
  const used = new Set<string>();
  for (const { dash } of loadDashboards()) {
    for (const q of queries(dash)) {
      for (const name of metricNames(q.expr)) {
        const family = exposed.get(name);
        if (family) used.add(family);
      }
    }
  }
  const unused = [...required].filter((m) => !used.has(m)).sort();
  assert.deepEqual(unused, [], `metrics no dashboard shows:\n  ${unused.join("\n  ")}`);
});

test("each dashboard has a uid, a title, panels, a datasource variable and a source variable", () => {
  for (const { file, dash } of loadDashboards()) {
    assert.equal(typeof dash.uid, "string", `${file}: uid`);
    assert.ok(dash.uid.length > 0 && dash.uid.length <= 40, `${file}: uid length`);
    assert.equal(typeof dash.title, "string", `${file}: title`);
    assert.ok(dash.title.length > 0, `${file}: title`);
    assert.ok(typeof dash.schemaVersion === "number" && dash.schemaVersion >= 39, `${file}: schemaVersion`);

    const vars: Json[] = dash.templating?.list ?? [];
    const ds = vars.find((v) => v.name === "DS_PROMETHEUS");
    assert.ok(ds, `${file}: DS_PROMETHEUS variable`);
    assert.equal(ds.type, "datasource", `${file}: DS_PROMETHEUS type`);
    assert.equal(ds.query, "prometheus", `${file}: DS_PROMETHEUS query`);
    const source = vars.find((v) => v.name === "source");
    assert.ok(source, `${file}: source variable`);
    assert.match(
      queries({ templating: { list: [source] } })[0]?.expr ?? "",
      /label_values\(dfs_service_state,\s*source\)/,
    );
    for (const v of vars) {
      if (v.type === "query")
        assert.equal(v.datasource?.uid, DS_UID, `${file}: variable ${v.name} datasource`);
    }

    const panels = allPanels(dash.panels);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${file}: panel ids are unique`);
    const visual = panels.filter((p) => p.type !== "row");
    const min = MIN_PANELS[file] ?? 1;
    assert.ok(visual.length >= min, `${file}: ${visual.length} panels, want at least ${min}`);
    for (const p of panels) {
      const where = `${file} panel "${p.title}"`;
      assert.equal(typeof p.title, "string", `${where}: title`);
      assert.ok(
        p.gridPos && typeof p.gridPos.w === "number" && typeof p.gridPos.h === "number",
        `${where}: gridPos`,
      );
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${where}: wider than the grid`);
      if (p.type === "row") continue;
      assert.equal(p.datasource?.uid, DS_UID, `${where}: datasource must be the DS_PROMETHEUS variable`);
      assert.ok(Array.isArray(p.targets) && p.targets.length > 0, `${where}: targets`);
      for (const t of p.targets) {
        assert.equal(t.datasource?.uid ?? DS_UID, DS_UID, `${where} ${t.refId}: target datasource`);
        assert.equal(typeof t.expr, "string", `${where} ${t.refId}: expr`);
      }
    }
  }
});

test("the table dashboard has db and table variables and filters on them", () => {
  const table = loadDashboards().find((d) => d.file === "dfs-table-detail.json");
  assert.ok(table);
  const names = (table.dash.templating?.list ?? []).map((v: Json) => v.name);
  for (const n of ["source", "db", "table"]) assert.ok(names.includes(n), `variable ${n}`);
  const filtered = queries(table.dash).filter(
    (q) => q.expr.includes('db="$db"') && q.expr.includes('table="$table"'),
  );
  assert.ok(filtered.length >= 4, `only ${filtered.length} queries filter on $db and $table`);
});

test("the metric-name check catches an unknown name", async () => {
  const { exposed } = await catalog();
  const names = metricNames('sum(rate(dfs_capture_changes_totl{source=~"$source"}[5m]))');
  assert.deepEqual(names, ["dfs_capture_changes_totl"]);
  assert.equal(exposed.has("dfs_capture_changes_totl"), false);
  assert.equal(
    exposed.has("dfs_dpu_apply_seconds"),
    false,
    "a histogram is queried by its _bucket/_sum/_count",
  );
  assert.equal(exposed.has("dfs_dpu_apply_seconds_bucket"), true);
  assert.equal(exposed.has("dfs_process_resident_memory_bytes"), true);
});

test("dashboards with DPU panels have a group variable, and every DPU query filters on it", () => {
  let withDpu = 0;
  for (const { file, dash } of loadDashboards()) {
    const dpuQueries = queries(dash).filter(
      (q) => q.where.startsWith("panel") && metricNames(q.expr).some((n) => n.startsWith("dfs_dpu_")),
    );
    if (dpuQueries.length === 0) continue;
    withDpu++;
    const group = (dash.templating?.list ?? []).find((v: Json) => v.name === "group");
    assert.ok(group, `${file}: DPU panels but no group variable`);
    assert.equal(group.type, "query", `${file}: group variable type`);
    assert.match(
      queries({ templating: { list: [group] } })[0]?.expr ?? "",
      /label_values\(dfs_dpu_[a-z_]+\{source=~"\$source"\},\s*group\)/,
      `${file}: group comes from a DPU metric's group label`,
    );
    for (const q of dpuQueries) {
      const selectors = [...q.expr.matchAll(/\bdfs_dpu_[a-zA-Z0-9_]+(\{[^}]*\})?/g)];
      for (const s of selectors)
        assert.ok(s[1]?.includes('group=~"$group"'), `${file} ${q.where}: ${s[0]} does not filter on $group`);
    }
  }
  assert.ok(withDpu >= 1, "no dashboard shows DPU metrics");
});
