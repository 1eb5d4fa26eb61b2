import { readFileSync } from "node:fs";
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { ConfigError, ErrorCode } from "@dfs/common";
import type { Registry } from "prom-client";

/** What /healthz and /readyz report: live = the process works; ready = it does its job now. */
export interface Health {
  live: boolean;
  ready: boolean;
  detail: string;
}

/**
 * Health from a service's state: live unless it failed or stopped, ready while it runs or is
 * paused (a paused service works; it was asked to wait). No state yet = starting.
 */
export function healthOf(st: { state: string; lastError?: string } | null | undefined): Health {
  const state = st?.state ?? "starting";
  return {
    live: state !== "error" && state !== "stopped",
    ready: state === "running" || state === "paused",
    detail: st?.lastError ? `${state}: ${st.lastError}` : state,
  };
}

/** HTTPS: PEM files; with requireClientCert, clients need a certificate signed by ca. */
export interface HttpTls {
  cert: string;
  key: string;
  ca?: string | undefined;
  requireClientCert: boolean;
}

export interface HttpOptions {
  host?: string;
  /** Serve HTTPS (and wss:// for a WebSocket attached to the server) with these files. */
  tls?: HttpTls | undefined;
  /** 0 = any free port. */
  port: number;
  /** The config key of the port, named when it cannot be bound (e.g. "capture.http.port"). */
  portKey?: string;
  registry: Registry;
  health(): Health;
  /** Refreshes gauges from the service's state just before /metrics is rendered. */
  beforeScrape?(): void;
  /** Further routes (the monitor's page); return false to fall through to 404. */
  handle?(req: IncomingMessage, res: ServerResponse): boolean | Promise<boolean>;
}

export interface HttpEndpoint {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

function reply(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

function readPem(path: string, key: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [`${key}: cannot read the TLS ${what} ${path}`], {
      cause: err,
    });
  }
}

/** An HTTP server, or an HTTPS one when `tls` is given. */
function makeServer(o: HttpOptions, handler: RequestListener): Server {
  const t = o.tls;
  if (!t) return createServer(handler);
  const key = (o.portKey ?? "http").replace(/\.port$/, ".tls");
  return createHttpsServer(
    {
      cert: readPem(t.cert, key, "certificate"),
      key: readPem(t.key, key, "key"),
      ...(t.ca ? { ca: readPem(t.ca, key, "CA") } : {}),
      requestCert: t.requireClientCert,
      rejectUnauthorized: t.requireClientCert,
    },
    handler,
  ) as unknown as Server;
}

/** Serves /metrics (Prometheus text format), /healthz and /readyz (200 or 503, JSON body). */
export async function serveHttp(o: HttpOptions): Promise<HttpEndpoint> {
  const server = makeServer(o, (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const run = async () => {
      if (req.method === "GET" && path === "/metrics") {
        o.beforeScrape?.();
        reply(res, 200, o.registry.contentType, await o.registry.metrics());
        return;
      }
      if (req.method === "GET" && (path === "/healthz" || path === "/readyz")) {
        const h = o.health();
        const ok = path === "/healthz" ? h.live : h.ready;
        reply(res, ok ? 200 : 503, "application/json", JSON.stringify(h));
        return;
      }
      if (o.handle && (await o.handle(req, res))) return;
      reply(res, 404, "text/plain", "not found\n");
    };
    run().catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, "text/plain", `${(err as Error).message}\n`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new ConfigError(
          ErrorCode.CONFIG_INVALID,
          [
            `${o.portKey ?? "http port"}: cannot listen on ${o.host ?? "0.0.0.0"}:${o.port} (${err.code === "EADDRINUSE" ? "the port is in use; choose another or 0 for any free port" : err.message})`,
          ],
          { cause: err },
        ),
      ),
    );
    server.listen(o.port, o.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
