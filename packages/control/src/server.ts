import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  ConfigError,
  DfsError,
  ErrorCode,
  errorMessage,
  type Logger,
  RefusedError,
  TransientError,
} from "@dfs/common";
import {
  type ActivityRequest,
  type ActivityResponse,
  CaptureService,
  DpuService,
  type GraphResponse,
  type GroupsResponse,
  type HealthResponse,
  type KeyLookupRequest,
  type KeyLookupResponse,
  type ListDlqRequest,
  type ListDlqResponse,
  type OrphansRequest,
  type OrphansResponse,
  RelmgrService,
  type ReplayDlqRequest,
  type ReplayDlqResponse,
  type SetPositionRequest,
  type SnapshotRequest,
  type SnapshotResponse,
  type StageStatus,
} from "@dfs/proto";
import {
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  status as Status,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";

export type ServiceKind = "capture" | "relmgr" | "dpu";

export const SERVICE_DEFINITIONS: Record<ServiceKind, ServiceDefinition> = {
  capture: CaptureService,
  relmgr: RelmgrService,
  dpu: DpuService,
};

type Maybe<T> = T | Promise<T>;

/**
 * What a service does for each control call. A call the service leaves out is answered with
 * UNIMPLEMENTED, naming the service.
 */
export interface ControlHandlers {
  health(): HealthResponse;
  status(): Maybe<StageStatus>;
  pause?(): Maybe<StageStatus>;
  resume?(): Maybe<StageStatus>;
  snapshot?(req: SnapshotRequest): Maybe<SnapshotResponse>;
  setPosition?(req: SetPositionRequest): Maybe<StageStatus>;
  listDlq?(req: ListDlqRequest): Maybe<ListDlqResponse>;
  replayDlq?(req: ReplayDlqRequest): Maybe<ReplayDlqResponse>;
  activity?(req: ActivityRequest): Maybe<ActivityResponse>;
  /** relmgr only. */
  graph?(): Maybe<GraphResponse>;
  groups?(): Maybe<GroupsResponse>;
  lookupKey?(req: KeyLookupRequest): Maybe<KeyLookupResponse>;
  orphans?(req: OrphansRequest): Maybe<OrphansResponse>;
}

export interface ControlServerOptions {
  kind: ServiceKind;
  handlers: ControlHandlers;
  /** 0 = any free port. */
  port: number;
  /** Address to listen on; default 127.0.0.1 (loopback) without TLS, 0.0.0.0 with it. */
  host?: string;
  /** TLS (control.tls); without it the control plane is plaintext. */
  tls?: ServerTls | undefined;
  /** The config key of the port, named when it cannot be bound (e.g. "capture.grpc.port"). */
  portKey?: string;
  /** Required by every call but Health; without one, those calls are refused. */
  token: string | undefined;
  log: Logger;
}

/** TLS of a server: PEM files; with requireClientCert, clients need a certificate signed by ca. */
export interface ServerTls {
  cert: string;
  key: string;
  ca?: string | undefined;
  requireClientCert: boolean;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [`control.tls.${what}: cannot read ${path}`], {
      cause: err,
    });
  }
}

/** gRPC server credentials for a TLS setting, or plaintext ones without. */
function serverCredentials(tls: ServerTls | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    tls.ca ? readPem(tls.ca, "ca") : null,
    [{ cert_chain: readPem(tls.cert, "cert"), private_key: readPem(tls.key, "key") }],
    tls.requireClientCert,
  );
}

export interface ControlServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A gRPC error with a status code, for `callback(err)`. */
class CallError extends Error {
  constructor(
    readonly code: Status,
    message: string,
  ) {
    super(message);
  }
}

/** Maps the project's error classes to gRPC status codes; the message never carries secrets. */
function toStatus(err: unknown): { code: Status; details: string } {
  if (err instanceof CallError) return { code: err.code, details: err.message };
  if (err instanceof ConfigError) return { code: Status.INVALID_ARGUMENT, details: errorMessage(err) };
  if (err instanceof TransientError) return { code: Status.UNAVAILABLE, details: errorMessage(err) };
  if (err instanceof RefusedError) return { code: Status.FAILED_PRECONDITION, details: errorMessage(err) };
  if (err instanceof DfsError && err.code === ErrorCode.ABORTED)
    return { code: Status.ABORTED, details: errorMessage(err) };
  return { code: Status.INTERNAL, details: errorMessage(err) };
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Checks `authorization: Bearer <token>` in constant time. */
function checkToken(metadata: Metadata, expected: Buffer | null): void {
  if (!expected)
    throw new CallError(
      Status.UNAUTHENTICATED,
      "the control plane has no token configured (control.token or DFS_CONTROL_TOKEN); only Health is served",
    );
  const header = metadata.get("authorization")[0];
  const given = typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7) : null;
  if (given === null) throw new CallError(Status.UNAUTHENTICATED, "missing authorization: Bearer <token>");
  if (!timingSafeEqual(digest(given), expected)) throw new CallError(Status.UNAUTHENTICATED, "wrong token");
}

const METHODS = [
  "health",
  "status",
  "pause",
  "resume",
  "snapshot",
  "setPosition",
  "listDlq",
  "replayDlq",
  "activity",
  "graph",
  "groups",
  "lookupKey",
  "orphans",
] as const;

/** Starts the gRPC control plane of one service. */
export async function serveControl(o: ControlServerOptions): Promise<ControlServer> {
  const expected = o.token ? digest(o.token) : null;
  const impl: UntypedServiceImplementation = {};
  const served = new Set(Object.keys(SERVICE_DEFINITIONS[o.kind]));
  for (const method of METHODS) {
    if (!served.has(method)) continue;
    impl[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const run = async () => {
        if (method !== "health") checkToken(call.metadata, expected);
        const handler = o.handlers[method] as ((req: unknown) => unknown) | undefined;
        if (!handler) throw new CallError(Status.UNIMPLEMENTED, `${o.kind} does not serve ${method}`);
        return await handler.call(o.handlers, call.request);
      };
      run().then(
        (value) => callback(null, value),
        (err: unknown) => {
          const { code, details } = toStatus(err);
          if (code !== Status.UNAUTHENTICATED && code !== Status.UNIMPLEMENTED)
            o.log.warn({ method, code: Status[code], err: details }, "control call failed");
          else if (code === Status.UNAUTHENTICATED) o.log.warn({ method }, "control call refused: bad token");
          callback({ code, details });
        },
      );
    };
  }
  const server = new Server();
  server.addService(SERVICE_DEFINITIONS[o.kind], impl);
  const host = o.host ?? (o.tls ? "0.0.0.0" : "127.0.0.1");
  const address = host.includes(":") ? `[${host}]:${o.port}` : `${host}:${o.port}`;
  const credentials = serverCredentials(o.tls);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (err, p) =>
      err
        ? reject(
            new ConfigError(
              ErrorCode.CONFIG_INVALID,
              [`${o.portKey ?? `${o.kind} gRPC port`}: cannot listen on ${address} (${err.message})`],
              { cause: err },
            ),
          )
        : resolve(p),
    );
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // Calls in progress get a moment to finish; then the server is forced down.
        const force = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
