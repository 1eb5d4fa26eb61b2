/**
 * The TLS stack's secrets: a CA of its own, a server certificate (localhost and 127.0.0.1) for
 * MariaDB and NATS, a client certificate, and NATS credentials (a password user and an nkey user).
 * Made once with openssl under <dir>/tls and kept, so restarts reuse them.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { runLogged } from "./process.js";

/** Every file of the TLS stack's secrets (paths). */
export interface TlsFiles {
  dir: string;
  /** The stack's CA certificate: what clients verify the servers against. */
  ca: string;
  serverCert: string;
  serverKey: string;
  /** A client certificate signed by the CA (NATS requires one; MariaDB users REQUIRE X509 accept it). */
  clientCert: string;
  clientKey: string;
  /** NATS user "dfs" and the file holding its password. */
  natsUser: string;
  natsPasswordFile: string;
  /** A NATS user nkey seed (SU...) the server knows by its public key. */
  nkeySeedFile: string;
  nkeyPublicFile: string;
  /** nats-server's config file (TLS, users, JetStream). */
  natsConf: string;
}

export function tlsFiles(stackDir: string): TlsFiles {
  const dir = join(stackDir, "tls");
  return {
    dir,
    ca: join(dir, "ca.pem"),
    serverCert: join(dir, "server.pem"),
    serverKey: join(dir, "server-key.pem"),
    clientCert: join(dir, "client.pem"),
    clientKey: join(dir, "client-key.pem"),
    natsUser: "dfs",
    natsPasswordFile: join(dir, "nats-password"),
    nkeySeedFile: join(dir, "nats-nkey.seed"),
    nkeyPublicFile: join(dir, "nats-nkey.pub"),
    natsConf: join(dir, "nats.conf"),
  };
}

const OPENSSL = "/usr/bin/openssl";
const DAYS = "3650";

/** Signs a certificate for `cn` with the CA, with the given extensions. */
function issue(scratch: string, name: string, cn: string, ext: string, log: string): void {
  const key = join(scratch, `${name}-key.pem`);
  const csr = join(scratch, `${name}.csr`);
  const extFile = join(scratch, `${name}.ext`);
  writeFileSync(extFile, ext);
  runLogged(
    OPENSSL,
    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", `/CN=${cn}`],
    log,
  );
  runLogged(
    OPENSSL,
    [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      join(scratch, "ca.pem"),
      "-CAkey",
      join(scratch, "ca-key.pem"),
    ].concat(["-CAcreateserial", "-out", join(scratch, `${name}.pem`), "-days", DAYS, "-extfile", extFile]),
    log,
  );
  rmSync(csr);
  rmSync(extFile);
}

/**
 * Makes the CA, certificates and NATS credentials unless they exist. Built in a scratch directory
 * and renamed into place, so an interrupted run never leaves half a set.
 */
export function ensureTlsFiles(files: TlsFiles, stackDir: string, logLine: (line: string) => void): void {
  if (existsSync(files.dir)) return;
  const log = join(stackDir, "tls-init.log");
  const scratch = `${files.dir}.init`;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  logLine(`tls: making a CA, server and client certificates under ${files.dir}`);
  runLogged(
    OPENSSL,
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(scratch, "ca-key.pem")]
      .concat(["-out", join(scratch, "ca.pem"), "-days", DAYS, "-subj", "/CN=dfs stack CA"])
      .concat([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ]),
    log,
  );
  const leaf = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n";
  issue(
    scratch,
    "server",
    "localhost",
    `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n`,
    log,
  );
  issue(scratch, "client", "dfs-client", `${leaf}extendedKeyUsage=clientAuth\n`, log);
  const at = (f: string) => join(scratch, f.slice(files.dir.length + 1));
  writeFileSync(at(files.natsPasswordFile), `${randomBytes(18).toString("base64url")}\n`);
  const user = createUser();
  writeFileSync(at(files.nkeySeedFile), `${new TextDecoder().decode(user.getSeed())}\n`);
  writeFileSync(at(files.nkeyPublicFile), `${user.getPublicKey()}\n`);
  for (const secret of ["ca-key.pem", "server-key.pem", "client-key.pem"])
    chmodSync(join(scratch, secret), 0o600);
  chmodSync(at(files.natsPasswordFile), 0o600);
  chmodSync(at(files.nkeySeedFile), 0o600);
  renameSync(scratch, files.dir);
}

/**
 * nats-server's config: TLS required of every client, with a certificate signed by the stack's CA
 * (verify), and one of two users: "dfs" with a password, or the nkey user.
 */
export function natsConfig(
  files: TlsFiles,
  o: { host: string; port: number; storeDir: string; password: string; nkey: string },
): string {
  const q = JSON.stringify;
  return [
    `listen: ${q(`${o.host}:${o.port}`)}`,
    `jetstream { store_dir: ${q(o.storeDir)} }`,
    "tls {",
    `  cert_file: ${q(files.serverCert)}`,
    `  key_file: ${q(files.serverKey)}`,
    `  ca_file: ${q(files.ca)}`,
    "  verify: true",
    "  timeout: 5",
    "}",
    "authorization {",
    "  users = [",
    `    { user: ${q(files.natsUser)}, password: ${q(o.password)} }`,
    `    { nkey: ${q(o.nkey)} }`,
    "  ]",
    "}",
    "",
  ].join("\n");
}
