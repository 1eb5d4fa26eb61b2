#!/usr/bin/env node
// Runs compiled tests with node's built-in runner, one lane at a time, files in a stable order.
//
//   node scripts/run-tests.mjs unit                 the unit lane of the current workspace
//   node scripts/run-tests.mjs --all unit integration  both lanes of every workspace, unit first
//
// Tests are compiled from <workspace>/test/<lane>/**/*.test.ts to dist-test/<lane>/ (never into
// dist/, which is what ships). Files run one at a time: integration tests share the stack's servers.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const all = args.includes("--all");
const lanes = args.filter((a) => !a.startsWith("--"));
if (lanes.length === 0) {
  console.error("usage: run-tests.mjs [--all] <lane...>   (lanes: unit, integration)");
  process.exit(2);
}

function workspaces() {
  const out = [];
  for (const group of ["proto", "packages", "services"]) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    if (existsSync(join(dir, "package.json"))) out.push(dir);
    else for (const name of readdirSync(dir).sort()) out.push(join(dir, name));
  }
  return out;
}

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const dirs = all ? workspaces() : [process.cwd()];
const files = lanes.flatMap((lane) => dirs.flatMap((d) => testFiles(join(d, "dist-test", lane))));
if (files.length === 0) {
  console.log(`no ${lanes.join("/")} tests here`);
  process.exit(0);
}
console.log(`running ${files.length} test files (${lanes.join(", ")})`);
const r = spawnSync(
  process.execPath,
  [
    "--test",
    "--test-concurrency=1",
    "--test-timeout=900000",
    ...files.map((f) => relative(process.cwd(), f)),
  ],
  { stdio: "inherit" },
);
process.exit(r.status ?? 1);
