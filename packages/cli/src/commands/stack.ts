import { errorMessage } from "@dfs/common";
import { formatStatusTable, stackDown, stackStatus, stackUp } from "@dfs/stack";
import { ExitCode } from "../exit.js";

/**
 * `dfs stack up|down|status [--tls]`. Progress goes to stderr so stdout carries only the table. A stack that
 * cannot be started or stopped (a port held, a binary missing) and, for `status`, a component
 * that is down end with 69 (unavailable).
 */
export async function runStack(action: "up" | "down" | "status", tls = false): Promise<number> {
  const log = (line: string) => process.stderr.write(`stack: ${line}\n`);
  const run = { up: stackUp, down: stackDown, status: stackStatus }[action];
  try {
    const statuses = await run({ log, tls });
    process.stdout.write(`${formatStatusTable(statuses)}\n`);
    return action === "status" && statuses.some((s) => !s.up) ? ExitCode.UNAVAILABLE : ExitCode.OK;
  } catch (error) {
    process.stderr.write(`dfs stack ${action}: ${errorMessage(error)}\n`);
    return ExitCode.UNAVAILABLE;
  }
}
