/** What `dfs verify` prints: a table of results, the drifted keys, or the whole report as JSON. */
import type { TableResult, VerifyReport } from "./run.js";

const MAX_KEYS_SHOWN = 20;

function statusText(r: TableResult): string {
  if (r.status === "repaired" && r.repair)
    return `repaired (${r.repair.upserted} written, ${r.repair.deleted} deleted)`;
  if (r.status === "drift" && r.repair) return `DRIFT (${r.repair.remaining.length} left after repair)`;
  if (r.status === "drift") return "DRIFT";
  if (r.status === "missing") return "MISSING";
  return r.status;
}

function pad(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

/** The results as a table, then each table's drifted keys and reasons, then a summary line. */
export function formatReport(report: VerifyReport): string {
  const rows: string[][] = [
    ["TABLE", "SOURCE ROWS", "TARGET ROWS", "CHUNKS", "DRIFTED KEYS", "SECONDS", "STATUS"],
  ];
  for (const r of report.tables)
    rows.push([
      r.name,
      String(r.sourceRows),
      String(r.targetRows),
      r.chunks === 0 ? "-" : `${r.chunks}${r.chunksDiffering ? ` (${r.chunksDiffering} differ)` : ""}`,
      String(r.drift.length),
      r.seconds.toFixed(1),
      statusText(r),
    ]);
  const lines = pad(rows);
  for (const r of report.tables) {
    if (r.reason) lines.push("", `${r.name}: ${r.reason}`);
    if (r.drift.length > 0) {
      lines.push("", `${r.name}: drifted keys (kind: missing on the target, extra on the target, different)`);
      for (const d of r.drift.slice(0, MAX_KEYS_SHOWN))
        lines.push(`  ${d.kind.padEnd(9)} ${JSON.stringify(d.key)}`);
      if (r.drift.length > MAX_KEYS_SHOWN)
        lines.push(`  ... and ${r.drift.length - MAX_KEYS_SHOWN} more (--json lists all)`);
    }
    if (r.unsettled > 0)
      lines.push(
        "",
        `${r.name}: ${r.unsettled} keys changed on the source in every round and were not compared; verify again when the load is lighter`,
      );
  }
  const drifted = report.tables.filter((r) => r.status === "drift" || r.status === "missing").length;
  const skipped = report.tables.filter((r) => r.status === "unverifiable").length;
  const rate = report.seconds > 0 ? Math.round(report.rows / report.seconds) : 0;
  lines.push(
    "",
    `${report.tables.length} tables, ${report.rows} rows in ${report.seconds.toFixed(1)} s (${rate} rows/s): ` +
      `${drifted} with drift, ${skipped} not verifiable`,
  );
  return lines.join("\n");
}

/** The report as JSON (what `--json` prints). */
export function reportJson(report: VerifyReport): string {
  return JSON.stringify(report, null, 2);
}
