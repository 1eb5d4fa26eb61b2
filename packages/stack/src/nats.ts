import { mkdirSync } from "node:fs";
import { connect } from "node:net";
import type { ComponentDriver } from "./component.js";
import type { ComponentPaths } from "./paths.js";

/**
 * Reads the INFO line a NATS server sends unprompted on connect. Nothing is written, so probing never
 * counts as a client session in the server's logs, and no monitoring port is needed.
 */
export function readNatsInfo(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolveInfo) => {
    const socket = connect({ host, port });
    let buffered = "";
    const done = (info: Record<string, unknown> | undefined) => {
      socket.destroy();
      resolveInfo(info);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once("error", () => done(undefined));
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      const end = buffered.indexOf("\r\n");
      if (end < 0) return;
      const line = buffered.slice(0, end);
      if (!line.startsWith("INFO ")) return done(undefined);
      try {
        done(JSON.parse(line.slice(5)) as Record<string, unknown>);
      } catch {
        done(undefined);
      }
    });
  });
}

/** Ready once the server greets us and advertises JetStream (a plain NATS on the port would not do). */
async function probe(paths: ComponentPaths, timeoutMs: number): Promise<boolean> {
  const info = await readNatsInfo(paths.host, paths.port, timeoutMs);
  return info?.jetstream === true;
}

export const natsDriver: ComponentDriver = {
  binaries: ["nats-server"],
  mainBinary: "nats-server",
  identity: (paths) => ({ binary: "nats-server", marker: paths.dataDir }),
  prepare: (paths) => {
    mkdirSync(paths.dataDir, { recursive: true });
  },
  args: (paths) => ["-a", paths.host, "-p", String(paths.port), "-js", "-sd", paths.dataDir],
  probe,
  logFiles: (paths) => [paths.logFile],
};
