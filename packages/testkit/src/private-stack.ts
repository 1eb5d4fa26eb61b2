// A stack of its own for a test that stops and restarts servers (the chaos test): a MariaDB source,
// a MariaDB target and a nats-server on free ports with data in a temporary directory, started by
// the project's stack code. The shared stack (13306, 13307, 14222), which other tests and the
// benchmarks use meanwhile, is never touched.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ComponentName, stackDown, stackUp, stackUrls, startComponent, stopComponent } from "@dfs/stack";

export interface PrivateStack {
  readonly dir: string;
  readonly ports: Record<ComponentName, number>;
  readonly urls: { sourceUrl: string; targetUrl: string; natsUrl: string };
  /** Stops one server (SIGKILL when `hard`); its data dir stays. */
  stop(name: ComponentName, opts?: { hard?: boolean }): Promise<void>;
  /** Starts it again on the same port and data dir (databases and JetStream streams survive). */
  start(name: ComponentName): Promise<void>;
  /** Stops every server and removes the data. */
  remove(): Promise<void>;
}

/** A TCP port nothing listens on now (the kernel's pick; released at once for the server to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export async function startPrivateStack(prefix = "dfs-private-stack-"): Promise<PrivateStack> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const picked = new Set<number>();
  while (picked.size < 3) picked.add(await freePort());
  const [source, target, nats] = [...picked] as [number, number, number];
  const ports = { source, target, nats };
  const opts = { dir, ports };
  const stack: PrivateStack = {
    dir,
    ports,
    urls: stackUrls(opts),
    stop: (name, o = {}) => stopComponent(name, { ...opts, hard: o.hard ?? false }),
    start: async (name) => {
      await startComponent(name, opts);
    },
    remove: async () => {
      await stackDown(opts).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await stackUp(opts);
  } catch (err) {
    await stack.remove();
    throw err;
  }
  return stack;
}

/** A nats-server of its own (JetStream on, store in a temporary directory), stopped and started at will. */
export interface PrivateNats {
  readonly url: string;
  /** Stops it (SIGKILL when `hard`); its store stays. */
  stop(opts?: { hard?: boolean }): Promise<void>;
  /** Starts it again on the same port and store (streams and consumers survive). */
  start(): Promise<void>;
  /** Stops it and removes the store. */
  remove(): Promise<void>;
}

/** Only the NATS server of a private stack: for tests of what a client does while NATS is away. */
export async function startPrivateNats(prefix = "dfs-private-nats-"): Promise<PrivateNats> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // The other components are never started; their ports only have to be distinct.
  const ports = { source: 1, target: 2, nats: await freePort() };
  const opts = { dir, ports };
  const nats: PrivateNats = {
    url: stackUrls(opts).natsUrl,
    stop: (o = {}) => stopComponent("nats", { ...opts, hard: o.hard ?? false }),
    start: async () => {
      await startComponent("nats", opts);
    },
    remove: async () => {
      await stopComponent("nats", opts).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await nats.start();
  } catch (err) {
    await nats.remove();
    throw err;
  }
  return nats;
}
