import { parseArgs } from "node:util";
import { parseTableRef } from "@dfs/codec";
import { type DfsConfig, envSecret, loadConfig } from "@dfs/config";
import {
  type ClientTls,
  ControlCallError,
  type ControlClient,
  connectControl,
  type ServiceKind,
} from "@dfs/control";

const KINDS: readonly ServiceKind[] = ["capture", "relmgr", "dpu"];

export const CTL_USAGE = `usage: dfs ctl <service> <call> [args] [-c FILE] [--address HOST:PORT] [--token TOKEN]
       [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]

  service   capture | relmgr | dpu
  call      health | status | pause | resume | activity
            snapshot [db.table ...]     set-position POSITION
            dlq-list [--table db.table] dlq-replay [SEQ ...]

The address defaults to 127.0.0.1 and the service's gRPC port from the config (capture.grpc.port,
dpu.grpc.port), or 50101 / 50102 / 50103 without -c. The token defaults to control.token, or
DFS_CONTROL_TOKEN (or the file DFS_CONTROL_TOKEN_FILE names) without -c. TLS is used when the
config has control.tls or control.client, or with --tls / --tls-ca (CA file; else the system's
CAs) and --tls-cert/--tls-key (a client certificate, for mutual TLS). Prints JSON.`;

/** The command-line options shared by \`dfs ctl\` and \`dfs snapshot\` to reach a control plane. */
export const CONTROL_OPTIONS = {
  config: { type: "string", short: "c" },
  address: { type: "string" },
  token: { type: "string" },
  tls: { type: "boolean" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
} as const;

export interface ControlArgs {
  config?: string | undefined;
  address?: string | undefined;
  token?: string | undefined;
  tls?: boolean | undefined;
  "tls-ca"?: string | undefined;
  "tls-cert"?: string | undefined;
  "tls-key"?: string | undefined;
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
  const flags = values.tls || values["tls-ca"] || values["tls-cert"] || values["tls-key"];
  if (!flags) return cfg?.control.clientTls;
  if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined))
    throw new Error("--tls-cert and --tls-key go together");
  return {
    ca: values["tls-ca"] ?? cfg?.control.clientTls?.ca,
    cert: values["tls-cert"],
    key: values["tls-key"],
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

async function call(client: ControlClient, method: string, args: string[], table?: string): Promise<unknown> {
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
      return client.snapshot(args.map(parseTableRef));
    case "set-position":
      if (args.length !== 1)
        throw new Error("set-position takes one position: earliest, latest, file:pos, GTID");
      return client.setPosition(args[0]!);
    case "dlq-list":
      return client.listDlq(table ? { table: parseTableRef(table) } : {});
    case "dlq-replay": {
      const seqs = args.map(Number);
      if (seqs.some((n) => !Number.isInteger(n) || n <= 0))
        throw new Error("dlq-replay takes sequence numbers");
      return client.replayDlq(seqs);
    }
    default:
      throw new Error(`unknown call "${method}"`);
  }
}

/** `dfs ctl <service> <call> [args]`: the control plane's command-line client. */
export async function runCtl(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CONTROL_OPTIONS, table: { type: "string" } },
  });
  const [kind, method, ...args] = positionals;
  if (!kind || !method || !KINDS.includes(kind as ServiceKind)) {
    console.error(CTL_USAGE);
    return 2;
  }
  const { address, token, tls } = controlTarget(kind as ServiceKind, values);
  const client = connectControl(kind as ServiceKind, address, { token, tls });
  try {
    print(await call(client, method, args, values.table));
    return 0;
  } catch (err) {
    if (err instanceof ControlCallError) {
      console.error(`dfs ctl: ${err.message}`);
      return 1;
    }
    console.error(`dfs ctl: ${(err as Error).message}\n\n${CTL_USAGE}`);
    return 2;
  } finally {
    client.close();
  }
}
