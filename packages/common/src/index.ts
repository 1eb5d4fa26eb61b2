export {
  AbortedError,
  AssertionError,
  assert,
  ConfigError,
  DataError,
  DfsError,
  type DfsErrorOptions,
  ErrorCode,
  errorMessage,
  MysqlErrno,
  mysqlErrorClass,
  TransientError,
} from "./errors.js";
export { createLogger, type Logger, type LogOptions, redactUrl } from "./log.js";
export { backoffMs, parseBytes, parseDurationMs, sleep, waitFor } from "./util.js";
