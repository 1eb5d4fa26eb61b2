/**
 * MySQL/MariaDB connection URLs (`mysql://user:password@host:port/database`), parsed once into an
 * endpoint that every connection of the project (mysql2 sessions, the binlog reader) is opened from.
 */
import { ConfigError, displayUrl, ErrorCode } from "@dfs/common";

/** A parsed `mysql://` or `mariadb://` URL, user and password percent-decoded. */
export interface MysqlEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The database named in the URL path, if any. */
  database?: string;
}

/** Port used when the URL names none. */
export const DEFAULT_MYSQL_PORT = 3306;

const ENCODE_HINT =
  'percent-encode "@", ":", "/", "?" and "#" in the user name and password (e.g. "#" as %23)';

function decode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

type Parsed = { ok: true; value: MysqlEndpoint } | { ok: false; problem: string };

function parse(url: string): Parsed {
  const fail = (problem: string): Parsed => ({ ok: false, problem });
  if (url.trim() === "") return fail("is empty (use mysql://user:password@host:3306/database)");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme !== "mysql" && scheme !== "mariadb") {
    return fail("must start with mysql:// or mariadb://");
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail(`is not a valid URL; check the port (1-65535) and ${ENCODE_HINT}`);
  }
  if (u.hash !== "") return fail(`has a "#" fragment; ${ENCODE_HINT}`);
  if (u.search !== "") return fail(`has query parameters, which are not supported; ${ENCODE_HINT}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "") return fail("has no host (use mysql://user:password@host:3306/database)");
  const port = u.port === "" ? DEFAULT_MYSQL_PORT : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return fail("has a port outside 1-65535");
  const user = decode(u.username);
  if (user === undefined) return fail("has a user name with invalid percent-encoding");
  if (user === "") return fail("has no user name (use mysql://user:password@host:3306/database)");
  const password = decode(u.password);
  if (password === undefined) return fail("has a password with invalid percent-encoding");
  const path = u.pathname.replace(/^\//, "");
  const value: MysqlEndpoint = { host, port, user, password };
  if (path !== "") {
    const database = decode(path);
    if (database === undefined || database.includes("/")) {
      return fail('has a path that is not a single database name (use ".../database")');
    }
    value.database = database;
  }
  return { ok: true, value };
}

/**
 * What is wrong with a MySQL URL, or undefined when it is fine. The text never contains the URL's
 * password.
 */
export function mysqlUrlProblem(url: string): string | undefined {
  const r = parse(url);
  return r.ok ? undefined : r.problem;
}

/**
 * Parses `mysql://user:password@host:port/database` (also `mariadb://`). User and password are
 * percent-decoded; the port defaults to 3306; the database is optional. Throws
 * ConfigError(CONFIG_INVALID) naming the problem, with the URL shown without its password.
 */
export function parseMysqlUrl(url: string): MysqlEndpoint {
  const r = parse(url);
  if (!r.ok) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [`MySQL URL ${displayUrl(url)} ${r.problem}`]);
  }
  return r.value;
}

/** "host:port", for messages (never the user or password). */
export function endpointName(e: MysqlEndpoint): string {
  return e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}
