/**
 * monitor: the web UI with live updates over WebSocket, fed by every service's gRPC control plane
 * and metrics. Not built yet; this entry point reserves the package and its name.
 */
export const serviceName = "monitor";
