export { type ActivityInput, ActivityLog } from "./activity.js";
export { ControlCallError, type ControlClient, type ControlClientOptions, connectControl } from "./client.js";
export {
  type ControlHandlers,
  type ControlServer,
  type ControlServerOptions,
  SERVICE_DEFINITIONS,
  type ServiceKind,
  serveControl,
} from "./server.js";
