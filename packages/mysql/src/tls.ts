/**
 * TLS of a MySQL/MariaDB connection: the mode and files as MySQL's own client names them
 * (`--ssl-mode`, `--ssl-ca`, `--ssl-cert`, `--ssl-key`), resolved once, and turned into mysql2's
 * `ssl` option (which zongji's binlog connection takes too, since zongji opens it with mysql2).
 */
import { readFileSync } from "node:fs";
import { ConfigError, ErrorCode } from "@dfs/common";

/**
 * MySQL's `--ssl-mode` values that mysql2 can honour. PREFERRED (TLS when the server offers it,
 * plaintext otherwise) is left out: mysql2 cannot fall back, and a silent fallback is what a
 * TLS setting is there to prevent.
 */
export const SSL_MODES = ["DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** The resolved TLS setting of an endpoint. Files are paths; they are read when connecting. */
export interface MysqlTls {
  mode: Exclude<SslMode, "DISABLED">;
  /** CA certificate(s), PEM. Without one, VERIFY_* modes check against the system's CAs. */
  ca?: string;
  /** Client certificate and key, PEM (for users created REQUIRE X509 / SUBJECT). */
  cert?: string;
  key?: string;
}

/** TLS as written in a URL's parameters or a `tls:` config section, before resolution. */
export interface MysqlTlsInput {
  mode?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/** URL query parameters accepted, mapped to MysqlTlsInput's fields. */
export const SSL_PARAMS: Readonly<Record<string, keyof MysqlTlsInput>> = {
  "ssl-mode": "mode",
  "ssl-ca": "ca",
  "ssl-cert": "cert",
  "ssl-key": "key",
};

type Resolved = { ok: true; value: MysqlTls | undefined } | { ok: false; problem: string };

/**
 * Resolves a TLS input: as MySQL's client does, a CA without a mode means VERIFY_CA; a client
 * certificate without a mode means REQUIRED; nothing means no TLS. `names` spells the fields
 * in messages (URL parameter names or config keys).
 */
export function resolveMysqlTls(
  input: MysqlTlsInput,
  names: Record<keyof MysqlTlsInput, string> = {
    mode: "ssl-mode",
    ca: "ssl-ca",
    cert: "ssl-cert",
    key: "ssl-key",
  },
): Resolved {
  const fail = (problem: string): Resolved => ({ ok: false, problem });
  const mode = input.mode?.toUpperCase();
  if (mode !== undefined && !(SSL_MODES as readonly string[]).includes(mode)) {
    return fail(`${names.mode} must be one of ${SSL_MODES.join(", ")} (got ${JSON.stringify(input.mode)})`);
  }
  for (const f of ["ca", "cert", "key"] as const) {
    if (input[f] === "") return fail(`${names[f]} is empty (give a file path or leave it out)`);
  }
  if ((input.cert === undefined) !== (input.key === undefined)) {
    return fail(`${names.cert} and ${names.key} go together (a client certificate needs its key)`);
  }
  const hasFiles = input.ca !== undefined || input.cert !== undefined;
  if (mode === "DISABLED") {
    if (hasFiles) return fail(`${names.mode} is DISABLED but TLS files are given`);
    return { ok: true, value: undefined };
  }
  const resolved = (mode ?? (input.ca !== undefined ? "VERIFY_CA" : hasFiles ? "REQUIRED" : undefined)) as
    | MysqlTls["mode"]
    | undefined;
  if (resolved === undefined) return { ok: true, value: undefined };
  const value: MysqlTls = { mode: resolved };
  if (input.ca !== undefined) value.ca = input.ca;
  if (input.cert !== undefined) value.cert = input.cert;
  if (input.key !== undefined) value.key = input.key;
  return { ok: true, value };
}

/** mysql2's `ssl` option (an object of ca/cert/key contents and the checks to make). */
export interface MysqlSslOption {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  verifyIdentity: boolean;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      [`cannot read the MySQL TLS ${what} file ${path} (${code})`],
      {
        cause: err,
      },
    );
  }
}

/**
 * mysql2's `ssl` option for a TLS setting. REQUIRED encrypts without checking the server's
 * certificate; VERIFY_CA checks it was signed by the CA; VERIFY_IDENTITY also checks that it
 * names the host connected to (a DNS name or an IP address in its subjectAltName).
 */
export function mysqlSslOption(tls: MysqlTls): MysqlSslOption {
  const ssl: MysqlSslOption = {
    rejectUnauthorized: tls.mode !== "REQUIRED",
    verifyIdentity: tls.mode === "VERIFY_IDENTITY",
  };
  if (tls.ca) ssl.ca = readPem(tls.ca, "CA");
  if (tls.cert) ssl.cert = readPem(tls.cert, "certificate");
  if (tls.key) ssl.key = readPem(tls.key, "key");
  return ssl;
}
