import { parseTableRef, type TableRef } from "@dfs/codec";
import { errorMessage } from "@dfs/common";
import { type DfsConfig, envSecret, loadConfig } from "@dfs/config";
import { type ClientTls, type ControlClient, connectControl, type ServiceKind } from "@dfs/control";
import { UsageError } from "../exit.js";
import type { CtlCall } from "./ctl-calls.js";

/** The command-line options shared by `dfs ctl` and `dfs snapshot` to reach a control plane. */
export interface ControlArgs {
  config?: string | undefined;
  address?: string | undefined;
  token?: string | undefined;
  tls?: boolean | undefined;
  tlsCa?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}

const DEFAULT_PORTS: Record<ServiceKind, number> = { capture: 50101, relmgr: 50102, dpu: 50103 };

/**
 * The gRPC address of a service: a matching monitor.services entry of the config, else this host
 * and the service's port from the config, else its default port.
 */
function addressOf(kind: ServiceKind, cfg: DfsConfig | null): string {
  if (!cfg) return `127.0.0.1:${DEFAULT_PORTS[kind]}`;
  const listed = cfg.monitor.services.find((s) => s.kind === kind);
  if (listed) return listed.grpc;
  const port =
    kind === "capture" ? cfg.capture.grpc.port : kind === "dpu" ? cfg.dpu.grpc.port : DEFAULT_PORTS[kind];
  return `127.0.0.1:${port}`;
}

/** TLS from the flags, else from the config (control.client completed from control.tls). */
function tlsOf(values: ControlArgs, cfg: DfsConfig | null): ClientTls | undefined {
  const flags = values.tls || values.tlsCa || values.tlsCert || values.tlsKey;
  if (!flags) return cfg?.control.clientTls;
  if ((values.tlsCert === undefined) !== (values.tlsKey === undefined))
    throw new UsageError("--tls-cert and --tls-key go together");
  return {
    ca: values.tlsCa ?? cfg?.control.clientTls?.ca,
    cert: values.tlsCert,
    key: values.tlsKey,
  };
}

/** Where `dfs ctl` and `dfs snapshot` find a service's control plane, with which token and TLS. */
export function controlTarget(
  kind: ServiceKind,
  values: ControlArgs,
): { address: string; token: string | undefined; tls: ClientTls | undefined } {
  // Without -c no config is needed: default ports, the token from DFS_CONTROL_TOKEN(_FILE).
  const cfg = values.config ? loadConfig(values.config) : null;
  return {
    address: values.address ?? addressOf(kind, cfg),
    token: values.token ?? cfg?.control.token ?? envSecret(process.env, "DFS_CONTROL_TOKEN"),
    tls: tlsOf(values, cfg),
  };
}

/** A db.table argument; a malformed one is a usage error (exit code 64). */
export function tableArg(text: string): TableRef {
  try {
    return parseTableRef(text);
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

/** JSON with bigints as numbers where they fit, else strings. */
function print(value: unknown): void {
  console.log(
    JSON.stringify(
      value,
      (_, v) => (typeof v === "bigint" ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(v)) : v),
      2,
    ),
  );
}

async function call(
  client: ControlClient,
  method: CtlCall,
  args: string[],
  table?: string,
): Promise<unknown> {
  switch (method) {
    case "health":
      return client.health();
    case "status":
      return client.status();
    case "pause":
      return client.pause();
    case "resume":
      return client.resume();
    case "activity":
      return client.activity(0, 50);
    case "snapshot":
      return client.snapshot(args.map(tableArg));
    case "set-position":
      if (args.length !== 1)
        throw new UsageError("set-position takes one position: earliest, latest, FILE:POS or a GTID set");
      return client.setPosition(args[0]!);
    case "dlq-list":
      return client.listDlq(table ? { table: tableArg(table) } : {});
    case "dlq-replay": {
      const seqs = args.map(Number);
      if (seqs.some((n) => !Number.isInteger(n) || n <= 0))
        throw new UsageError("dlq-replay takes dead-letter sequence numbers (dfs dlq list shows them)");
      return client.replayDlq(seqs);
    }
    default:
      throw new UsageError(`unknown call "${method satisfies never}"`);
  }
}

/** `dfs ctl <service> <call> [args]`: the control plane's command-line client; prints JSON. */
export async function runCtl(
  kind: ServiceKind,
  method: CtlCall,
  args: string[],
  values: ControlArgs & { table?: string },
): Promise<number> {
  const { address, token, tls } = controlTarget(kind, values);
  const client = connectControl(kind, address, { token, tls });
  try {
    print(await call(client, method, args, values.table));
    return 0;
  } finally {
    client.close();
  }
}
