// deploy/prometheus/alerts.yml: promtool (Debian's prometheus package) checks the rules and runs
// their unit tests in deploy/prometheus/tests/; every rule has a test in which it fires, and a
// section of docs/deploy.md that its runbook link names.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { repoRoot, requireTool, run } from "../support/repo.js";

const root = repoRoot();
const dir = join(root, "deploy", "prometheus");
const testFiles = readdirSync(join(dir, "tests"))
  .filter((f) => f.endsWith(".yml"))
  .sort()
  .map((f) => join("tests", f));

interface Rule {
  alert?: string;
  annotations?: Record<string, string>;
}

function alerts(): Rule[] {
  const doc = parse(readFileSync(join(dir, "alerts.yml"), "utf8")) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules).filter((r) => r.alert);
}

const promtool = () => requireTool("promtool", "apt-get install -y prometheus");

test("promtool check rules accepts alerts.yml", () => {
  const r = run(promtool(), ["check", "rules", "alerts.yml"], dir);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, new RegExp(`SUCCESS: ${alerts().length} rules found`));
});

test("promtool test rules: every test in deploy/prometheus/tests passes", () => {
  assert.ok(testFiles.length >= 3, `only ${testFiles.length} test files`);
  const r = run(promtool(), ["test", "rules", ...testFiles], dir);
  assert.equal(r.status, 0, r.output);
});

test("every rule has a promtool test in which it fires", () => {
  const fired = new Set<string>();
  for (const f of testFiles) {
    const doc = parse(readFileSync(join(dir, f), "utf8")) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    };
    for (const t of doc.tests)
      for (const a of t.alert_rule_test ?? []) if ((a.exp_alerts ?? []).length > 0) fired.add(a.alertname);
  }
  const untested = alerts()
    .map((r) => r.alert!)
    .filter((a) => !fired.has(a));
  assert.deepEqual(untested, [], "rules without a test that makes them fire");
});

test("every rule's runbook names a section of docs/deploy.md about it", () => {
  const doc = readFileSync(join(root, "docs", "deploy.md"), "utf8");
  const anchors = new Set(
    [...doc.matchAll(/^#+\s+(.+)$/gm)].map((m) =>
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 _-]/g, "")
        .replace(/ /g, "-"),
    ),
  );
  for (const r of alerts()) {
    const link = r.annotations?.runbook ?? "";
    assert.equal(link, `docs/deploy.md#${r.alert!.toLowerCase()}`, `${r.alert}: runbook`);
    assert.ok(anchors.has(r.alert!.toLowerCase()), `docs/deploy.md has no section "${r.alert}"`);
    assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
  }
});

test("a broken rule is caught: promtool fails a test whose expectation does not hold", () => {
  // The harness itself can fail: a test expecting DfsStreamMessagesLost without any lost message.
  const bad = join(dir, "tests", "pipeline.yml");
  const text = readFileSync(bad, "utf8").replace(
    /(dfs_dpu_lost_messages\{[^}]*\}["']\n\s+values: )"0 0 12 12"/,
    '$1"0 0 0 0"',
  );
  assert.notEqual(text, readFileSync(bad, "utf8"), "the fixture to break was not found");
  const tmp = mkdtempSync(join(tmpdir(), "dfs-rules-"));
  try {
    const file = join(tmp, "broken.yml");
    writeFileSync(
      file,
      text.replace("rule_files: [../alerts.yml]", `rule_files: [${join(dir, "alerts.yml")}]`),
    );
    const r = run(promtool(), ["test", "rules", file], dir);
    assert.notEqual(r.status, 0, r.output);
    assert.match(r.output, /DfsStreamMessagesLost/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
