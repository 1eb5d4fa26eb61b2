// Helpers for tests against the TLS stack (`dfs stack up --tls`): its files, root connections over
// TLS, free ports, HTTPS GETs with the stack's CA.
import { readFileSync } from "node:fs";
import { get } from "node:https";
import { createServer } from "node:net";
import { type StackOptions, stackUp, stackUrls, type TlsFiles, tlsStackFiles } from "@dfs/stack";
import mysql from "mysql2/promise";

const TLS: StackOptions = { tls: true, log: () => {} };

/** Starts the TLS stack if it is not up (idempotent); returns its files and URLs. */
export async function ensureTlsStack(): Promise<{ files: TlsFiles; urls: ReturnType<typeof stackUrls> }> {
  await stackUp(TLS);
  return { files: tlsStackFiles(TLS), urls: stackUrls(TLS) };
}

export const TLS_PORTS = { source: 13316, target: 13317, nats: 14232 };

/** root over TLS (checked against the stack's CA) on the TLS stack's source or target. */
export function tlsRoot(files: TlsFiles, port: number): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: "127.0.0.1",
    port,
    user: "root",
    multipleStatements: true,
    ssl: { ca: readFileSync(files.ca), rejectUnauthorized: true },
  });
}

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** GET over HTTPS, checking the server against `ca`; resolves with the status and body. */
export function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { ca }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.once("error", reject);
  });
}
