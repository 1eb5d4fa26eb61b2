/**
 * MySQL/MariaDB connection URLs (`mysql://user:password@host:port/database`), parsed once into an
 * endpoint that every connection of the project (mysql2 sessions, the binlog reader) is opened from.
 */
import { ConfigError, displayUrl, ErrorCode } from "@dfs/common";
import { type MysqlTls, type MysqlTlsInput, resolveMysqlTls, SSL_PARAMS } from "./tls.js";

/** A parsed `mysql://` or `mariadb://` URL, user and password percent-decoded. */
export interface MysqlEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The database named in the URL path, if any. */
  database?: string;
  /** TLS, from the URL's `ssl-*` parameters or the config's `tls` section; absent = plaintext. */
  tls?: MysqlTls;
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

/** The `ssl-*` parameters of a URL; any other parameter is an error naming it. */
function tlsParams(
  params: URLSearchParams,
): { ok: true; value: MysqlTls | undefined } | { ok: false; problem: string } {
  const input: MysqlTlsInput = {};
  const allowed = Object.keys(SSL_PARAMS).join(", ");
  for (const [name, v] of params) {
    const field = SSL_PARAMS[name.toLowerCase()];
    if (!field) {
      const problem = `has an unknown query parameter ${JSON.stringify(name)} (allowed: ${allowed}; ${ENCODE_HINT})`;
      return { ok: false, problem };
    }
    if (input[field] !== undefined) return { ok: false, problem: `has the query parameter ${name} twice` };
    input[field] = v;
  }
  const r = resolveMysqlTls(input);
  return r.ok ? r : { ok: false, problem: `has a bad TLS parameter: ${r.problem}` };
}

/** Whether a URL sets any TLS parameter (so that a config's `tls` section would conflict). */
export function urlHasTlsParams(url: string): boolean {
  try {
    return [...new URL(url).searchParams.keys()].some((k) => SSL_PARAMS[k.toLowerCase()] !== undefined);
  } catch {
    return false;
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
  const tls = tlsParams(u.searchParams);
  if (!tls.ok) return fail(tls.problem);
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
  if (tls.value) value.tls = tls.value;
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
