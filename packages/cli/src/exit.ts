/**
 * The exit codes of `dfs`, in the style of BSD's sysexits.h, and the one place that decides which
 * error ends a command with which code. Scripts and orchestrators can tell "fix the command line"
 * (64) from "fix the config or the server's settings" (78), "a server is away, retry later" (69),
 * "the data is wrong" (65) and "a bug" (70) without reading the message.
 */
import { DfsError, ErrorCode } from "@dfs/common";
import { mysqlErrorKind } from "@dfs/mysql";

export const ExitCode = {
  /** Done, or stopped cleanly on request. */
  OK: 0,
  /** EX_USAGE: the command line is wrong (unknown command or option, a bad argument value). */
  USAGE: 64,
  /** EX_DATAERR: the data is wrong: a check found drift, changes that cannot be applied (dead letters). */
  DATAERR: 65,
  /** EX_UNAVAILABLE: a server (source, target, NATS, a service's control plane) cannot be reached. */
  UNAVAILABLE: 69,
  /** EX_SOFTWARE: an internal error (a bug): please report it with the output. */
  SOFTWARE: 70,
  /** EX_CONFIG: the config file, a credential, or a server's settings or privileges are wrong. */
  CONFIG: 78,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit-code table as `dfs --help` and docs/cli.md show it. */
export const EXIT_CODES_HELP = `Exit codes:
  0   ok (or a requested stop)
  64  usage: unknown command or option, bad argument value
  65  data: drift, changes that cannot be applied (dead letters), a benchmark's count off
  69  unavailable: source, target, NATS or a service's control plane cannot be reached
  70  software: an internal error (a bug; please report it with the output)
  78  config: bad config file or credentials, wrong server settings or privileges`;

/** A bad command line found by a command itself (after parsing): exit code 64. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Every code of the project's errors, by meaning. A new ErrorCode must be placed here (type-checked). */
const BY_CODE: Record<ErrorCode, ExitCode> = {
  [ErrorCode.CONFIG_INVALID]: ExitCode.CONFIG,
  [ErrorCode.CONFIG_UNREADABLE]: ExitCode.CONFIG,
  [ErrorCode.SOURCE_SETTINGS]: ExitCode.CONFIG,
  [ErrorCode.SOURCE_PRIVILEGES]: ExitCode.CONFIG,
  [ErrorCode.SOURCE_ACCESS_DENIED]: ExitCode.CONFIG,
  [ErrorCode.SOURCE_CHANGED]: ExitCode.CONFIG,
  // The position to resume from is gone: a person picks a new one (set-position, a snapshot).
  [ErrorCode.CHECKPOINT_PURGED]: ExitCode.CONFIG,
  [ErrorCode.TARGET_ACCESS_DENIED]: ExitCode.CONFIG,
  [ErrorCode.TARGET_PRIVILEGES]: ExitCode.CONFIG,
  [ErrorCode.TARGET_READ_ONLY]: ExitCode.CONFIG,
  [ErrorCode.PACKET_TOO_LARGE]: ExitCode.CONFIG,
  [ErrorCode.SOURCE_UNAVAILABLE]: ExitCode.UNAVAILABLE,
  [ErrorCode.TARGET_UNAVAILABLE]: ExitCode.UNAVAILABLE,
  [ErrorCode.BROKER_UNAVAILABLE]: ExitCode.UNAVAILABLE,
  // Another capture holds the source: this one cannot have it now.
  [ErrorCode.LEASE_HELD]: ExitCode.UNAVAILABLE,
  [ErrorCode.JOURNAL_FULL]: ExitCode.UNAVAILABLE,
  [ErrorCode.DATA_INVALID]: ExitCode.DATAERR,
  [ErrorCode.OBJECT_MISSING]: ExitCode.DATAERR,
  [ErrorCode.STREAM_LOST]: ExitCode.DATAERR,
  [ErrorCode.BINLOG_UNDECODABLE]: ExitCode.DATAERR,
  [ErrorCode.ASSERTION]: ExitCode.SOFTWARE,
  [ErrorCode.ABORTED]: ExitCode.OK,
};

/** gRPC status names of the control plane (ControlCallError.codeName) by meaning. */
const BY_GRPC_STATUS: Record<string, ExitCode> = {
  UNAVAILABLE: ExitCode.UNAVAILABLE,
  DEADLINE_EXCEEDED: ExitCode.UNAVAILABLE,
  UNAUTHENTICATED: ExitCode.CONFIG,
  PERMISSION_DENIED: ExitCode.CONFIG,
  INVALID_ARGUMENT: ExitCode.USAGE,
  NOT_FOUND: ExitCode.USAGE,
  OUT_OF_RANGE: ExitCode.USAGE,
  FAILED_PRECONDITION: ExitCode.DATAERR,
};

/** Node socket errors that mean "nothing answers there". */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
]);

const isDfsCode = (c: unknown): c is ErrorCode =>
  typeof c === "string" && Object.values(ErrorCode).includes(c as ErrorCode);

/** The exit code a command that failed with `err` ends with. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof UsageError) return ExitCode.USAGE;
  const e = (err && typeof err === "object" ? err : {}) as {
    code?: unknown;
    codeName?: unknown;
    errno?: unknown;
    sqlState?: unknown;
  };
  // DfsError, or one that crossed a worker thread and kept only its code.
  if (err instanceof DfsError || isDfsCode(e.code)) return BY_CODE[e.code as ErrorCode] ?? ExitCode.SOFTWARE;
  if (err instanceof Error && err.name === "ControlCallError" && typeof e.codeName === "string")
    return BY_GRPC_STATUS[e.codeName] ?? ExitCode.SOFTWARE;
  if (typeof e.code === "string" && UNREACHABLE.has(e.code)) return ExitCode.UNAVAILABLE;
  // A mysql2 error that reached the top unclassified: by its error number.
  if (typeof e.errno === "number" && e.errno > 0 && typeof e.sqlState === "string") {
    switch (mysqlErrorKind(err)) {
      case "transient":
        return ExitCode.UNAVAILABLE;
      case "auth":
      case "permission":
      case "read-only":
        return ExitCode.CONFIG;
      case "missing":
      case "data":
        return ExitCode.DATAERR;
      case "fatal":
        return ExitCode.SOFTWARE;
    }
  }
  return ExitCode.SOFTWARE;
}

/** The message printed for `err`: the project's errors name their code; a bug shows its stack. */
export function errorReport(err: unknown): string {
  if (err instanceof DfsError) return `${err.code}: ${err.message}`;
  const code = exitCodeOf(err);
  if (code !== ExitCode.SOFTWARE) return err instanceof Error ? err.message : String(err);
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return `internal error (please report it with this output): ${text}`;
}
