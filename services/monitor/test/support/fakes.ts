// Helpers of the monitor's tests: stand-in services with a real gRPC control plane and /metrics,
// and a WebSocket client that collects messages. Not part of the service's API.

import { createLogger, waitFor } from "@dfs/common";
import { ActivityLog, type ControlServer, type ServiceKind, serveControl } from "@dfs/control";
import { captureMetrics, createRegistry, dpuMetrics, type HttpEndpoint, serveHttp } from "@dfs/metrics";
import type { DlqEntry, StageStatus } from "@dfs/proto";
import { WebSocket } from "ws";

export const quiet = createLogger({ level: process.env.DFS_TEST_LOG ?? "silent" });

/** A service that answers the control plane like capture or the DPU, from fields a test sets. */
export interface FakeService {
  kind: ServiceKind;
  grpc: string;
  http: string;
  status: StageStatus;
  activity: ActivityLog;
  dlq: DlqEntry[];
  calls: { method: string; args: unknown }[];
  capture: ReturnType<typeof captureMetrics> | null;
  dpu: ReturnType<typeof dpuMetrics> | null;
  /** Stops the gRPC server (the service becomes unreachable); start() brings it back on the same port. */
  stopGrpc(): Promise<void>;
  startGrpc(): Promise<void>;
  close(): Promise<void>;
}

export async function fakeService(kind: ServiceKind, token: string): Promise<FakeService> {
  const registry = createRegistry(kind, "src1", true);
  const capture = kind === "capture" ? captureMetrics(registry) : null;
  const dpu = kind === "dpu" ? dpuMetrics(registry) : null;
  const http: HttpEndpoint = await serveHttp({
    port: 0,
    host: "127.0.0.1",
    registry,
    health: () => ({ live: true, ready: true, detail: "" }),
  });
  const f: FakeService = {
    kind,
    grpc: "",
    http: `http://127.0.0.1:${http.port}`,
    status: {
      service: kind,
      state: "running",
      sourceId: "src1",
      position: kind === "capture" ? "mysql-bin.000003:4242" : "mysql-bin.000003:4000",
      streamSeq: kind === "capture" ? 0n : 17n,
      sourcePosition: undefined,
      gtid: "",
      lagSeconds: 0.25,
      backlog: 3n,
      backlogBytes: 1024n,
      changesTotal: 10n,
      lastError: "",
      details: { inFlight: "0" },
    },
    activity: new ActivityLog(),
    dlq: [],
    calls: [],
    capture,
    dpu,
    stopGrpc: async () => {
      await control?.close();
      control = null;
    },
    startGrpc: async () => {
      control = await serve(port);
    },
    close: async () => {
      await control?.close();
      await http.close();
    },
  };
  const record = (method: string, args: unknown) => f.calls.push({ method, args });
  const serve = (p: number) =>
    serveControl({
      kind,
      port: p,
      host: "127.0.0.1",
      token,
      log: quiet,
      handlers: {
        health: () => ({ live: true, ready: true, detail: f.status.state }),
        status: () => f.status,
        pause: () => {
          record("pause", {});
          f.status = { ...f.status, state: "paused" };
          return f.status;
        },
        resume: () => {
          record("resume", {});
          f.status = { ...f.status, state: "running" };
          return f.status;
        },
        activity: (req) => f.activity.query(req),
        ...(kind === "dpu"
          ? {
              listDlq: () => ({ entries: f.dlq }),
              replayDlq: (req: { seqs: bigint[] }) => {
                record("replayDlq", req.seqs.map(Number));
                return { replayed: req.seqs.length || f.dlq.length };
              },
            }
          : {
              snapshot: (req: { tables: { db: string; table: string }[] }) => {
                record("snapshot", req.tables);
                return { snapshotId: "snap-1" };
              },
            }),
      },
    });
  let control: ControlServer | null = await serve(0);
  const port = control.port;
  f.grpc = `127.0.0.1:${port}`;
  return f;
}

/** A WebSocket client of the monitor that keeps every message it receives. */
export class TestSocket {
  readonly messages: Record<string, unknown>[] = [];
  closed: { code: number; reason: string } | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => this.messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
  }

  static async open(port: number): Promise<TestSocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new TestSocket(ws);
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** The first message after `from` (an index into messages) that matches; waits up to timeoutMs. */
  async next(
    match: (m: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs = 5000,
    from = 0,
  ): Promise<Record<string, unknown>> {
    return waitFor(() => this.messages.slice(from).find(match), { timeoutMs, intervalMs: 20, what });
  }

  close(): void {
    this.ws.close();
  }
}
