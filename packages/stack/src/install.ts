import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { runLogged } from "./process.js";

/** Binaries the stack runs, and the Debian package that ships each. */
const PACKAGE_OF: Record<string, string> = {
  mariadbd: "mariadb-server",
  "mariadb-install-db": "mariadb-server",
  "nats-server": "nats-server",
};

/** sbin directories are searched too: server binaries live there and are often missing from PATH. */
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return undefined;
}

/**
 * Resolves the absolute path of every binary, installing the missing Debian packages first. The stack
 * deliberately uses the machine's own packages rather than downloaded tarballs, so versions match what
 * the project is tested against.
 */
export function ensureBinaries(
  names: string[],
  aptLog: string,
  log: (line: string) => void,
): Record<string, string> {
  const missing = names.filter((name) => findBinary(name) === undefined);
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((name) => PACKAGE_OF[name] ?? name))];
    if (findBinary("apt-get") === undefined) {
      throw new Error(`missing ${missing.join(", ")}; install ${packages.join(" ")} manually`);
    }
    log(`installing ${packages.join(" ")} (apt-get, output in ${aptLog})`);
    // Non-interactive: a debconf prompt would hang an unattended `dfs stack up` forever.
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    runLogged("apt-get", ["update"], aptLog, env);
    runLogged("apt-get", ["install", "-y", "--no-install-recommends", ...packages], aptLog, env);
  }
  const resolved: Record<string, string> = {};
  for (const name of names) {
    const path = findBinary(name);
    if (path === undefined) throw new Error(`${name} still missing after installing its package`);
    resolved[name] = path;
  }
  return resolved;
}
