#!/usr/bin/env node
// Summarises a V8 .cpuprofile (node --cpu-prof): where the time went, by function (self time)
// and by file, and how much was idle, GC or program. Usage: node scripts/cpuprofile-top.mjs FILE [N]
import { readFileSync } from "node:fs";

const [file, top = "25"] = process.argv.slice(2);
// biome-ignore lint/suspicious/noUndeclaredEnvVars: a developer tool, never run by turbo
const depth = Number(process.env.DEPTH ?? 6);
if (!file) {
  console.error("usage: cpuprofile-top.mjs FILE.cpuprofile [N]");
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas;
// FROM and UNTIL (seconds since the profile started) limit the summary to a window, such as a
// benchmark's catch-up phase.
// biome-ignore lint/suspicious/noUndeclaredEnvVars: a developer tool, never run by turbo
const from = Number(process.env.FROM ?? 0) * 1e6;
// biome-ignore lint/suspicious/noUndeclaredEnvVars: a developer tool, never run by turbo
const until = Number(process.env.UNTIL ?? Number.POSITIVE_INFINITY) * 1e6;
let at = 0;
for (let i = 0; i < p.samples.length; i++) {
  at += dt[i] ?? 0;
  if (at < from || at > until) continue;
  self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (dt[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const fn = new Map();
const files = new Map();
for (const [id, us] of self) {
  const n = byId.get(id);
  const cf = n.callFrame;
  const url = (cf.url || "")
    .replace(/^file:\/\//, "")
    .replace(/.*node_modules\//, "nm/")
    .replace(/.*\/(packages|services)\//, "$1/");
  const key = `${cf.functionName || "(anonymous)"} ${url}:${cf.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const fkey = cf.url ? url : cf.functionName;
  files.set(fkey, (files.get(fkey) ?? 0) + us);
}
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
console.log("-- by function (self time)");
for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, Number(top)))
  console.log(`${pct(us)}  ${k}`);
console.log("-- by file");
for (const [k, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(us)}  ${k}`);

// With a third argument, the call paths (3 callers up) that spent the most self time in functions
// whose name matches it.
const match = process.argv[4];
if (match) {
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const paths = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!(n.callFrame.functionName || "").includes(match)) continue;
    const names = [];
    let cur = parent.get(id);
    for (let k = 0; k < depth && cur !== undefined; k++) {
      const cf = byId.get(cur).callFrame;
      names.push(
        `${cf.functionName || "(anon)"}@${(cf.url || "").split("/").slice(-1)[0]}:${cf.lineNumber + 1}`,
      );
      cur = parent.get(cur);
    }
    const key = names.join(" < ");
    paths.set(key, (paths.get(key) ?? 0) + us);
  }
  console.log(`-- callers of ${match}`);
  for (const [k, us] of [...paths].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`${pct(us)}  ${k}`);
}
