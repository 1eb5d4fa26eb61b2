export {
  type CaptureMetrics,
  captureMetrics,
  type DpuMetrics,
  dpuMetrics,
  type MonitorMetrics,
  monitorMetrics,
  type RelmgrMetrics,
  relmgrMetrics,
  type ServiceMetrics,
  type SnapshotMetrics,
  serviceMetrics,
  setState,
  snapshotMetrics,
  type VerifyMetrics,
  verifyMetrics,
} from "./catalog.js";
export {
  type Health,
  type HttpEndpoint,
  type HttpOptions,
  type HttpTls,
  healthOf,
  serveHttp,
} from "./http.js";
export { parseMetrics, type Sample, sumOf } from "./parse.js";
export { createRegistry, type Registry } from "./registry.js";
