/**
 * The monitor's WebSocket (path /ws, on the same HTTP server as the page): token login, then a
 * state message every poll and control calls on the page's behalf. Protocol in docs/monitor.md.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import { errorMessage, type Logger } from "@dfs/common";
import type { MonitorMetrics } from "@dfs/metrics";
import { type WebSocket, WebSocketServer } from "ws";
import { CALL_METHODS, type CallMethod, type Poller } from "./poller.js";
import type { MonitorState } from "./view.js";

export interface HubOptions {
  server: Server;
  /** control.token: what the browser must send in its login message. */
  token: string | undefined;
  poller: Pick<Poller, "subscribe" | "latest" | "points" | "call">;
  pollIntervalMs: number;
  log: Logger;
  metrics?: MonitorMetrics;
  /** An unauthenticated socket is closed after this long (default 60 s). */
  loginTimeoutMs?: number;
  /** Wrong tokens one socket may send before it is closed (default 5). */
  maxFailedLogins?: number;
}

export interface Hub {
  /** Sockets open, and those logged in. */
  clients(): { open: number; authenticated: number };
  close(): Promise<void>;
}

export const WS_PATH = "/ws";
/** A browser that falls this far behind misses states until it catches up. */
const MAX_BUFFERED = 4 * 1024 * 1024;

const digest = (s: string) => createHash("sha256").update(s).digest();

export const NO_TOKEN_MESSAGE =
  "the monitor has no control token configured (control.token or DFS_CONTROL_TOKEN), so nobody can log in";

interface Client {
  ws: WebSocket;
  authenticated: boolean;
  failures: number;
  remote: string;
}

export function attachHub(o: HubOptions): Hub {
  const expected = o.token ? digest(o.token) : null;
  const wss = new WebSocketServer({ server: o.server, path: WS_PATH, maxPayload: 64 * 1024 });
  const clients = new Set<Client>();
  const loginTimeout = o.loginTimeoutMs ?? 60_000;
  const maxFailures = o.maxFailedLogins ?? 5;

  const send = (c: Client, msg: unknown) => {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(msg));
  };
  const gauge = () => o.metrics?.clients.set(clients.size);

  const unsubscribe = o.poller.subscribe((state: MonitorState) => {
    const text = JSON.stringify({ type: "state", state });
    for (const c of clients)
      if (c.authenticated && c.ws.readyState === c.ws.OPEN && c.ws.bufferedAmount < MAX_BUFFERED)
        c.ws.send(text);
  });

  const login = (c: Client, token: unknown) => {
    if (!expected) {
      o.log.warn({ remote: c.remote }, "monitor login refused: no control token configured");
      send(c, { type: "login", ok: false, message: NO_TOKEN_MESSAGE });
      return;
    }
    const given = typeof token === "string" ? token : "";
    if (!timingSafeEqual(digest(given), expected)) {
      c.failures++;
      o.log.warn({ remote: c.remote, failures: c.failures }, "monitor login refused: wrong token");
      send(c, { type: "login", ok: false, message: "wrong token" });
      if (c.failures >= maxFailures) c.ws.close(1008, "too many wrong tokens");
      return;
    }
    c.authenticated = true;
    o.log.info({ remote: c.remote }, "monitor login");
    send(c, { type: "login", ok: true, pollIntervalMs: o.pollIntervalMs, history: o.poller.points() });
    const state = o.poller.latest();
    if (state) send(c, { type: "state", state });
  };

  const call = async (c: Client, msg: Record<string, unknown>) => {
    const id = typeof msg.id === "string" || typeof msg.id === "number" ? msg.id : null;
    const reply = (ok: boolean, message: string) => send(c, { type: "result", id, ok, message });
    const method = msg.method as CallMethod;
    if (typeof msg.service !== "string" || !CALL_METHODS.includes(method)) {
      reply(false, `a call needs a service name and a method (${CALL_METHODS.join(", ")})`);
      return;
    }
    const args = msg.args && typeof msg.args === "object" ? (msg.args as Record<string, unknown>) : {};
    try {
      const message = await o.poller.call(msg.service, method, args);
      o.log.info({ service: msg.service, method, remote: c.remote }, "control call from the monitor page");
      reply(true, message);
    } catch (err) {
      o.log.warn({ service: msg.service, method, err: errorMessage(err) }, "control call failed");
      reply(false, errorMessage(err));
    }
  };

  wss.on("connection", (ws: WebSocket, req: IncomingMessage) => {
    const c: Client = { ws, authenticated: false, failures: 0, remote: req.socket.remoteAddress ?? "" };
    clients.add(c);
    gauge();
    const timer = setTimeout(() => {
      if (!c.authenticated) ws.close(1008, "no login");
    }, loginTimeout);
    let alive = true;
    ws.on("pong", () => {
      alive = true;
    });
    const ping = setInterval(() => {
      if (!alive) ws.terminate();
      alive = false;
      ws.ping();
    }, 30_000);
    ws.on("close", () => {
      clearTimeout(timer);
      clearInterval(ping);
      clients.delete(c);
      gauge();
    });
    ws.on("error", (err) => o.log.debug({ err: errorMessage(err) }, "monitor socket error"));
    ws.on("message", (data, isBinary) => {
      let msg: Record<string, unknown>;
      try {
        if (isBinary) throw new Error("binary");
        const parsed: unknown = JSON.parse(data.toString());
        if (!parsed || typeof parsed !== "object") throw new Error("not an object");
        msg = parsed as Record<string, unknown>;
      } catch {
        send(c, { type: "error", message: "messages are JSON objects with a type" });
        return;
      }
      if (msg.type === "login") login(c, msg.token);
      else if (!c.authenticated) send(c, { type: "error", message: "log in first" });
      else if (msg.type === "call") void call(c, msg);
      else send(c, { type: "error", message: `unknown message type ${JSON.stringify(msg.type)}` });
    });
  });

  return {
    clients: () => ({
      open: clients.size,
      authenticated: [...clients].filter((c) => c.authenticated).length,
    }),
    close: () =>
      new Promise<void>((resolve) => {
        unsubscribe();
        for (const c of clients) c.ws.terminate();
        wss.close(() => resolve());
      }),
  };
}
