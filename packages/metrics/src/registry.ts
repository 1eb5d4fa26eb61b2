import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * A registry for one service. Every sample carries `service` (capture, dpu, relmgr, monitor) and
 * `source` labels, so several services and sources can share one Prometheus and one dashboard.
 * Node's process metrics are included under the `dfs_` prefix.
 */
export function createRegistry(service: string, sourceId: string, withProcess = true): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service, source: sourceId });
  if (withProcess) collectDefaultMetrics({ register: registry, prefix: "dfs_" });
  return registry;
}

export type { Registry };
