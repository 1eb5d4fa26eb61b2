import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger };

/** Keys whose values are never written to a log, wherever pino finds them in a log object. */
const SECRET_KEYS = ["password", "pass", "token", "secret", "nkeySeed", "seed", "authorization", "creds"];
/** Keys holding URLs: logged with their credentials masked, host and port kept. */
const URL_KEYS = ["url", "uri", "sourceUrl", "targetUrl", "natsUrl"];

const atDepths = (keys: readonly string[]) => keys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);
const REDACT_PATHS = [...atDepths(SECRET_KEYS), ...atDepths(URL_KEYS)];
const URL_KEY_SET = new Set(URL_KEYS);

/** pino's censor: URLs keep their host and port, anything else secret becomes "[redacted]". */
function censor(value: unknown, path: string[]): unknown {
  const key = path.at(-1) ?? "";
  if (URL_KEY_SET.has(key) && typeof value === "string") return displayUrls(value);
  return "[redacted]";
}

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
    redact: { paths: REDACT_PATHS, censor },
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
  if (at < 0) return maskCutUrl(redactUrl(url));
  const schemeEnd = url.indexOf("://");
  const start = schemeEnd >= 0 ? schemeEnd + 3 : 0;
  if (at < start) return "(url not shown)";
  const userinfo = url.slice(start, at);
  const colon = userinfo.indexOf(":");
  const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
  const masked = colon >= 0 ? `${user}:***` : maskUser ? "***" : user;
  return redactUrl(`${url.slice(0, start)}${masked}${url.slice(at)}`);
}

const TOKEN_IN_USER_SCHEMES = /^(nats|tls|ws|wss):\/\//i;

/**
 * One URL or a comma-separated list (NATS seeds), each with its credentials masked and its host
 * and port kept. A NATS URL's user name is masked too, since NATS takes a token in that place.
 * An entry with "@" but no scheme (a comma split a password) hides the whole list.
 */
export function displayUrls(urls: string): string {
  const list = urls.split(",").map((u) => u.trim());
  if (list.some((u) => u.includes("@") && !u.includes("://"))) return "(urls not shown)";
  return list.map((u) => displayUrl(u, TOKEN_IN_USER_SCHEMES.test(u))).join(",");
}

/**
 * A URL cut before its "@host" ("mysql://root:secret") reads as host and port: what follows the
 * colon is shown only when it is a port number; anything else may be a password.
 */
function maskCutUrl(url: string): string {
  const m = /^([A-Za-z][\w+.-]*:\/\/[^/:@]*):([^/?#]*)(.*)$/s.exec(url);
  if (!m || /^\d*$/.test(m[2]!) || m[2] === "***") return url;
  try {
    new URL(url);
    return url; // a URL that parses has a real port there
  } catch {
    return `${m[1]}:***${m[3]}`;
  }
}
