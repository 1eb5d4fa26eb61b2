import type { ComponentStatus } from "./component.js";
import { stackDown, stackStatus, stackUp } from "./stack.js";

const USAGE = "usage: dfs stack up|down|status";

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
  try {
    let statuses: ComponentStatus[];
    if (command === "up") statuses = await stackUp({ log });
    else if (command === "down") statuses = await stackDown({ log });
    else if (command === "status") statuses = await stackStatus({ log });
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
