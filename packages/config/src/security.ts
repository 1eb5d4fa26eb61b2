/**
 * The config's TLS and authentication parts: TLS of the MySQL connections (source.tls,
 * target.tls), NATS authentication and TLS, and the TLS and bind address of the servers dfs runs
 * itself (the gRPC control plane, the monitor). Certificates and keys are file paths, checked
 * readable when the config is loaded and read when connecting.
 */
import { type MysqlEndpoint, parseMysqlUrl, resolveMysqlTls, urlHasTlsParams } from "@dfs/mysql";
import * as z from "zod";
import { readableFile, secret, show } from "./fields.js";

/** A host name or IP address to bind to. */
const BIND_HOST = /^[A-Za-z0-9_.-]+$|^[0-9A-Fa-f:.]+$/;

export function bindHost() {
  return z
    .string()
    .regex(BIND_HOST, { error: (iss) => `must be a host name or IP address (got ${show(iss.input)})` });
}

/** `source.tls` / `target.tls`: MySQL's --ssl-mode, --ssl-ca, --ssl-cert, --ssl-key. */
export const mysqlTlsSchema = z
  .strictObject({
    mode: z
      .string()
      .optional()
      .describe(
        "DISABLED, REQUIRED (encrypt, no certificate check), VERIFY_CA (the server's certificate is signed by ca), VERIFY_IDENTITY (and names the host); default VERIFY_CA with ca, else REQUIRED",
      ),
    ca: readableFile()
      .optional()
      .describe("CA certificate file (PEM) the server's certificate is checked against"),
    cert: readableFile().optional().describe("Client certificate file (PEM), for users created REQUIRE X509"),
    key: readableFile().optional().describe("Private key file (PEM) of the client certificate"),
  })
  .superRefine((t, ctx) => {
    const r = resolveMysqlTls(t, { mode: "mode", ca: "ca", cert: "cert", key: "key" });
    if (!r.ok) ctx.addIssue({ code: "custom", message: r.problem });
  });

const certAndKey = (t: { cert?: string | undefined; key?: string | undefined }, ctx: z.RefinementCtx) => {
  if ((t.cert === undefined) !== (t.key === undefined)) {
    const missing = t.cert === undefined ? "cert" : "key";
    ctx.addIssue({
      code: "custom",
      path: [missing],
      message: "is required with a client certificate (cert and key go together)",
    });
  }
};

/** `nats.tls`: TLS to NATS (also implied by a `tls://` URL). */
export const natsTlsSchema = z
  .strictObject({
    ca: readableFile()
      .optional()
      .describe("CA certificate file (PEM) the server's certificate is checked against"),
    cert: readableFile()
      .optional()
      .describe("Client certificate file (PEM), for a server that verifies clients"),
    key: readableFile().optional().describe("Private key file (PEM) of the client certificate"),
  })
  .superRefine(certAndKey);

/** The authentication fields of the `nats` section. */
export const natsAuthFields = {
  token: secret().optional().describe("NATS auth token (secret)"),
  user: z.string().min(1, "must not be empty").optional().describe("NATS user name (with nats.password)"),
  password: secret().optional().describe("NATS password (secret)"),
  nkeySeed: secret()
    .refine((s) => /^SU[A-Z2-7]{50,}$/.test(s), {
      message: "must be a user nkey seed (starts with SU; the value is not shown)",
    })
    .optional()
    .describe("NATS user nkey seed, SU... (secret); the server knows its public key"),
  credsFile: readableFile()
    .optional()
    .describe("NATS credentials file (user JWT and nkey seed, as written by nsc) for decentralised auth"),
};

/** NATS takes one way of authenticating; a password needs its user. */
export function natsAuthRule(
  n: {
    token?: string | undefined;
    user?: string | undefined;
    password?: string | undefined;
    nkeySeed?: string | undefined;
    credsFile?: string | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const methods = (["token", "user", "nkeySeed", "credsFile"] as const).filter((k) => n[k] !== undefined);
  if (methods.length > 1) {
    const message = `only one of nats.token, nats.user (+ password), nats.nkeySeed, nats.credsFile may be set (got ${methods.join(", ")})`;
    ctx.addIssue({ code: "custom", path: [methods[1]!], message });
  }
  if (n.password !== undefined && n.user === undefined) {
    ctx.addIssue({ code: "custom", path: ["user"], message: "is required with nats.password" });
  }
}

/** TLS of a server dfs runs (control plane, monitor); with `requireClientCert`, mutual TLS. */
export const serverTlsSchema = z
  .strictObject({
    cert: readableFile().describe("Server certificate file (PEM), with the chain if any"),
    key: readableFile().describe("Private key file (PEM) of the server certificate"),
    ca: readableFile()
      .optional()
      .describe(
        "CA certificate file (PEM) client certificates are checked against; required with requireClientCert",
      ),
    requireClientCert: z
      .boolean()
      .default(false)
      .describe("Mutual TLS: refuse clients without a certificate signed by ca"),
  })
  .superRefine((t, ctx) => {
    if (t.requireClientCert && t.ca === undefined)
      ctx.addIssue({ code: "custom", path: ["ca"], message: "is required when requireClientCert is true" });
  });

/** How dfs's own clients (dfs ctl, dfs snapshot, the monitor) reach a control plane over TLS. */
export const clientTlsSchema = z
  .strictObject({
    ca: readableFile()
      .optional()
      .describe(
        "CA certificate file (PEM) the servers' certificates are checked against; default control.tls.ca, else the system's CAs",
      ),
    cert: readableFile()
      .optional()
      .describe("Client certificate file (PEM), presented to servers that require one"),
    key: readableFile().optional().describe("Private key file (PEM) of the client certificate"),
    serverName: z
      .string()
      .min(1)
      .optional()
      .describe("Name the servers' certificates must carry, when it differs from the host dialled"),
  })
  .superRefine(certAndKey);

/** The resolved TLS a control-plane client uses. */
export interface ClientTls {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

/** The address servers bind when the config names none: loopback unless they are secured by TLS. */
export function defaultBindHost(tls: unknown): string {
  return tls === undefined ? "127.0.0.1" : "0.0.0.0";
}

/** control.client, completed from control.tls: TLS for clients when either is set. */
export function clientTlsOf(control: {
  tls?: { ca?: string | undefined } | undefined;
  client?:
    | {
        ca?: string | undefined;
        cert?: string | undefined;
        key?: string | undefined;
        serverName?: string | undefined;
      }
    | undefined;
}): ClientTls | undefined {
  if (!control.tls && !control.client) return undefined;
  const out: ClientTls = {};
  const ca = control.client?.ca ?? control.tls?.ca;
  if (ca) out.ca = ca;
  if (control.client?.cert) out.cert = control.client.cert;
  if (control.client?.key) out.key = control.client.key;
  if (control.client?.serverName) out.serverName = control.client.serverName;
  return out;
}

/** TLS given both in the URL's parameters and in the `tls` section is refused: which would win is unclear. */
export function oneTlsSetting(m: { url: string; tls?: unknown }, ctx: z.RefinementCtx): void {
  if (m.tls !== undefined && urlHasTlsParams(m.url)) {
    const message = "TLS is set both here and in the URL's ssl-* parameters; use one of them";
    ctx.addIssue({ code: "custom", path: ["tls"], message });
  }
}

/** The endpoint every connection is opened from: the URL, its password and TLS from the config keys. */
export function endpointOf(m: {
  url: string;
  password?: string | undefined;
  tls?:
    | {
        mode?: string | undefined;
        ca?: string | undefined;
        cert?: string | undefined;
        key?: string | undefined;
      }
    | undefined;
}): MysqlEndpoint {
  const e = parseMysqlUrl(m.url);
  if (m.password !== undefined) e.password = m.password;
  if (m.tls) {
    const r = resolveMysqlTls(m.tls);
    if (r.ok && r.value) e.tls = r.value;
    else delete e.tls;
  }
  return e;
}
