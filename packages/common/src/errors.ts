/**
 * Errors by meaning. Every error the project raises on purpose is one of these classes, carries a
 * code from `ErrorCode`, and keeps the underlying error as `cause`. Retry decisions are made on the
 * class (or on a MySQL error number, see `mysqlErrorClass`), never on message text.
 */

/** One enum of codes. The comment on each says what causes it and what to do. */
export enum ErrorCode {
  /** The YAML config or an environment override is invalid. Fix the key named in the message. */
  CONFIG_INVALID = "DFS_CONFIG_INVALID",
  /** The config file could not be read or parsed as YAML. Check the path and the YAML syntax. */
  CONFIG_UNREADABLE = "DFS_CONFIG_UNREADABLE",
  /** The source server is configured in a way capture cannot work with (binlog format, row image, ...). */
  SOURCE_SETTINGS = "DFS_SOURCE_SETTINGS",
  /** The source user lacks a privilege capture needs (REPLICATION SLAVE, REPLICATION CLIENT, SELECT). */
  SOURCE_PRIVILEGES = "DFS_SOURCE_PRIVILEGES",
  /** The checkpoint's binlog file or GTIDs were purged on the server. Re-snapshot or set a new position. */
  CHECKPOINT_PURGED = "DFS_CHECKPOINT_PURGED",
  /** The source is a different server than the one the journal was written from (server uuid changed). */
  SOURCE_CHANGED = "DFS_SOURCE_CHANGED",
  /** A connection to the source was lost or refused; retried with backoff. */
  SOURCE_UNAVAILABLE = "DFS_SOURCE_UNAVAILABLE",
  /** NATS / JetStream is unreachable or timed out; retried with backoff, journal keeps growing. */
  BROKER_UNAVAILABLE = "DFS_BROKER_UNAVAILABLE",
  /** Another capture holds the lease for this source. Only one capture may read a source. */
  LEASE_HELD = "DFS_LEASE_HELD",
  /** The journal reached its size limit; reading the binlog is paused until publishing catches up. */
  JOURNAL_FULL = "DFS_JOURNAL_FULL",
  /** A row or event cannot be decoded or written; it is sent to the dead-letter subject. */
  DATA_INVALID = "DFS_DATA_INVALID",
  /** The target database is unreachable; retried with backoff. */
  TARGET_UNAVAILABLE = "DFS_TARGET_UNAVAILABLE",
  /** An internal invariant failed: this is a bug, please report it with the log. */
  ASSERTION = "DFS_ASSERTION",
  /** The operation was stopped on request (shutdown, pause). Not an error to report. */
  ABORTED = "DFS_ABORTED",
}

export interface DfsErrorOptions {
  cause?: unknown;
  /** Structured details safe to log (never secrets). */
  details?: Record<string, unknown>;
}

/** Base class: a code, a message that names what is wrong, and the cause. */
export class DfsError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, options: DfsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
  }
}

/** Bad configuration or bad server settings: retrying will not help, a person must act. */
export class ConfigError extends DfsError {
  /** Each problem found, so that one start-up reports all of them at once. */
  readonly problems: string[];
  constructor(code: ErrorCode, problems: string[], options: DfsErrorOptions = {}) {
    super(
      code,
      problems.length === 1 ? problems[0]! : `${problems.length} problems:\n- ${problems.join("\n- ")}`,
      options,
    );
    this.problems = problems;
  }
}

/** A server went away or timed out: retry with backoff. */
export class TransientError extends DfsError {}

/** One change cannot be processed (decode or constraint): dead-letter it and go on. */
export class DataError extends DfsError {}

/** A bug: an invariant that must hold did not. */
export class AssertionError extends DfsError {
  constructor(message: string, options: DfsErrorOptions = {}) {
    super(ErrorCode.ASSERTION, message, options);
  }
}

/** A requested stop. */
export class AbortedError extends DfsError {
  constructor(message = "stopped on request", options: DfsErrorOptions = {}) {
    super(ErrorCode.ABORTED, message, options);
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** MySQL/MariaDB error numbers whose meaning decides what we do. */
export const MysqlErrno = {
  /** ER_MASTER_FATAL_ERROR_READING_BINLOG: binlog purged or position invalid. Fatal. */
  FATAL_READING_BINLOG: 1236,
  /** ER_LOCK_DEADLOCK: retry the transaction. */
  LOCK_DEADLOCK: 1213,
  /** ER_LOCK_WAIT_TIMEOUT: retry. */
  LOCK_WAIT_TIMEOUT: 1205,
  /** ER_CON_COUNT_ERROR: too many connections, retry later. */
  TOO_MANY_CONNECTIONS: 1040,
  /** ER_SERVER_SHUTDOWN. */
  SERVER_SHUTDOWN: 1053,
  /** ER_ACCESS_DENIED_ERROR. */
  ACCESS_DENIED: 1045,
  /** ER_SPECIFIC_ACCESS_DENIED_ERROR: a privilege is missing. */
  SPECIFIC_ACCESS_DENIED: 1227,
  /** ER_QUERY_INTERRUPTED / killed connection. */
  QUERY_INTERRUPTED: 1317,
  /** CR_SERVER_GONE_ERROR / CR_SERVER_LOST (client-side). */
  SERVER_GONE: 2006,
  SERVER_LOST: 2013,
} as const;

const TRANSIENT_ERRNOS = new Set<number>([
  MysqlErrno.LOCK_DEADLOCK,
  MysqlErrno.LOCK_WAIT_TIMEOUT,
  MysqlErrno.TOO_MANY_CONNECTIONS,
  MysqlErrno.SERVER_SHUTDOWN,
  MysqlErrno.QUERY_INTERRUPTED,
  MysqlErrno.SERVER_GONE,
  MysqlErrno.SERVER_LOST,
  1927, // ER_CONNECTION_KILLED (MariaDB)
  1158, // ER_NET_READ_ERROR
  1159, // ER_NET_READ_INTERRUPTED
  1160, // ER_NET_ERROR_ON_WRITE
  1161, // ER_NET_WRITE_INTERRUPTED
]);

/** Node socket error codes that mean "the server went away or is not there yet". */
const TRANSIENT_SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "PROTOCOL_CONNECTION_LOST",
  "ERR_STREAM_WRITE_AFTER_END",
  "PROTOCOL_SEQUENCE_TIMEOUT",
]);

/** Classifies a mysql2/zongji error: "transient" (retry), "fatal" (stop, a person must act) or "data". */
export function mysqlErrorClass(err: unknown): "transient" | "fatal" | "data" {
  const e = err as { errno?: number; code?: string; fatal?: boolean } | null;
  if (!e || typeof e !== "object") return "fatal";
  if (typeof e.errno === "number" && TRANSIENT_ERRNOS.has(e.errno)) return "transient";
  if (typeof e.code === "string" && TRANSIENT_SOCKET_CODES.has(e.code)) return "transient";
  if (e.errno === MysqlErrno.FATAL_READING_BINLOG) return "fatal";
  if (e.errno === MysqlErrno.ACCESS_DENIED || e.errno === MysqlErrno.SPECIFIC_ACCESS_DENIED) return "fatal";
  // Server-side errors in the 1000-1999 range on a statement are about the data or the statement.
  if (typeof e.errno === "number" && e.errno >= 1000 && e.errno < 2000 && !e.fatal) return "data";
  return e.fatal ? "transient" : "fatal";
}

/** The message of any thrown value, for logs. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
