import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** How a component's process is recognised, so a recycled pid is never mistaken for ours. */
export interface ProcessIdentity {
  /** Executable basename, e.g. "mariadbd". */
  binary: string;
  /** An argument only our instance carries (its data dir), distinguishing it from the machine's own server. */
  marker: string;
}

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function writePidFile(file: string, pid: number): void {
  writeFileSync(file, `${pid}\n`);
}

export function removeFile(file: string): void {
  rmSync(file, { force: true });
}

/** argv of a live process, or undefined when it is gone or a zombie (a zombie holds no port and no data). */
export function processArgs(pid: number): string[] | undefined {
  if (existsSync("/proc/self/cmdline")) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // The state letter follows the parenthesised command name, which may itself contain spaces.
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state === "Z" || state === "X") return undefined;
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (args.at(-1) === "") args.pop();
      return args;
    } catch {
      return undefined;
    }
  }
  // Non-Linux fallback: ps joins argv with spaces, which is enough for the substring check below.
  const ps = spawnSync("ps", ["-o", "stat=,command=", "-p", String(pid)], { encoding: "utf8" });
  const line = ps.stdout?.trim();
  if (ps.status !== 0 || !line || line.startsWith("Z")) return undefined;
  return line.split(/\s+/).slice(1);
}

/** True only if `pid` is alive and is the very process we spawned (right binary, our data dir). */
export function isOurProcess(pid: number, identity: ProcessIdentity): boolean {
  const args = processArgs(pid);
  if (args === undefined || args.length === 0) return false;
  if (basename(args[0] ?? "") !== identity.binary) return false;
  return args.some((arg) => arg === identity.marker || arg.endsWith(`=${identity.marker}`));
}

/** Live processes matching `identity`, for diagnostics only (Linux /proc; empty elsewhere). */
export function findProcesses(identity: ProcessIdentity): number[] {
  return livePids().filter((pid) => pid !== process.pid && isOurProcess(pid, identity));
}

/** Pids of every live process (Linux /proc; empty elsewhere). */
function livePids(): number[] {
  try {
    return readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Pid from the pid file if it still designates our process. A stale file is left in place: only
 * callers holding the stack lock may delete it, else a concurrent `up` could lose its fresh pid file.
 */
export function ownedPid(pidFile: string, identity: ProcessIdentity): number | undefined {
  const pid = readPidFile(pidFile);
  return pid !== undefined && isOurProcess(pid, identity) ? pid : undefined;
}

/**
 * Starts a process in its own session with output appended to `logFile`, so it keeps running after
 * the `dfs stack up` process (or test runner) that launched it exits.
 */
export async function spawnDetached(command: string, args: string[], logFile: string): Promise<number> {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(command, args, { detached: true, stdio: ["ignore", fd, fd] });
    const pid = await new Promise<number>((resolvePid, reject) => {
      child.once("error", reject);
      child.once("spawn", () => resolvePid(child.pid ?? 0));
    });
    child.unref();
    return pid;
  } finally {
    closeSync(fd);
  }
}

/** Runs a short-lived command to completion with output appended to `logFile`. */
export function runLogged(command: string, args: string[], logFile: string, env = process.env): void {
  const fd = openSync(logFile, "a");
  try {
    const result = spawnSync(command, args, { stdio: ["ignore", fd, fd], env });
    if (result.error) throw result.error;
    if (result.status !== 0) {
      throw new Error(
        `${command} ${args.join(" ")} exited with ${result.status ?? result.signal}\n${tailFile(logFile)}`,
      );
    }
  } finally {
    closeSync(fd);
  }
}

/** Last lines of a log, for error messages that explain *why* a component did not come up. */
export function tailFile(file: string, lines = 20): string {
  try {
    const size = statSync(file).size;
    const length = Math.min(size, 8192);
    const buffer = Buffer.alloc(length);
    const fd = openSync(file, "r");
    try {
      readSync(fd, buffer, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    const text = buffer.toString("utf8").trimEnd().split("\n").slice(-lines).join("\n");
    return `--- tail of ${file} ---\n${text}`;
  } catch {
    return `--- ${file}: no log ---`;
  }
}

/** True if anything accepts TCP connections on host:port. */
export function portInUse(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolveUse) => {
    const socket = connect({ host, port });
    const done = (used: boolean) => {
      socket.destroy();
      resolveUse(used);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Polls `check` until it returns true or the deadline passes. `abort` lets the caller fail fast,
 * e.g. when the process being waited for has already died.
 */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  opts: { timeoutMs: number; intervalMs?: number; abort?: () => string | undefined; what: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await check()) return;
    const reason = opts.abort?.();
    if (reason !== undefined) throw new Error(`${opts.what}: ${reason}`);
    if (Date.now() >= deadline) throw new Error(`${opts.what}: timed out after ${opts.timeoutMs / 1000} s`);
    await sleep(opts.intervalMs ?? 250);
  }
}

/** Signals our process and waits for it to be gone; escalates to SIGKILL if a graceful stop hangs. */
export async function killAndWait(pid: number, identity: ProcessIdentity, hard: boolean): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone between the identity check and the signal: that is the outcome we want.
    }
  };
  signal(hard ? "SIGKILL" : "SIGTERM");
  // An exiting process loses its argv (empty /proc/<pid>/cmdline) before it closes its files, so
  // it still holds its port then: gone means no process, or a zombie, or one with another argv.
  const gone = () => {
    const args = processArgs(pid);
    return args === undefined || (args.length > 0 && !isOurProcess(pid, identity));
  };
  try {
    // MariaDB flushes InnoDB on SIGTERM, which can take a while on a busy buffer pool.
    await waitUntil(gone, {
      timeoutMs: hard ? 10_000 : 60_000,
      intervalMs: 100,
      what: `stopping pid ${pid}`,
    });
  } catch {
    signal("SIGKILL");
    await waitUntil(gone, { timeoutMs: 10_000, intervalMs: 100, what: `killing pid ${pid}` });
  }
}

/**
 * Processes of `binary` that listen on `port` and keep their data under some `.stack/` folder: a
 * dfs stack started from another checkout of the project (Linux /proc only). The port is matched
 * in the `--port=P` and `-p P` forms the stack's own drivers use.
 */
export function findOtherStackProcesses(binary: string, port: number): number[] {
  return livePids().filter((pid) => {
    const args = processArgs(pid);
    if (!args || basename(args[0] ?? "") !== binary) return false;
    const onPort = args.some(
      (a, i) => a === `--port=${port}` || (a === "-p" && args[i + 1] === String(port)),
    );
    return onPort && args.some((a) => a.includes("/.stack/"));
  });
}

/** Stops a process we did not start (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopForeign(pid: number, graceMs = 60_000): Promise<void> {
  const alive = () => processArgs(pid) !== undefined;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  try {
    await waitUntil(() => !alive(), { timeoutMs: graceMs, intervalMs: 100, what: `stopping pid ${pid}` });
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
    await waitUntil(() => !alive(), { timeoutMs: 10_000, intervalMs: 100, what: `killing pid ${pid}` });
  }
}
