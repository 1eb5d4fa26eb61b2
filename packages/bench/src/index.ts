import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { benchCapture, type CaptureBenchResult } from "./capture.js";
import { recordBenchmark } from "./report.js";

export { benchCapture, type CaptureBenchResult } from "./capture.js";
export { machineLine, recordBenchmark } from "./report.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function captureTable(results: CaptureBenchResult[]): string {
  const lines = [
    "| scenario | row changes | in stream | messages | seconds | rows/s | capture peak RSS | zongji alone, same range | capture / zongji |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.scenario} | ${r.rows.toLocaleString("en")} | ${r.rowsInStream.toLocaleString("en")} | ${r.messages.toLocaleString("en")} | ${r.seconds.toFixed(2)} | ${Math.round(r.rowsPerSecond).toLocaleString("en")} | ${r.peakRssMb.toFixed(0)} MB | ${Math.round(r.baselineRowsPerSecond).toLocaleString("en")} rows/s | ${(r.rowsPerSecond / r.baselineRowsPerSecond).toFixed(2)} |`,
    );
  }
  return lines.join("\n");
}

/** `dfs bench <what> [--rows N]`. */
export async function runBench(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      rows: { type: "string", default: "1000000" },
      scenario: { type: "string", default: "all" },
      "no-record": { type: "boolean", default: false },
    },
  });
  const what = positionals[0];
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1000) {
    console.error(`dfs bench: --rows must be a whole number >= 1000 (got "${values.rows}")`);
    return 2;
  }
  if (what !== "capture") {
    console.error(`dfs bench: unknown benchmark "${what ?? ""}" (available: capture)`);
    return 2;
  }
  const scenarios: CaptureBenchResult["scenario"][] =
    values.scenario === "backlog"
      ? ["backlog"]
      : values.scenario === "txn"
        ? ["one transaction"]
        : ["backlog", "one transaction"];
  const results = await benchCapture(rows, scenarios, (s) => console.error(s));
  const table = captureTable(results);
  console.log(table);
  for (const r of results) {
    if (r.rowsInStream !== r.rows) {
      console.error(
        `dfs bench: ${r.scenario}: the stream holds ${r.rowsInStream} rows, expected ${r.rows}: figure not recorded`,
      );
      return 1;
    }
  }
  if (!values["no-record"]) {
    const body = `${table}\n\nGoal: >= 100,000 rows/s binlog -> journal -> JetStream-acked, < 250 MB capture RSS. Time runs from starting the capture process (node start-up included) to the stream holding a heartbeat past the backlog's end; rows are counted in the stream afterwards. "zongji alone" decodes the same binlog range with no journal and no publishing, in its own process, right after.`;
    const file = recordBenchmark(
      root,
      "capture",
      `dfs bench capture --rows ${rows}${values.scenario !== "all" ? ` --scenario ${values.scenario}` : ""}`,
      body,
    );
    console.error(`recorded in ${file}`);
  }
  return 0;
}
