/**
 * monitor: the web UI with live updates over WebSocket, fed by every service's gRPC control plane
 * and metrics. See docs/monitor.md.
 */
export { attachHub, type Hub, type HubOptions, NO_TOKEN_MESSAGE, WS_PATH } from "./hub.js";
export {
  CALL_METHODS,
  type CallMethod,
  Poller,
  type PollerOptions,
  tableRows,
  type WatchedService,
} from "./poller.js";
export { type MonitorDeps, type MonitorService, startMonitor, watchedServices } from "./service.js";
export { PUBLIC_DIR, staticHandler } from "./static.js";
export type {
  ActivityView,
  DlqView,
  ErrorView,
  Health,
  MonitorState,
  OpCounts,
  Point,
  ServiceView,
  TableRow,
} from "./view.js";
