import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger };

/**
 * Keys whose values are never written to a log: passwords inside URLs are removed by
 * `redactUrl`, and these paths are censored by pino wherever they appear in a log object.
 */
const REDACT_PATHS = [
  "password",
  "*.password",
  "*.*.password",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "url",
  "*.url",
  "*.*.url",
  "authorization",
  "*.authorization",
];

export interface LogOptions {
  level?: string;
  name?: string;
  /** Write JSON lines to this file descriptor instead of stdout (2 = stderr). */
  destination?: number;
}

/** The project's logger: pino JSON lines, secrets censored. */
export function createLogger(options: LogOptions = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? process.env.DFS_LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    base: options.name ? { svc: options.name } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(opts, pino.destination({ fd: options.destination ?? 1, sync: false }));
}

/** A URL with any password removed, safe to log or to put in an error message. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
  }
}

/**
 * A URL with its credentials masked, safe for logs and error messages. Unlike a plain URL parse,
 * this also copes with malformed URLs (an unencoded "#" or "/" in a password): everything before
 * the last "@" is treated as credentials. With `maskUser`, a user name without password is masked
 * too (NATS takes a token in that place: `nats://token@host`).
 */
export function displayUrl(url: string, maskUser = false): string {
  const at = url.lastIndexOf("@");
  if (at < 0) return redactUrl(url);
  const schemeEnd = url.indexOf("://");
  const start = schemeEnd >= 0 ? schemeEnd + 3 : 0;
  if (at < start) return "(url not shown)";
  const userinfo = url.slice(start, at);
  const colon = userinfo.indexOf(":");
  const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
  const masked = colon >= 0 ? `${user}:***` : maskUser ? "***" : user;
  return redactUrl(`${url.slice(0, start)}${masked}${url.slice(at)}`);
}
