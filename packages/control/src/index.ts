export { type ActivityInput, ActivityLog } from "./activity.js";
export {
  type ClientTls,
  ControlCallError,
  type ControlClient,
  type ControlClientOptions,
  connectControl,
} from "./client.js";
export {
  type ControlHandlers,
  type ControlServer,
  type ControlServerOptions,
  SERVICE_DEFINITIONS,
  type ServerTls,
  type ServiceKind,
  serveControl,
} from "./server.js";
