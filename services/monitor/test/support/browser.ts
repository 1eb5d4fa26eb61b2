// Headless Chromium for the monitor's browser test: Debian's chromium package (installed with
// apt-get when missing, the way `dfs stack up` installs mariadb-server and nats-server), driven
// by playwright-core. Not part of the service's API.

import { spawnSync } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const executable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** Installs Debian's chromium when /usr/bin/chromium is missing (non-interactive, output in a log). */
export function ensureChromium(): void {
  if (executable(CHROMIUM)) return;
  const log = join(tmpdir(), "dfs-monitor-chromium-apt.log");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update"], ["install", "-y", "--no-install-recommends", "chromium"]]) {
    const fd = openSync(log, "a");
    try {
      const r = spawnSync("apt-get", args, { stdio: ["ignore", fd, fd], env });
      if (r.error || r.status !== 0) {
        const tail = readFileSync(log, "utf8").split("\n").slice(-15).join("\n");
        throw new Error(
          `cannot install chromium for the monitor's browser test (apt-get ${args.join(" ")}: ${r.error?.message ?? `exit ${r.status}`}); install Debian's chromium package\n${tail}`,
        );
      }
    } finally {
      closeSync(fd);
    }
  }
  if (!executable(CHROMIUM)) throw new Error(`${CHROMIUM} still missing after apt-get install chromium`);
}

export async function launchChromium(): Promise<Browser> {
  ensureChromium();
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}
