import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import type { ComponentDriver } from "./component.js";
import type { ComponentPaths } from "./paths.js";
import { natsConfig } from "./tls.js";

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
  identity: (paths) => ({ binary: "nats-server", marker: paths.tls ? paths.tls.natsConf : paths.dataDir }),
  prepare: (paths) => {
    mkdirSync(paths.dataDir, { recursive: true });
    const t = paths.tls;
    if (!t) return;
    const read = (f: string) => readFileSync(f, "utf8").trim();
    const settings = { host: paths.host, port: paths.port, storeDir: paths.dataDir };
    const conf = natsConfig(t, {
      ...settings,
      password: read(t.natsPasswordFile),
      nkey: read(t.nkeyPublicFile),
    });
    writeFileSync(t.natsConf, conf, { mode: 0o600 });
  },
  // The TLS stack's server reads every setting (address, TLS, users, JetStream) from its file.
  args: (paths) =>
    paths.tls
      ? ["-c", paths.tls.natsConf]
      : ["-a", paths.host, "-p", String(paths.port), "-js", "-sd", paths.dataDir],
  probe,
  logFiles: (paths) => [paths.logFile],
};
