import type { ComponentStatus } from "./component.js";
import { stackDown, stackStatus, stackUp } from "./stack.js";

const USAGE = `usage: dfs stack up|down|status [--tls]

  --tls   the TLS stack: TLS-only MariaDB source and target and NATS (client certificate and user
          required) with a CA of its own, on 13316, 13317 and 14232, data under .stack-tls`;

export function formatStatusTable(statuses: ComponentStatus[]): string {
  const rows = [
    ["COMPONENT", "STATE", "ADDRESS", "PID", "OWNER"],
    ...statuses.map((s) => [
      s.name,
      s.up ? "up" : "down",
      s.address,
      s.pid === undefined ? "-" : String(s.pid),
      s.startedByStack ? "stack" : s.up ? "external" : "-",
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * Entry point for `dfs stack <command>`. Progress goes to stderr so stdout carries only the table.
 * Exit codes: 0 success (for `status`: every component up), 1 failure or something down, 2 bad usage.
 */
export async function runStackCli(argv: string[]): Promise<number> {
  const log = (line: string) => process.stderr.write(`stack: ${line}\n`);
  const command = argv[0];
  const rest = argv.slice(1);
  const tls = rest.includes("--tls");
  if (rest.some((a) => a !== "--tls")) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  try {
    let statuses: ComponentStatus[];
    if (command === "up") statuses = await stackUp({ log, tls });
    else if (command === "down") statuses = await stackDown({ log, tls });
    else if (command === "status") statuses = await stackStatus({ log, tls });
    else {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    process.stdout.write(`${formatStatusTable(statuses)}\n`);
    return command === "status" && statuses.some((s) => !s.up) ? 1 : 0;
  } catch (error) {
    process.stderr.write(`stack ${command}: ${(error as Error).message}\n`);
    return 1;
  }
}
