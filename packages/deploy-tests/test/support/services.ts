import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { repoRoot } from "./repo.js";

/** A port nobody listens on now (the kernel's pick). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A `dfs <command> -c <config>` process; its output kept for failure messages. */
export interface DfsProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | string>;
  output(): string;
}

export function startDfs(name: string, args: string[], env: NodeJS.ProcessEnv = {}): DfsProcess {
  const child = spawn(process.execPath, [join(repoRoot(), "packages", "cli", "bin", "dfs.js"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let out = "";
  const keep = (chunk: string) => {
    out = (out + chunk).slice(-20_000);
  };
  child.stdout!.setEncoding("utf8").on("data", keep);
  child.stderr!.setEncoding("utf8").on("data", keep);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1));
  });
  return { name, child, exited, output: () => out };
}

/** Stops a process (if it still runs) and waits for it; never throws. */
export async function stop(
  p: DfsProcess | { child: ChildProcess; exited: Promise<unknown> } | null,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 15_000);
  await p.exited;
  clearTimeout(timer);
}

/** GET a URL as text; null when it cannot be reached or does not answer 200. */
export async function getText(url: string): Promise<string | null> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return r.ok ? await r.text() : null;
  } catch {
    return null;
  }
}
