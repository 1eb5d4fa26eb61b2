/**
 * What `dfs doctor` found, as data: one result per check, the table it prints and the exit code it
 * ends with. Pure: no servers here, so the verdict and the rendering are unit-tested alone.
 */
import { ExitCode } from "../exit.js";

export type CheckStatus = "ok" | "warn" | "FAIL";

/** Why a check failed: a setting, privilege or credential a person must change, or a server away. */
export type Failure = "config" | "unavailable";

export interface CheckResult {
  /** What was checked: "source: binlog_format". */
  check: string;
  status: CheckStatus;
  /** What was found (never a password). */
  detail: string;
  /** How to fix it; empty when nothing needs doing. */
  fix: string;
  /** Set on FAIL. */
  failure?: Failure;
}

export const ok = (check: string, detail: string, fix = ""): CheckResult => ({
  check,
  status: "ok",
  detail,
  fix,
});

export const warn = (check: string, detail: string, fix: string): CheckResult => ({
  check,
  status: "warn",
  detail,
  fix,
});

export const fail = (
  check: string,
  detail: string,
  fix: string,
  failure: Failure = "config",
): CheckResult => ({
  check,
  status: "FAIL",
  detail,
  fix,
  failure,
});

/**
 * The exit code of a doctor run: 0 when nothing failed (warnings allowed); 69 when a server could
 * not be reached (what lies behind it was not checked, so that comes first); else 78 (a setting,
 * privilege or credential is wrong).
 */
export function verdict(results: readonly CheckResult[]): ExitCode {
  const failed = results.filter((r) => r.status === "FAIL");
  if (failed.length === 0) return ExitCode.OK;
  return failed.some((r) => r.failure === "unavailable") ? ExitCode.UNAVAILABLE : ExitCode.CONFIG;
}

/** One line under the table: how many checks failed and warned, and the exit code. */
export function summary(results: readonly CheckResult[]): string {
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  const failed = count("FAIL");
  const warned = count("warn");
  const code = verdict(results);
  if (failed === 0)
    return `${results.length} checks: all ok${warned > 0 ? ` (${warned} warning${warned === 1 ? "" : "s"})` : ""}`;
  const unreachable = results.filter((r) => r.status === "FAIL" && r.failure === "unavailable").length;
  const parts = [
    `${failed} failed${unreachable > 0 ? ` (${unreachable} unreachable)` : ""}`,
    ...(warned > 0 ? [`${warned} warning${warned === 1 ? "" : "s"}`] : []),
  ];
  return `${results.length} checks: ${parts.join(", ")}; exit code ${code} (${code === ExitCode.UNAVAILABLE ? "unavailable" : "config"})`;
}

/** Words of `text` in lines of at most `width` characters (a longer word is cut). */
export function wrap(text: string, width: number): string[] {
  if (width <= 0 || text.length <= width) return [text];
  const lines: string[] = [];
  let line = "";
  for (let word of text.split(/\s+/)) {
    while (word.length > width) {
      if (line) lines.push(line);
      lines.push(word.slice(0, width));
      word = word.slice(width);
      line = "";
    }
    if (!line) line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

const HEADER = ["CHECK", "STATUS", "DETAIL", "HOW TO FIX"] as const;

/** The detail column's width without wrapping; longer details overflow their own row. */
const UNWRAPPED_DETAIL = 90;

/**
 * The table: CHECK, STATUS, DETAIL, HOW TO FIX. With `width` (a terminal's columns) the detail and
 * fix columns wrap to fit; without it (output to a pipe or file) every check is one line, so that
 * grep finds a whole row.
 */
export function renderTable(results: readonly CheckResult[], width?: number): string {
  const rows = results.map((r) => [r.check, r.status, r.detail, r.fix || "-"]);
  const fixed = [0, 1].map((c) => Math.max(HEADER[c]!.length, ...rows.map((r) => r[c]!.length)));
  let wrapAt: [number, number] | null = null;
  if (width !== undefined) {
    // What is left after the first two columns and three gaps of two, split 45/55, at least 20 each.
    const left = Math.max(40, width - fixed[0]! - fixed[1]! - 6);
    const detail = Math.max(20, Math.floor(left * 0.45));
    wrapAt = [detail, Math.max(20, left - detail)];
  }
  // Unwrapped, a long detail runs past its column on its own row rather than widening every row.
  const detailCap = wrapAt ? wrapAt[0] : UNWRAPPED_DETAIL;
  const widths = [
    fixed[0]!,
    fixed[1]!,
    Math.max(HEADER[2].length, ...rows.map((r) => Math.min(detailCap, r[2]!.length))),
  ];
  const lines: string[] = [];
  const emit = (cells: string[]) =>
    lines.push(
      cells
        .map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell))
        .join("  ")
        .trimEnd(),
    );
  emit([...HEADER]);
  for (const r of rows) {
    const detail = wrapAt ? wrap(r[2]!, wrapAt[0]) : [r[2]!];
    const fix = wrapAt ? wrap(r[3]!, wrapAt[1]) : [r[3]!];
    for (let i = 0; i < Math.max(detail.length, fix.length); i++)
      emit([i === 0 ? r[0]! : "", i === 0 ? r[1]! : "", detail[i] ?? "", fix[i] ?? ""]);
  }
  return lines.join("\n");
}
