import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { type TlsFiles, tlsFiles } from "./tls.js";

/** Options shared by every public stack function. */
export interface StackOptions {
  /** Project root; defaults to the nearest ancestor of cwd whose package.json declares "workspaces". */
  root?: string;
  /** Data directory; defaults to $DFS_STACK_DIR, then <root>/.stack. */
  dir?: string;
  /** Progress sink; defaults to silence so library callers (tests) stay quiet. */
  log?: (line: string) => void;
  /**
   * The TLS stack instead: TLS-only servers on their own ports (DFS_STACK_TLS_*_PORT, default
   * 13316, 13317, 14232) and data dir (<root>/.stack-tls, or $DFS_STACK_DIR-tls), so that it runs
   * beside the plain stack.
   */
  tls?: boolean;
  /**
   * Ports of the components, over $DFS_STACK_*_PORT and the defaults: with its own `dir`, a second
   * stack beside the shared one (a test that restarts servers must not restart everyone's).
   */
  ports?: Partial<Record<ComponentName, number>>;
}

export type ComponentName = "source" | "target" | "nats";

export const COMPONENT_NAMES: readonly ComponentName[] = ["source", "target", "nats"];

export const STACK_DEFAULTS = {
  sourcePort: 13306,
  targetPort: 13307,
  natsPort: 14222,
  host: "127.0.0.1",
} as const;

/** Ports of the TLS stack (`dfs stack up --tls`). */
export const TLS_STACK_DEFAULTS = { sourcePort: 13316, targetPort: 13317, natsPort: 14232 } as const;

/** Every file location the stack uses for one component, resolved once so all modules agree. */
export interface ComponentPaths {
  name: ComponentName;
  port: number;
  host: string;
  /** MariaDB datadir or NATS JetStream store dir. */
  dataDir: string;
  /** Our own pid record (not the one mariadbd writes, which it deletes on shutdown). */
  pidFile: string;
  /** stdout/stderr of the detached process. */
  logFile: string;
  /** MariaDB --log-error target; the server writes its real diagnostics here, not to stdout. */
  errFile: string;
  /** MariaDB unix socket; unused for NATS. */
  socket: string;
  /** The TLS stack's certificates and credentials; absent for the plain stack. */
  tls?: TlsFiles;
}

export interface StackPaths {
  dir: string;
  lockFile: string;
  components: Record<ComponentName, ComponentPaths>;
}

/** Linux sun_path is 108 bytes including the NUL; stay a little below to be safe on other platforms. */
const MAX_SOCKET_PATH = 100;

/** Walks up from `start` to the npm-workspaces root, so `dfs stack up` works from any sub-folder. */
export function findProjectRoot(start: string = process.cwd()): string {
  let current = resolve(start);
  for (;;) {
    const pkgPath = join(current, "package.json");
    if (existsSync(pkgPath)) {
      try {
        const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as { workspaces?: unknown };
        if (pkg.workspaces !== undefined) return current;
      } catch {
        // A broken package.json further down must not stop the search for the real root.
      }
    }
    const parent = dirname(current);
    if (parent === current) {
      throw new Error(`no package.json with "workspaces" found above ${start}; pass the root option`);
    }
    current = parent;
  }
}

function envPort(variable: string, fallback: number): number {
  const raw = process.env[variable];
  if (raw === undefined || raw.trim() === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${variable}=${raw} is not a valid TCP port`);
  }
  return port;
}

export function stackPorts(tls = false, given: StackOptions["ports"] = {}): Record<ComponentName, number> {
  const d = tls ? TLS_STACK_DEFAULTS : STACK_DEFAULTS;
  const v = tls ? "DFS_STACK_TLS" : "DFS_STACK";
  return {
    source: given.source ?? envPort(`${v}_SOURCE_PORT`, d.sourcePort),
    target: given.target ?? envPort(`${v}_TARGET_PORT`, d.targetPort),
    nats: given.nats ?? envPort(`${v}_NATS_PORT`, d.natsPort),
  };
}

/** Keeps the socket next to the data when possible, else a stable per-stack name in /tmp. */
function socketPath(dir: string, name: ComponentName): string {
  const preferred = join(dir, `${name}.sock`);
  if (Buffer.byteLength(preferred) <= MAX_SOCKET_PATH) return preferred;
  const hash = createHash("sha1").update(dir).digest("hex").slice(0, 10);
  return join("/tmp", `dfs-stack-${hash}-${name}.sock`);
}

export function resolveStackPaths(opts: StackOptions = {}): StackPaths {
  const envDir = process.env.DFS_STACK_DIR;
  const suffix = opts.tls ? "-tls" : "";
  let dir: string;
  if (opts.dir !== undefined) dir = resolve(opts.dir);
  else if (envDir !== undefined && envDir !== "") dir = resolve(`${envDir}${suffix}`);
  else dir = join(opts.root !== undefined ? resolve(opts.root) : findProjectRoot(), `.stack${suffix}`);

  const ports = stackPorts(opts.tls, opts.ports);
  const tls = opts.tls ? tlsFiles(dir) : undefined;
  const component = (name: ComponentName): ComponentPaths => ({
    name,
    port: ports[name],
    host: STACK_DEFAULTS.host,
    dataDir: join(dir, name),
    pidFile: join(dir, `${name}.pid`),
    logFile: join(dir, `${name}.log`),
    errFile: join(dir, `${name}.err`),
    socket: socketPath(dir, name),
    ...(tls ? { tls } : {}),
  });
  return {
    dir,
    lockFile: join(dir, "stack.lock"),
    components: { source: component("source"), target: component("target"), nats: component("nats") },
  };
}

export function componentAddress(paths: ComponentPaths): string {
  const scheme = paths.name === "nats" ? (paths.tls ? "tls" : "nats") : "mysql";
  const user = paths.name === "nats" ? "" : "root@";
  return `${scheme}://${user}${paths.host}:${paths.port}`;
}

/**
 * The stack's URLs. The plain stack's do not depend on the data dir, so they never need to locate
 * the project root; the TLS stack's name its CA file (ssl-mode VERIFY_IDENTITY) and use tls://.
 */
export function stackUrls(opts: StackOptions = {}): {
  sourceUrl: string;
  targetUrl: string;
  natsUrl: string;
} {
  const ports = stackPorts(opts.tls, opts.ports);
  const host = STACK_DEFAULTS.host;
  const ssl = opts.tls
    ? `?ssl-mode=VERIFY_IDENTITY&ssl-ca=${encodeURIComponent(tlsStackFiles(opts).ca)}`
    : "";
  return {
    sourceUrl: `mysql://root@${host}:${ports.source}${ssl}`,
    targetUrl: `mysql://root@${host}:${ports.target}${ssl}`,
    natsUrl: `${opts.tls ? "tls" : "nats"}://${host}:${ports.nats}`,
  };
}

/** The TLS stack's certificates and NATS credentials (made by `dfs stack up --tls`). */
export function tlsStackFiles(opts: StackOptions = {}): TlsFiles {
  return tlsFiles(resolveStackPaths({ ...opts, tls: true }).dir);
}
