import type { ComponentStatus } from "./component.js";

/** The table `dfs stack up|down|status` prints: one row per component. */
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
