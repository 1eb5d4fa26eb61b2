// The command line answers bad usage with a clear message and exit code 2, never a stack trace.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const DFS = fileURLToPath(new URL("../../bin/dfs.js", import.meta.url));

async function dfs(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [DFS, ...args]);
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

test("dfs bench --help prints the benchmarks and their options", async () => {
  const r = await dfs("bench", "e2e", "--help");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /--workload bulk\|oltp/);
  assert.match(r.out, /snapshot/);
});

test("an unknown option is exit code 2 with a message naming it, not a stack trace", async () => {
  const r = await dfs("bench", "e2e", "--bogus");
  assert.equal(r.code, 2);
  assert.match(r.err, /dfs bench: .*--bogus/);
  assert.doesNotMatch(r.err, /\n\s+at /, "no stack trace");
});

test("an unknown command is exit code 2 and prints the usage", async () => {
  const r = await dfs("frobnicate");
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command "frobnicate"/);
  assert.match(r.err, /Usage: dfs <command>/);
});
