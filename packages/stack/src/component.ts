import { join } from "node:path";
import { ensureBinaries } from "./install.js";
import { sourceDriver, targetDriver } from "./mariadb.js";
import { natsDriver } from "./nats.js";
import { type ComponentName, type ComponentPaths, componentAddress } from "./paths.js";
import {
  findOtherStackProcesses,
  findProcesses,
  isOurProcess,
  killAndWait,
  ownedPid,
  type ProcessIdentity,
  portInUse,
  processArgs,
  removeFile,
  spawnDetached,
  stopForeign,
  tailFile,
  waitUntil,
  writePidFile,
} from "./process.js";

export interface ComponentStatus {
  name: ComponentName;
  up: boolean;
  address: string;
  pid?: number;
  startedByStack: boolean;
}

/** What differs between MariaDB and NATS; the lifecycle around it is shared below. */
export interface ComponentDriver {
  /** Every executable needed, so missing packages are installed before anything starts. */
  binaries: string[];
  /** The long-running server executable. */
  mainBinary: string;
  identity(paths: ComponentPaths): ProcessIdentity;
  /** One-time setup (datadir init); must be idempotent. */
  prepare(paths: ComponentPaths, binaries: Record<string, string>, log: (line: string) => void): void;
  args(paths: ComponentPaths): string[];
  /** Protocol-level readiness check; must resolve (never reject) within about `timeoutMs`. */
  probe(paths: ComponentPaths, timeoutMs: number): Promise<boolean>;
  /** Logs worth showing when the component fails to start, most informative first. */
  logFiles(paths: ComponentPaths): string[];
}

const DRIVERS: Record<ComponentName, ComponentDriver> = {
  source: sourceDriver,
  target: targetDriver,
  nats: natsDriver,
};

/** Per-component readiness deadline, as the architecture doc requires. */
const READY_TIMEOUT_MS = 60_000;
const STATUS_PROBE_MS = 1500;

export function driverBinaries(names: ComponentName[]): string[] {
  return [...new Set(names.flatMap((name) => DRIVERS[name].binaries))];
}

export function resolveBinaries(names: ComponentName[], dir: string, log: (line: string) => void) {
  return ensureBinaries(driverBinaries(names), join(dir, "apt.log"), log);
}

function logTails(driver: ComponentDriver, paths: ComponentPaths): string {
  return driver
    .logFiles(paths)
    .map((file) => tailFile(file))
    .join("\n");
}

/** Read-only: safe to call without the stack lock. */
export async function componentStatus(paths: ComponentPaths): Promise<ComponentStatus> {
  const driver = DRIVERS[paths.name];
  const pid = ownedPid(paths.pidFile, driver.identity(paths));
  const up = await driver.probe(paths, STATUS_PROBE_MS);
  const status: ComponentStatus = {
    name: paths.name,
    up,
    address: componentAddress(paths),
    startedByStack: pid !== undefined,
  };
  if (pid !== undefined) status.pid = pid;
  return status;
}

async function waitReady(driver: ComponentDriver, paths: ComponentPaths, pid: number): Promise<void> {
  const identity = driver.identity(paths);
  try {
    await waitUntil(() => driver.probe(paths, 2000), {
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 250,
      what: `${paths.name} did not become ready on ${componentAddress(paths)}`,
      abort: () => (isOurProcess(pid, identity) ? undefined : `process ${pid} exited`),
    });
  } catch (error) {
    // A dead process must not leave a pid file behind; a slow one stays tracked so `down` can stop it.
    if (!isOurProcess(pid, identity)) removeFile(paths.pidFile);
    throw new Error(`${(error as Error).message}\n${logTails(driver, paths)}`);
  }
}

/** Caller must hold the stack lock. Leaves an already running instance alone. */
export async function startOne(
  paths: ComponentPaths,
  binaries: Record<string, string>,
  log: (line: string) => void,
): Promise<ComponentStatus> {
  const driver = DRIVERS[paths.name];
  const address = componentAddress(paths);
  const running = ownedPid(paths.pidFile, driver.identity(paths));
  if (running !== undefined) {
    // Ports or flags changed since it was launched (e.g. a DFS_STACK_*_PORT override): probing the new
    // port could hit some other server and report success, and respawning would fight over the datadir.
    const launchedWith = processArgs(running)?.slice(1);
    if (launchedWith !== undefined && launchedWith.join("\0") !== driver.args(paths).join("\0")) {
      throw new Error(
        `${paths.name}: pid ${running} was started by the stack with other settings (ports or flags);` +
          " run `dfs stack down` and retry",
      );
    }
    // Possibly still starting (e.g. launched by a run that was interrupted): wait rather than respawn.
    await waitReady(driver, paths, running);
    log(`${paths.name}: already up on ${address} (pid ${running})`);
    return { name: paths.name, up: true, address, pid: running, startedByStack: true };
  }
  removeFile(paths.pidFile);
  if ((await portInUse(paths.host, paths.port)) && process.env.DFS_STACK_TAKEOVER === "1") {
    // CI sets this: a stack left running by another checkout (an earlier CI run, a dev tree) would
    // otherwise hold the ports. Only processes that are recognisably a dfs stack server are stopped.
    for (const pid of findOtherStackProcesses(driver.identity(paths).binary, paths.port)) {
      log(
        `${paths.name}: stopping pid ${pid}, a dfs stack server of another checkout on port ${paths.port} (DFS_STACK_TAKEOVER=1)`,
      );
      await stopForeign(pid);
    }
  }
  if (await portInUse(paths.host, paths.port)) {
    // Name a process that runs on our data dir without a pid file (started by hand), since stopping it
    // is then the likely fix; otherwise suggest moving the stack to another port.
    const strays = findProcesses(driver.identity(paths));
    const hint =
      strays.length > 0
        ? `; pid ${strays.join(", ")} uses ${paths.dataDir} but was not started by \`dfs stack up\`, stop it and retry`
        : ` (set DFS_STACK_${paths.name.toUpperCase()}_PORT to use another port)`;
    throw new Error(
      `${paths.name}: port ${paths.port} on ${paths.host} is already in use by a process the stack did not start${hint}`,
    );
  }
  let pid: number;
  try {
    driver.prepare(paths, binaries, log);
    log(`${paths.name}: starting on ${address}`);
    const command = binaries[driver.mainBinary] ?? driver.mainBinary;
    pid = await spawnDetached(command, driver.args(paths), paths.logFile);
  } catch (error) {
    throw new Error(`${paths.name}: could not start: ${(error as Error).message}`);
  }
  writePidFile(paths.pidFile, pid);
  await waitReady(driver, paths, pid);
  log(`${paths.name}: up on ${address} (pid ${pid})`);
  return { name: paths.name, up: true, address, pid, startedByStack: true };
}

/**
 * Caller must hold the stack lock. Stops only a process the stack started; with `strict`, a component
 * that is up but not ours is an error rather than silently left running.
 */
export async function stopOne(
  paths: ComponentPaths,
  opts: { hard: boolean; strict: boolean; log: (line: string) => void },
): Promise<ComponentStatus> {
  const driver = DRIVERS[paths.name];
  const identity = driver.identity(paths);
  const pid = ownedPid(paths.pidFile, identity);
  if (pid === undefined) {
    removeFile(paths.pidFile);
    const status = await componentStatus(paths);
    if (status.up) {
      if (opts.strict) {
        throw new Error(
          `${paths.name} on ${status.address} was not started by the stack; refusing to stop it`,
        );
      }
      opts.log(`${paths.name}: not started by the stack, left running`);
    }
    return status;
  }
  opts.log(`${paths.name}: stopping pid ${pid}${opts.hard ? " (SIGKILL)" : ""}`);
  await killAndWait(pid, identity, opts.hard);
  // The other threads of a killed server may still hold its files (the listening socket) while its
  // main thread is already a zombie: stopped means the port is free, so a restart can take it.
  await waitUntil(async () => !(await portInUse(paths.host, paths.port, 500)), {
    timeoutMs: 10_000,
    intervalMs: 50,
    what: `${paths.name}: port ${paths.port} to be released by pid ${pid}`,
  });
  removeFile(paths.pidFile);
  return { name: paths.name, up: false, address: componentAddress(paths), startedByStack: false };
}
