import { readFileSync } from "node:fs";
import {
  type ActivityResponse,
  CaptureClient,
  DpuClient,
  type GraphResponse,
  type GroupsResponse,
  type HealthResponse,
  type KeyLookupRequest,
  type KeyLookupResponse,
  type ListDlqRequest,
  type ListDlqResponse,
  type OrphansResponse,
  RelmgrClient,
  type ReplayDlqResponse,
  type SnapshotResponse,
  type StageStatus,
  type TableRef,
} from "@dfs/proto";
import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  credentials,
  Metadata,
  type ServiceError,
  status as statusNames,
} from "@grpc/grpc-js";
import type { ServiceKind } from "./server.js";

/** The control calls of one service, as promises. */
export interface ControlClient {
  readonly kind: ServiceKind;
  readonly address: string;
  health(): Promise<HealthResponse>;
  status(): Promise<StageStatus>;
  pause(): Promise<StageStatus>;
  resume(): Promise<StageStatus>;
  snapshot(tables: TableRef[]): Promise<SnapshotResponse>;
  setPosition(position: string): Promise<StageStatus>;
  listDlq(req?: Partial<ListDlqRequest>): Promise<ListDlqResponse>;
  replayDlq(seqs: number[]): Promise<ReplayDlqResponse>;
  activity(afterId?: number, limit?: number): Promise<ActivityResponse>;
  /** relmgr only (others answer UNIMPLEMENTED). */
  graph(): Promise<GraphResponse>;
  groups(): Promise<GroupsResponse>;
  lookupKey(req: KeyLookupRequest): Promise<KeyLookupResponse>;
  orphans(limit?: number): Promise<OrphansResponse>;
  close(): void;
}

/** TLS of a control client: PEM files; no ca = the system's CAs. */
export interface ClientTls {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** The name the server's certificate must carry, when it differs from the host dialled. */
  serverName?: string | undefined;
}

export interface ControlClientOptions {
  token?: string | undefined;
  /** TLS (control.client / control.tls); without it the calls are plaintext. */
  tls?: ClientTls | undefined;
  /** Deadline of each call (default 10 s). */
  timeoutMs?: number;
}

const CLIENTS = { capture: CaptureClient, relmgr: RelmgrClient, dpu: DpuClient } as const;

/** An error from a control call: the gRPC status name and the server's message. */
export class ControlCallError extends Error {
  constructor(
    readonly service: ServiceKind,
    readonly method: string,
    readonly code: number,
    readonly codeName: string,
    details: string,
  ) {
    super(`${service}.${method}: ${codeName}: ${details}`);
    this.name = "ControlCallError";
  }
}

/** A client for one service's control plane at `address` ("host:port"). */
export function connectControl(
  kind: ServiceKind,
  address: string,
  options: ControlClientOptions = {},
): ControlClient {
  const Ctor = CLIENTS[kind] as unknown as new (
    address: string,
    creds: ChannelCredentials,
    options: ChannelOptions,
  ) => Client;
  const tls = options.tls;
  const read = (path: string | undefined) => (path ? readFileSync(path) : null);
  const creds = tls
    ? credentials.createSsl(read(tls.ca), read(tls.key), read(tls.cert))
    : credentials.createInsecure();
  const channel: ChannelOptions = tls?.serverName ? { "grpc.ssl_target_name_override": tls.serverName } : {};
  const client = new Ctor(address, creds, channel);
  const timeout = options.timeoutMs ?? 10_000;
  const call = <Res>(method: string, request: unknown): Promise<Res> =>
    new Promise<Res>((resolve, reject) => {
      const md = new Metadata();
      if (options.token) md.set("authorization", `Bearer ${options.token}`);
      const opts: CallOptions = { deadline: Date.now() + timeout };
      const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!;
      fn.call(client, request, md, opts, (err: ServiceError | null, res: Res) => {
        if (err) {
          const name = Object.entries(statusNames).find(([, v]) => v === err.code)?.[0] ?? String(err.code);
          reject(new ControlCallError(kind, method, err.code, name, err.details || err.message));
        } else resolve(res);
      });
    });
  return {
    kind,
    address,
    health: () => call("health", {}),
    status: () => call("status", {}),
    pause: () => call("pause", {}),
    resume: () => call("resume", {}),
    snapshot: (tables) => call("snapshot", { tables }),
    setPosition: (position) => call("setPosition", { position }),
    listDlq: (req = {}) => call("listDlq", { limit: req.limit ?? 0, table: req.table }),
    replayDlq: (seqs) => call("replayDlq", { seqs: seqs.map((s) => BigInt(s)) }),
    activity: (afterId = 0, limit = 0) => call("activity", { afterId: BigInt(afterId), limit }),
    graph: () => call("graph", {}),
    groups: () => call("groups", {}),
    lookupKey: (req) => call("lookupKey", req),
    orphans: (limit = 0) => call("orphans", { limit }),
    close: () => client.close(),
  };
}
