/**
 * What a MySQL/MariaDB error means for us, decided by its error number (and, for socket errors,
 * the driver's code), never by its text. Every error that comes out of a session of this package
 * is one of the project's classes (@dfs/common), so services decide on class and code alone.
 */
import {
  ConfigError,
  DataError,
  type DfsError,
  ErrorCode,
  errorMessage,
  RefusedError,
  TransientError,
} from "@dfs/common";

export type MysqlErrorKind =
  /** The connection or the transaction failed for a passing reason: retry. */
  | "transient"
  /** The login was refused (credentials, host not allowed, expired password). */
  | "auth"
  /** A privilege is missing for this statement. */
  | "permission"
  /** The server (or the transaction) is read-only. */
  | "read-only"
  /** The database or table named does not exist. */
  | "missing"
  /** The statement's data is refused (constraint, value out of range, ...): this change, not the server. */
  | "data"
  /** Anything else: a bug or a state a person must look at. */
  | "fatal";

/** Error numbers with a known meaning. */
export const MysqlErrno = {
  ACCESS_DENIED: 1045,
  DB_ACCESS_DENIED: 1044,
  TABLE_ACCESS_DENIED: 1142,
  COLUMN_ACCESS_DENIED: 1143,
  SPECIFIC_ACCESS_DENIED: 1227,
  UNKNOWN_DATABASE: 1049,
  NO_SUCH_TABLE: 1146,
  PARSE_ERROR: 1064,
  OPTION_PREVENTS_STATEMENT: 1290,
  READ_ONLY_MODE: 1836,
  READ_ONLY_TRANSACTION: 1792,
  LOCK_DEADLOCK: 1213,
  LOCK_WAIT_TIMEOUT: 1205,
  FATAL_READING_BINLOG: 1236,
} as const;

const BY_ERRNO = new Map<number, MysqlErrorKind>([
  // transient
  [1213, "transient"], // ER_LOCK_DEADLOCK
  [1205, "transient"], // ER_LOCK_WAIT_TIMEOUT
  [1040, "transient"], // ER_CON_COUNT_ERROR (too many connections)
  [1053, "transient"], // ER_SERVER_SHUTDOWN
  [1317, "transient"], // ER_QUERY_INTERRUPTED
  [1927, "transient"], // ER_CONNECTION_KILLED (MariaDB)
  [1158, "transient"], // ER_NET_READ_ERROR
  [1159, "transient"], // ER_NET_READ_INTERRUPTED
  [1160, "transient"], // ER_NET_ERROR_ON_WRITE
  [1161, "transient"], // ER_NET_WRITE_INTERRUPTED
  [1152, "transient"], // ER_ABORTING_CONNECTION
  [1637, "transient"], // ER_TOO_MANY_CONCURRENT_TRXS
  [1615, "transient"], // ER_NEED_REPREPARE
  [4031, "transient"], // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
  [2002, "transient"], // CR_CONNECTION_ERROR
  [2003, "transient"], // CR_CONN_HOST_ERROR
  [2005, "transient"], // CR_UNKNOWN_HOST
  [2006, "transient"], // CR_SERVER_GONE_ERROR
  [2013, "transient"], // CR_SERVER_LOST
  [2055, "transient"], // CR_SERVER_LOST_EXTENDED
  // auth
  [1045, "auth"], // ER_ACCESS_DENIED_ERROR
  [1698, "auth"], // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
  [1129, "auth"], // ER_HOST_IS_BLOCKED
  [1130, "auth"], // ER_HOST_NOT_PRIVILEGED
  [1251, "auth"], // ER_NOT_SUPPORTED_AUTH_MODE
  [3159, "auth"], // ER_SECURE_TRANSPORT_REQUIRED (MySQL 8, require_secure_transport; MariaDB says 1045)
  [1862, "auth"], // ER_MUST_CHANGE_PASSWORD_LOGIN
  [1820, "auth"], // ER_MUST_CHANGE_PASSWORD
  [2059, "auth"], // CR_AUTH_PLUGIN_CANNOT_LOAD
  // permission
  [1044, "permission"], // ER_DBACCESS_DENIED_ERROR
  [1142, "permission"], // ER_TABLEACCESS_DENIED_ERROR
  [1143, "permission"], // ER_COLUMNACCESS_DENIED_ERROR
  [1227, "permission"], // ER_SPECIFIC_ACCESS_DENIED_ERROR
  [1370, "permission"], // ER_PROCACCESS_DENIED_ERROR
  // read-only
  [1290, "read-only"], // ER_OPTION_PREVENTS_STATEMENT (--read-only, --super-read-only)
  [1836, "read-only"], // ER_READ_ONLY_MODE
  [1792, "read-only"], // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
  [1874, "read-only"], // ER_INNODB_READ_ONLY
  [1036, "read-only"], // ER_OPEN_AS_READONLY
  // missing
  [1146, "missing"], // ER_NO_SUCH_TABLE
  [1049, "missing"], // ER_BAD_DB_ERROR
  // fatal
  [1236, "fatal"], // ER_MASTER_FATAL_ERROR_READING_BINLOG (purged or invalid position)
]);

/** Node socket and mysql2 protocol codes that mean "the server went away or is not there yet". */
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ERR_STREAM_WRITE_AFTER_END",
  "ERR_SOCKET_CLOSED",
]);

interface DriverError {
  errno?: number;
  code?: string;
  fatal?: boolean;
  sqlState?: string;
}

/** The meaning of a driver error (mysql2 or zongji). */
export function mysqlErrorKind(err: unknown): MysqlErrorKind {
  const e = (err && typeof err === "object" ? err : {}) as DriverError;
  const known = typeof e.errno === "number" ? BY_ERRNO.get(e.errno) : undefined;
  if (known) return known;
  if (typeof e.code === "string" && TRANSIENT_CODES.has(e.code)) return "transient";
  // Server errors on a statement (1000-1999, and MySQL 8's 3000+) are about that statement and its
  // data when the connection survived them; client errors (2000-2999) are about the connection.
  if (typeof e.errno === "number" && !e.fatal && ((e.errno >= 1000 && e.errno < 2000) || e.errno >= 3000))
    return "data";
  if (e.fatal) return "transient"; // the connection is gone: a new one may work
  return "fatal";
}

export type MysqlRole = "source" | "target";

const CODES: Record<MysqlRole, Record<"transient" | "auth" | "permission" | "read-only", ErrorCode>> = {
  source: {
    transient: ErrorCode.SOURCE_UNAVAILABLE,
    auth: ErrorCode.SOURCE_ACCESS_DENIED,
    permission: ErrorCode.SOURCE_PRIVILEGES,
    "read-only": ErrorCode.SOURCE_PRIVILEGES,
  },
  target: {
    transient: ErrorCode.TARGET_UNAVAILABLE,
    auth: ErrorCode.TARGET_ACCESS_DENIED,
    permission: ErrorCode.TARGET_PRIVILEGES,
    "read-only": ErrorCode.TARGET_READ_ONLY,
  },
};

const HINTS: Partial<Record<MysqlErrorKind, string>> = {
  auth: "check the user and password in the URL",
  permission: "grant the privilege named",
  "read-only": "the server refuses writes (read_only); waiting for it to accept them",
};

/**
 * The project's error for a driver error: TransientError (retry), RefusedError (login, privileges,
 * read-only: a person must act), DataError (this statement's data; OBJECT_MISSING for a missing
 * table or database) or ConfigError (anything else: stop and report). `where` names the server
 * ("source 127.0.0.1:3306"); the message never holds a password or the statement's values.
 * Errors that are already the project's pass through unchanged.
 */
export function classifyMysqlError(err: unknown, role: MysqlRole, where: string): DfsError {
  if (isDfsError(err)) return err;
  const kind = mysqlErrorKind(err);
  const e = (err && typeof err === "object" ? err : {}) as DriverError;
  // Node's socket errors carry negative errnos (-111 for ECONNREFUSED): only the server's count.
  const errno = typeof e.errno === "number" && e.errno > 0 ? e.errno : undefined;
  const hint = HINTS[kind];
  const message = `${where}: ${errorMessage(err)}${errno ? ` (errno ${errno})` : ""}${hint ? `; ${hint}` : ""}`;
  const options = { cause: err, errno, details: { kind, errno, sqlState: e.sqlState } };
  switch (kind) {
    case "transient":
      return new TransientError(CODES[role].transient, message, options);
    case "auth":
    case "permission":
    case "read-only":
      return new RefusedError(CODES[role][kind], message, options);
    case "missing":
      return new DataError(ErrorCode.OBJECT_MISSING, message, options);
    case "data":
      return new DataError(ErrorCode.DATA_INVALID, message, options);
    case "fatal":
      return new ConfigError(
        errno === MysqlErrno.FATAL_READING_BINLOG ? ErrorCode.CHECKPOINT_PURGED : ErrorCode.CONFIG_INVALID,
        [message],
        options,
      );
  }
}

function isDfsError(err: unknown): err is DfsError {
  return (
    err instanceof Error && typeof (err as DfsError).code === "string" && /^DFS_/.test((err as DfsError).code)
  );
}

/** The kind recorded on an error classified here (undefined for others). */
export function kindOf(err: unknown): MysqlErrorKind | undefined {
  return (err as DfsError | undefined)?.details?.kind as MysqlErrorKind | undefined;
}
