import { redactText } from "./redact.js";

/**
 * Errors by meaning. Every error the project raises on purpose is one of these classes, carries a
 * code from `ErrorCode`, and keeps the underlying error as `cause`. Retry decisions are made on the
 * class and code, never on message text. Driver errors are turned into these classes where they enter
 * the project (@dfs/mysql's classifyMysqlError, the NATS adapter).
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
  /** The source refused the login (wrong user or password, host not allowed). Fix the credentials. */
  SOURCE_ACCESS_DENIED = "DFS_SOURCE_ACCESS_DENIED",
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
  /** The target refused the login (wrong user or password, host not allowed). Fix the credentials. */
  TARGET_ACCESS_DENIED = "DFS_TARGET_ACCESS_DENIED",
  /** The target user lacks a privilege for a statement (1142, 1227, ...). The DPU waits and retries. */
  TARGET_PRIVILEGES = "DFS_TARGET_PRIVILEGES",
  /** The target is read-only (read_only, super_read_only, 1290/1836/1792). The DPU waits and retries. */
  TARGET_READ_ONLY = "DFS_TARGET_READ_ONLY",
  /** A database or table a statement names does not exist (1146, 1049). */
  OBJECT_MISSING = "DFS_OBJECT_MISSING",
  /**
   * Stream messages this DPU had not applied are gone (expired by the stream's limits, deleted, or
   * the stream was re-created): the target misses changes. The DPU stops; re-snapshot, or accept
   * the loss deliberately (dpu.acceptLossThrough).
   */
  STREAM_LOST = "DFS_STREAM_LOST",
  /**
   * A binlog event cannot be decoded (or handled). Capture stops at the position instead of
   * restarting into it again; capture.skipTo passes it deliberately.
   */
  BINLOG_UNDECODABLE = "DFS_BINLOG_UNDECODABLE",
  /**
   * A statement (a row with large values) is larger than the server's max_allowed_packet. Raise
   * max_allowed_packet on that server above the largest row (up to 1G), then restart.
   */
  PACKET_TOO_LARGE = "DFS_PACKET_TOO_LARGE",
  /** An internal invariant failed: this is a bug, please report it with the log. */
  ASSERTION = "DFS_ASSERTION",
  /** The operation was stopped on request (shutdown, pause). Not an error to report. */
  ABORTED = "DFS_ABORTED",
}

export interface DfsErrorOptions {
  cause?: unknown;
  /** Structured details safe to log (never secrets). */
  details?: Record<string, unknown>;
  /** The server's error number, when a database server raised it (MySQL errno). */
  errno?: number;
}

/** Base class: a code, a message that names what is wrong, and the cause. */
export class DfsError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly errno: number | undefined;
  constructor(code: ErrorCode, message: string, options: DfsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
    this.errno = options.errno;
  }
}

/** Bad configuration or bad server settings: retrying will not help, a person must act. */
export class ConfigError extends DfsError {
  /** Each problem found, so that one start-up reports all of them at once. */
  readonly problems: string[];
  constructor(code: ErrorCode, problems: string[], options: DfsErrorOptions = {}) {
    // A problem may quote what it was given (a YAML line, a path): never a URL's password.
    const safe = problems.map(redactText);
    super(code, safe.length === 1 ? safe[0]! : `${safe.length} problems:\n- ${safe.join("\n- ")}`, options);
    this.problems = safe;
  }
}

/** A server went away or timed out: retry with backoff. */
export class TransientError extends DfsError {}

/** One change cannot be processed (decode or constraint): dead-letter it and go on. */
export class DataError extends DfsError {}

/**
 * A server refuses this user an operation: missing privileges, a read-only server, a failed login.
 * Retrying cannot help until a person acts; each service decides whether to stop (capture at
 * start-up) or to wait and retry without losing anything (the DPU on its target).
 */
export class RefusedError extends DfsError {}

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

/** The message of any thrown value, for logs. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
