// What Prometheus does to a scrape config's targets, for checking deploy/prometheus without a
// running server: the labels a target ends up with (job, instance, static labels, relabelling),
// and the label matchers of the `up{...}` selectors of the alert rules. Only the parts the configs
// of this repository use are implemented; anything else fails with a message saying so.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { repoRoot } from "./repo.js";

export type Labels = Record<string, string>;

export interface RelabelConfig {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: string;
}

export interface ScrapeJob {
  job_name: string;
  honor_labels?: boolean;
  scheme?: string;
  metrics_path?: string;
  static_configs?: { targets: string[]; labels?: Labels }[];
  relabel_configs?: RelabelConfig[];
  [key: string]: unknown;
}

export interface PrometheusConfig {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs: ScrapeJob[];
}

export interface AlertRule {
  alert: string;
  expr: string;
}

export const promDir = join(repoRoot(), "deploy", "prometheus");

export function readPromConfig(file = "prometheus.yml"): PrometheusConfig {
  return parse(readFileSync(join(promDir, file), "utf8")) as PrometheusConfig;
}

export function readAlertRules(): AlertRule[] {
  const doc = parse(readFileSync(join(promDir, "alerts.yml"), "utf8")) as {
    groups: { rules: Partial<AlertRule>[] }[];
  };
  return doc.groups.flatMap((g) => g.rules).filter((r): r is AlertRule => Boolean(r.alert && r.expr));
}

/** A Prometheus (RE2) regex: anchored at both ends. */
function anchored(regex: string): RegExp {
  return new RegExp(`^(?:${regex})$`);
}

/** `${1}` and `$1` both name a group in Prometheus; JavaScript's replace knows only `$1`. */
function jsReplacement(replacement: string): string {
  return replacement.replace(/\$\{(\w+)\}/g, (_, g: string) => (/^\d+$/.test(g) ? `$${g}` : `$<${g}>`));
}

/** Applies relabel_configs as Prometheus does; null when the target is dropped. */
export function relabel(input: Labels, configs: RelabelConfig[]): Labels | null {
  const labels = { ...input };
  for (const c of configs) {
    const action = c.action ?? "replace";
    const re = anchored(c.regex ?? "(.*)");
    const value = (c.source_labels ?? []).map((n) => labels[n] ?? "").join(c.separator ?? ";");
    switch (action) {
      case "replace": {
        if (!re.test(value)) break;
        if (!c.target_label) throw new Error("relabel: replace without target_label");
        const out = value.replace(re, jsReplacement(c.replacement ?? "$1"));
        if (out === "") delete labels[c.target_label];
        else labels[c.target_label] = out;
        break;
      }
      case "keep":
        if (!re.test(value)) return null;
        break;
      case "drop":
        if (re.test(value)) return null;
        break;
      case "labelmap":
        for (const [name, v] of Object.entries({ ...labels }))
          if (re.test(name)) labels[name.replace(re, jsReplacement(c.replacement ?? "$1"))] = v;
        break;
      case "labeldrop":
        for (const name of Object.keys(labels)) if (re.test(name)) delete labels[name];
        break;
      case "labelkeep":
        for (const name of Object.keys(labels)) if (!re.test(name)) delete labels[name];
        break;
      default:
        throw new Error(
          `relabel action "${action}" is not implemented by this check: add it to test/support/prometheus.ts`,
        );
    }
  }
  return labels;
}

/**
 * The labels a target of `job` has on `up` and on its samples before they are merged: job,
 * instance, the static or discovered labels, after relabel_configs (labels starting with __ are
 * gone). null when relabelling drops the target.
 */
export function targetLabels(job: ScrapeJob, discovered: Labels): Labels | null {
  const start: Labels = {
    job: job.job_name,
    __scheme__: job.scheme ?? "http",
    __metrics_path__: job.metrics_path ?? "/metrics",
    ...discovered,
  };
  const out = relabel(start, job.relabel_configs ?? []);
  if (!out) return null;
  if (!out.instance && out.__address__) out.instance = out.__address__;
  for (const name of Object.keys(out)) if (name.startsWith("__")) delete out[name];
  return out;
}

const DISCOVERY = /_sd_configs$/;

/** Every target of a config whose jobs list their targets in static_configs. */
export function staticTargets(
  config: PrometheusConfig,
): { job: ScrapeJob; address: string; labels: Labels }[] {
  const out: { job: ScrapeJob; address: string; labels: Labels }[] = [];
  for (const job of config.scrape_configs) {
    const sd = Object.keys(job).filter((k) => DISCOVERY.test(k));
    if (sd.length > 0)
      throw new Error(`job ${job.job_name}: ${sd.join(", ")} cannot be checked offline; use static_configs`);
    for (const sc of job.static_configs ?? [])
      for (const address of sc.targets) {
        const labels = targetLabels(job, { ...(sc.labels ?? {}), __address__: address });
        if (labels) out.push({ job, address, labels });
      }
  }
  return out;
}

export interface Matcher {
  name: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
}

/**
 * The label matchers of every `up` selector in a PromQL expression (a bare `up` has none). A
 * name that only ends in `up` (dfs_x_up) or a string "up" is not one.
 */
export function upSelectors(expr: string): Matcher[][] {
  const out: Matcher[][] = [];
  for (const m of expr.matchAll(/(?<![\w:"'`])up(?![\w:])\s*(\{([^}]*)\})?/g)) {
    const body = m[2] ?? "";
    const matchers: Matcher[] = [];
    let rest = body.trim();
    while (rest) {
      const mm = /^([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,\s*)?/.exec(rest);
      if (!mm) throw new Error(`cannot read the matchers of up{${body}} in: ${expr}`);
      matchers.push({ name: mm[1]!, op: mm[2] as Matcher["op"], value: JSON.parse(`"${mm[3]}"`) as string });
      rest = rest.slice(mm[0].length);
    }
    out.push(matchers);
  }
  return out;
}

/** Whether a label set satisfies every matcher (a missing label is the empty string, as in PromQL). */
export function matchesAll(labels: Labels, matchers: Matcher[]): boolean {
  return matchers.every((m) => {
    const v = labels[m.name] ?? "";
    switch (m.op) {
      case "=":
        return v === m.value;
      case "!=":
        return v !== m.value;
      case "=~":
        return anchored(m.value).test(v);
      case "!~":
        return !anchored(m.value).test(v);
    }
    return false;
  });
}

/**
 * The alert rules with an `up` selector that no target satisfies: such a rule can never fire for
 * a target that is down. One line per selector, naming the rule.
 */
export function unsatisfiedUpRules(rules: AlertRule[], targets: Labels[]): string[] {
  const problems: string[] = [];
  for (const r of rules)
    for (const sel of upSelectors(r.expr))
      if (!targets.some((t) => matchesAll(t, sel)))
        problems.push(`${r.alert}: up{${sel.map((m) => `${m.name}${m.op}"${m.value}"`).join(", ")}}`);
  return problems;
}
