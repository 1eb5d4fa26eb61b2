import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root: the folder above this file that holds deploy/ and packages/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "deploy", "prometheus")) && existsSync(join(dir, "packages"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("no folder with deploy/prometheus and packages/ above this test");
    dir = parent;
  }
}

/**
 * Path of a program the test needs, or a failure that says how to get it: a missing tool fails
 * the test (never skips it), so a machine without it cannot pass by running less.
 */
export function requireTool(name: string, install: string): string {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"])) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  throw new Error(`${name} is not installed: ${install} (.ci/run installs it)`);
}

/** Runs a program to its end; stdout and stderr together, and the exit status. */
export function run(cmd: string, args: string[], cwd?: string): { status: number; output: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
