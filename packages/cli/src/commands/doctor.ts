/**
 * `dfs doctor [-c FILE]`: checks what the config's services will need (the source's settings and
 * privileges, NATS with JetStream, the target and its privileges, the pipeline's mappings) and prints
 * one table of what is wrong and how to fix it. Exit code 0 when nothing failed (warnings allowed),
 * 69 when a server cannot be reached, 78 when a setting, privilege or credential is wrong.
 */
import { errorMessage, TransientError } from "@dfs/common";
import { loadConfig } from "@dfs/config";
import type { ExitCode } from "../exit.js";
import { checkNats } from "./doctor-nats.js";
import { type CheckResult, fail, renderTable, summary, verdict } from "./doctor-report.js";
import { checkSource } from "./doctor-source.js";
import { checkTarget } from "./doctor-target.js";

/** One section's checks; an error none of them expected becomes a FAIL row instead of ending the run. */
async function guarded<T>(
  section: string,
  run: () => Promise<T>,
  rows: (t: T) => CheckResult[],
  fallback: T,
): Promise<{ value: T; results: CheckResult[] }> {
  try {
    const value = await run();
    return { value, results: rows(value) };
  } catch (err) {
    const unavailable = err instanceof TransientError;
    return {
      value: fallback,
      results: [
        fail(
          section,
          errorMessage(err),
          unavailable ? "check that the server is up and reachable" : "fix what the detail names",
          unavailable ? "unavailable" : "config",
        ),
      ],
    };
  }
}

export async function runDoctor(o: { config?: string }): Promise<ExitCode> {
  const cfg = loadConfig(o.config);
  const results: CheckResult[] = [];
  const source = await guarded(
    "source",
    () => checkSource(cfg),
    (f) => f.results,
    {
      results: [],
      databases: null,
    },
  );
  results.push(...source.results);
  results.push(
    ...(
      await guarded(
        "nats",
        () => checkNats(cfg),
        (r) => r,
        [],
      )
    ).results,
  );
  results.push(
    ...(
      await guarded(
        "target",
        () => checkTarget(cfg, source.value.databases),
        (r) => r,
        [],
      )
    ).results,
  );
  const width = process.stdout.isTTY ? process.stdout.columns : undefined;
  console.log(renderTable(results, width));
  console.log(`\n${summary(results)}`);
  return verdict(results);
}
