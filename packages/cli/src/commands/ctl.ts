import { parseArgs } from "node:util";
import { parseTableRef } from "@dfs/codec";
import { type DfsConfig, loadConfig } from "@dfs/config";
import { ControlCallError, type ControlClient, connectControl, type ServiceKind } from "@dfs/control";

const KINDS: readonly ServiceKind[] = ["capture", "relmgr", "dpu"];

export const CTL_USAGE = `usage: dfs ctl <service> <call> [args] [-c FILE] [--address HOST:PORT] [--token TOKEN]

  service   capture | relmgr | dpu
  call      health | status | pause | resume | activity
            snapshot [db.table ...]     set-position POSITION
            dlq-list [--table db.table] dlq-replay [SEQ ...]

The address defaults to 127.0.0.1 and the service's gRPC port from the config (capture.grpc.port,
dpu.grpc.port), or 50101 / 50102 / 50103 without -c. The token defaults to control.token, or
DFS_CONTROL_TOKEN without -c. Prints JSON.`;

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

/** Where `dfs ctl` and `dfs snapshot` find a service's control plane, and with which token. */
export function controlTarget(
  kind: ServiceKind,
  values: { config?: string | undefined; address?: string | undefined; token?: string | undefined },
): { address: string; token: string | undefined } {
  // Without -c no config is needed: default ports, the token from DFS_CONTROL_TOKEN.
  const cfg = values.config ? loadConfig(values.config) : null;
  return {
    address: values.address ?? addressOf(kind, cfg),
    token: values.token ?? cfg?.control.token ?? process.env.DFS_CONTROL_TOKEN,
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
    options: {
      config: { type: "string", short: "c" },
      address: { type: "string" },
      token: { type: "string" },
      table: { type: "string" },
    },
  });
  const [kind, method, ...args] = positionals;
  if (!kind || !method || !KINDS.includes(kind as ServiceKind)) {
    console.error(CTL_USAGE);
    return 2;
  }
  const { address, token } = controlTarget(kind as ServiceKind, values);
  const client = connectControl(kind as ServiceKind, address, { token });
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
