import { mkdirSync } from "node:fs";
import { type ComponentStatus, componentStatus, resolveBinaries, startOne, stopOne } from "./component.js";
import { withStackLock } from "./lock.js";
import { COMPONENT_NAMES, type ComponentName, resolveStackPaths, type StackOptions } from "./paths.js";
import { ensureTlsFiles } from "./tls.js";

const silent = () => {};

/** Settles every component before reporting, so one failure does not hide the state of the others. */
async function allOrThrow(tasks: Promise<ComponentStatus>[]): Promise<ComponentStatus[]> {
  const results = await Promise.allSettled(tasks);
  const failures = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
  if (failures.length > 0) throw new Error(failures.join("\n\n"));
  return results.map((r) => (r as PromiseFulfilledResult<ComponentStatus>).value);
}

/** Starts whatever is not running yet; components already up (and ours) are left untouched. */
export async function stackUp(opts: StackOptions = {}): Promise<ComponentStatus[]> {
  const log = opts.log ?? silent;
  const paths = resolveStackPaths(opts);
  mkdirSync(paths.dir, { recursive: true });
  return withStackLock(paths.lockFile, async () => {
    const binaries = resolveBinaries([...COMPONENT_NAMES], paths.dir, log);
    const tls = paths.components.nats.tls;
    if (tls) ensureTlsFiles(tls, paths.dir, log);
    return allOrThrow(COMPONENT_NAMES.map((name) => startOne(paths.components[name], binaries, log)));
  });
}

/** Stops only the processes the stack started; anything else on the ports is left alone. */
export async function stackDown(opts: StackOptions = {}): Promise<ComponentStatus[]> {
  const log = opts.log ?? silent;
  const paths = resolveStackPaths(opts);
  return withStackLock(paths.lockFile, () =>
    allOrThrow(
      COMPONENT_NAMES.map((name) => stopOne(paths.components[name], { hard: false, strict: false, log })),
    ),
  );
}

export async function stackStatus(opts: StackOptions = {}): Promise<ComponentStatus[]> {
  const paths = resolveStackPaths(opts);
  return Promise.all(COMPONENT_NAMES.map((name) => componentStatus(paths.components[name])));
}

/** Stop (SIGKILL if hard) one component, for failure tests (e.g. NATS down for 30 s). */
export async function stopComponent(
  name: ComponentName,
  opts: StackOptions & { hard?: boolean } = {},
): Promise<void> {
  const paths = resolveStackPaths(opts);
  await withStackLock(paths.lockFile, () =>
    stopOne(paths.components[name], { hard: opts.hard ?? false, strict: true, log: opts.log ?? silent }),
  );
}

/** (Re)start one component; its data dir is reused, so JetStream streams and databases survive. */
export async function startComponent(name: ComponentName, opts: StackOptions = {}): Promise<ComponentStatus> {
  const log = opts.log ?? silent;
  const paths = resolveStackPaths(opts);
  mkdirSync(paths.dir, { recursive: true });
  return withStackLock(paths.lockFile, () => {
    const tls = paths.components[name].tls;
    if (tls) ensureTlsFiles(tls, paths.dir, log);
    return startOne(paths.components[name], resolveBinaries([name], paths.dir, log), log);
  });
}
