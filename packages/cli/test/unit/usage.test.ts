// The command line follows conventions: --help with examples on every command, --version, and bad
// usage answered with one line naming what is wrong, a hint, and exit code 64, never a stack trace.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Command } from "commander";
import { buildProgram } from "../../dist/program.js";

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

/** Every command path of the program ("stack up", "bench e2e", ...), the root as []. */
function paths(cmd: Command, prefix: string[] = []): string[][] {
  return [
    prefix,
    ...cmd.commands.filter((c) => c.name() !== "help").flatMap((c) => paths(c, [...prefix, c.name()])),
  ];
}

const ALL = paths(buildProgram("0.0.0", () => {}));

test("the command tree holds every command the docs and scripts use", () => {
  const names = new Set(ALL.map((p) => p.join(" ")));
  for (const want of [
    "doctor",
    "run",
    "capture",
    "dpu",
    "relmgr",
    "monitor",
    "dlq list",
    "dlq replay",
    "stack up",
    "stack down",
    "stack status",
    "ctl",
    "snapshot",
    "bench capture",
    "bench e2e",
    "bench snapshot",
    "bench verify",
    "bench archive",
    "demo",
    "verify",
    "archive",
    "archive stats",
    "archive query",
    "archive replay",
    "archive flashback",
  ])
    assert.ok(names.has(want), `dfs ${want} exists`);
});

test("--help on the root and on every command exits 0 and shows a description and Examples", async () => {
  assert.ok(ALL.length >= 20, `${ALL.length} commands`);
  for (const path of ALL) {
    const r = await dfs(...path, "--help");
    const name = ["dfs", ...path].join(" ");
    assert.equal(r.code, 0, `${name} --help: ${r.err}`);
    assert.match(r.out, new RegExp(`^Usage: ${name}\\b`), `${name} --help starts with its usage`);
    assert.match(r.out, /\nExamples:\n {2}\$ dfs /, `${name} --help has examples`);
    assert.equal(r.err, "", `${name} --help writes nothing to stderr`);
  }
});

test("dfs --help lists the exit codes; dfs help <command> is the command's help", async () => {
  const root = await dfs("--help");
  for (const code of ["64", "65", "69", "70", "78"])
    assert.match(root.out, new RegExp(`\\n {2}${code} {2}\\w`));
  const help = await dfs("help", "doctor");
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: dfs doctor/);
});

test("--version prints the version of package.json", async () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  for (const flag of ["--version", "-V"]) {
    const r = await dfs(flag);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), pkg.version);
  }
});

test("an unknown option is exit code 64: one line naming it, a hint, no stack trace", async () => {
  const r = await dfs("bench", "e2e", "--bogus");
  assert.equal(r.code, 64);
  const lines = r.err.trim().split("\n");
  assert.equal(lines.length, 2, r.err);
  assert.equal(lines[0], "dfs bench e2e: unknown option '--bogus'");
  assert.equal(lines[1], "(dfs bench e2e --help shows the usage and examples)");
  assert.equal(r.out, "");
});

test("a mistyped option gets a suggestion; an unknown command is 64 too", async () => {
  const typo = await dfs("doctor", "--confg", "x.yaml");
  assert.equal(typo.code, 64);
  assert.match(typo.err, /^dfs doctor: unknown option '--confg'\s*\(Did you mean --config\?\)/);
  const cmd = await dfs("frobnicate");
  assert.equal(cmd.code, 64);
  assert.match(cmd.err, /^dfs: unknown command 'frobnicate'\n\(dfs --help shows/);
});

test("bad values and missing arguments are 64, each naming what is wrong", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["bench", "capture", "--rows", "5"],
      /--rows <n>' argument '5' is invalid\. must be a whole number >= 1000/,
    ],
    [["bench", "e2e", "--workload", "heavy"], /argument 'heavy' is invalid\. Allowed choices are bulk, oltp/],
    [
      ["bench", "e2e", "--workload", "oltp", "--latency-share", "1.5"],
      /--latency-share <fraction>' argument '1\.5' is invalid\. must be a number above 0 and at most 1/,
    ],
    [["dlq", "replay", "--seq", "x"], /--seq <n>' argument 'x' is invalid/],
    [["ctl", "nosuch", "status"], /value 'nosuch' is invalid for argument 'service'/],
    [["ctl", "capture"], /missing required argument 'call'/],
    [["ctl", "capture", "snapshot", "notatable", "--address", "127.0.0.1:1"], /name it as db\.table/],
    [["ctl", "capture", "set-position", "--address", "127.0.0.1:1"], /set-position takes one position/],
    [["demo", "--seconds", "-1"], /--seconds <n>' argument '-1' is invalid/],
    [
      ["verify", "--chunk-rows", "5"],
      /--chunk-rows <n>' argument '5' is invalid\. must be a whole number >= 100/,
    ],
    [["verify", "--table", "notatable"], /name it as db\.table/],
    [["archive", "flashback", "--dir", "/nonexistent"], /give the range to undo/],
    [["archive", "replay", "--dir", "/nonexistent"], /-c FILE is required/],
    [["archive", "query", "--dir", "/nonexistent", "--since", "yesterday"], /--since: not a time/],
    [["archive", "stats"], /where is the archive\?/],
  ];
  for (const [args, message] of cases) {
    const r = await dfs(...args);
    assert.equal(r.code, 64, `dfs ${args.join(" ")}: ${r.err}`);
    assert.match(r.err, message, `dfs ${args.join(" ")}`);
    assert.doesNotMatch(r.err, /\n\s+at /, "no stack trace");
  }
});

test("a command without its subcommand shows its help on stderr with 64", async () => {
  const r = await dfs("stack");
  assert.equal(r.code, 64);
  assert.match(r.err, /Usage: dfs stack \[options\] \[command\]/);
});

test("a missing config file is 78 with the code and the path", async () => {
  const r = await dfs("doctor", "-c", "/nonexistent/dfs.yaml");
  assert.equal(r.code, 78);
  assert.match(
    r.err,
    /^dfs doctor: DFS_CONFIG_UNREADABLE: \/nonexistent\/dfs\.yaml: cannot read the config file/,
  );
});
