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
  RefusedError,
  TransientError,
} from "./errors.js";
export { Completion, Scope, Signal } from "./lifecycle.js";
export { createLogger, displayUrl, displayUrls, type Logger, type LogOptions, redactUrl } from "./log.js";
export { type Random, seededRandom, testSeed } from "./random.js";
export { redactText } from "./redact.js";
export {
  backoffMs,
  parseBytes,
  parseDurationMs,
  retryTransient,
  sleep,
  type TransientRetry,
  waitFor,
} from "./util.js";
