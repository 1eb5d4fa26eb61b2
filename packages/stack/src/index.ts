// Public surface of @dfs/stack: the local MariaDB source/target + NATS JetStream test stack.
export { formatStatusTable } from "./cli.js";
export type { ComponentStatus } from "./component.js";
export { MARIADB_TUNING } from "./mariadb.js";
export type { ComponentName, StackOptions } from "./paths.js";
export { STACK_DEFAULTS, stackUrls, TLS_STACK_DEFAULTS, tlsStackFiles } from "./paths.js";
export { stackDown, stackStatus, stackUp, startComponent, stopComponent } from "./stack.js";
export type { TlsFiles } from "./tls.js";
