/**
 * `startMonitor(config)`: the one wiring function. Serves the page, its WebSocket (/ws), /metrics,
 * /healthz and /readyz on monitor.http.port, and polls every service of monitor.services.
 */
import { createLogger, type Logger } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import type { ControlClient, ControlClientOptions, ServiceKind } from "@dfs/control";
import { createRegistry, monitorMetrics, serveHttp, serviceMetrics, setState } from "@dfs/metrics";
import { attachHub, type Hub } from "./hub.js";
import { Poller, type WatchedService } from "./poller.js";
import { staticHandler } from "./static.js";

export interface MonitorDeps {
  log?: Logger;
  /** For tests: how control clients are made. */
  connect?: (kind: ServiceKind, address: string, options: ControlClientOptions) => ControlClient;
  /** How much chart history is kept (default 5 minutes). */
  historyMs?: number;
}

export interface MonitorService {
  /** The HTTP port actually bound (monitor.http.port may be 0). */
  readonly port: number;
  /** Browsers connected, and those logged in. */
  clients(): { open: number; authenticated: number };
  stop(): Promise<void>;
  /** Settles when the monitor stops. */
  readonly done: Promise<void>;
}

/** monitor.services with names filled in (the kind, numbered when several share it). */
export function watchedServices(cfg: DfsConfig): WatchedService[] {
  const used = new Set<string>();
  return cfg.monitor.services.map((s) => {
    let name = s.name ?? s.kind;
    for (let n = 2; used.has(name); n++) name = `${s.name ?? s.kind}-${n}`;
    used.add(name);
    return { kind: s.kind, name, grpc: s.grpc, http: s.http.replace(/\/+$/, "") };
  });
}

export async function startMonitor(cfg: DfsConfig, deps: MonitorDeps = {}): Promise<MonitorService> {
  const log = deps.log ?? createLogger({ level: cfg.log.level, name: "monitor" });
  const registry = createRegistry("monitor", cfg.source.id);
  const service = serviceMetrics(registry);
  const metrics = monitorMetrics(registry);
  setState(service, "starting");
  const services = watchedServices(cfg);
  const poller = new Poller({
    sourceId: cfg.source.id,
    ...(cfg.pipeline ? { mappedTargets: mappedTargets(cfg.pipeline.mappings) } : {}),
    services,
    token: cfg.control.token,
    tls: cfg.control.clientTls,
    intervalMs: cfg.monitor.pollIntervalMs,
    log,
    metrics,
    ...(deps.historyMs ? { historyMs: deps.historyMs } : {}),
    ...(deps.connect ? { connect: deps.connect } : {}),
  });
  const http = await serveHttp({
    port: cfg.monitor.http.port,
    host: cfg.monitor.http.host,
    tls: cfg.monitor.http.tls,
    portKey: "monitor.http.port",
    registry,
    health: () => {
      const state = poller.latest();
      const up = state?.services.filter((s) => s.state !== "unreachable").length ?? 0;
      return {
        live: true,
        ready: state !== null,
        detail: state ? `${up} of ${services.length} services reachable` : "first poll not done",
      };
    },
    handle: staticHandler(),
  });
  let hub: Hub;
  try {
    hub = attachHub({
      server: http.server,
      token: cfg.control.token,
      poller,
      pollIntervalMs: cfg.monitor.pollIntervalMs,
      log,
      metrics,
    });
  } catch (err) {
    await http.close();
    throw err;
  }
  if (!cfg.control.token)
    log.warn(
      "control.token is not set: the monitor's page refuses every login and no service answers Status",
    );
  poller.start();
  setState(service, "running");
  log.info(
    {
      port: http.port,
      host: cfg.monitor.http.host,
      tls: cfg.monitor.http.tls !== undefined,
      services: services.map((s) => `${s.name}=${s.grpc}`),
    },
    "monitor serving the page, /ws and /metrics",
  );

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  let stopping: Promise<void> | null = null;
  return {
    port: http.port,
    clients: () => hub.clients(),
    stop() {
      stopping ??= (async () => {
        setState(service, "stopped");
        await hub.close();
        await poller.stop();
        await http.close();
        resolveDone();
      })();
      return stopping;
    },
    done,
  };
}

/** Source table -> the target tables its mappings write, as the tables list shows them. */
function mappedTargets(mappings: readonly { source: string; target: string }[]): Map<string, string> {
  const out = new Map<string, string[]>();
  for (const m of mappings) out.set(m.source, [...new Set([...(out.get(m.source) ?? []), m.target])]);
  return new Map([...out].map(([k, v]) => [k, v.join(", ")]));
}
