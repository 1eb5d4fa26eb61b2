// A service run as a child process by a test-fixtures runner, for the kill -9 tests. The runner
// prints "READY" once the service runs and "STATUS <json>" lines with its status; everything else
// on stdout is kept as output.
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@dfs/common";

export interface ServiceChild<S> {
  child: ChildProcess;
  /** Resolves with the exit code (or the signal name) when the process has exited. */
  exited: Promise<number | string>;
  /** Last STATUS line, if any. */
  status(): S | null;
  /** The first STATUS line (for a DPU, its appliedSeq is the checkpoint it started from). */
  firstStatus(): S | null;
  ready(): boolean;
  stdout(): string;
  stderr(): string;
}

/** Starts `node <runner> <configPath>` and follows its READY and STATUS lines. */
export function spawnServiceChild<S>(runner: string, configPath: string): ServiceChild<S> {
  const child = spawn(process.execPath, [runner, configPath], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let partial = "";
  let first: S | null = null;
  let last: S | null = null;
  let isReady = false;
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (line === "READY") isReady = true;
      else if (line.startsWith("STATUS ")) {
        last = JSON.parse(line.slice(7)) as S;
        first ??= last;
      } else out += `${line}\n`;
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    err = (err + chunk).slice(-20_000);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1));
  });
  return {
    child,
    exited,
    status: () => last,
    firstStatus: () => first,
    ready: () => isReady,
    stdout: () => out,
    stderr: () => err,
  };
}

/** Waits for the child's READY line; fails early, with its stderr, if it exits first. */
export async function waitChildReady(
  c: ServiceChild<unknown>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  let code: number | string | undefined;
  void c.exited.then((x) => {
    code = x;
  });
  await waitFor(() => code !== undefined || c.ready(), {
    timeoutMs,
    intervalMs: 20,
    what: `the ${what} child to be ready`,
  }).catch((e: Error) => {
    throw new Error(`${e.message}\nstderr: ${c.stderr()}`);
  });
  if (code !== undefined) throw new Error(`${what} exited (${code}) before it was ready: ${c.stderr()}`);
}

/** Kills a child (if it still runs) and waits for it to exit; never throws. */
export async function killChild(
  c: ServiceChild<unknown> | null,
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  if (!c || c.child.exitCode !== null || c.child.signalCode !== null) return;
  c.child.kill(signal);
  await Promise.race([c.exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
}

/** Block-style YAML for plain data (strings double-quoted, so every value keeps its type). */
export function toYaml(value: Record<string, unknown>, indent = ""): string {
  let out = "";
  for (const [key, v] of Object.entries(value)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      out += `${indent}${key}:\n${toYaml(v as Record<string, unknown>, `${indent}  `)}`;
    } else {
      out += `${indent}${key}: ${JSON.stringify(v)}\n`; // JSON scalars and flow lists are valid YAML
    }
  }
  return out;
}

/** Writes `config` as YAML to `<dir>/<name>` and returns the path. */
export function writeConfig(dir: string, config: Record<string, unknown>, name = "config.yaml"): string {
  const path = join(dir, name);
  writeFileSync(path, toYaml(config));
  return path;
}
