import { parseArgs } from "node:util";
import { parseTableRef } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { connectControl } from "@dfs/control";
import { CONTROL_OPTIONS, controlTarget } from "./ctl.js";

/**
 * `dfs snapshot [-c FILE] [--wait] [db.table ...]`: asks the running capture (its control plane)
 * to snapshot tables (none named = every captured table); --wait follows it to the end.
 */
export async function runSnapshot(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CONTROL_OPTIONS, wait: { type: "boolean" } },
  });
  const { address, token, tls } = controlTarget("capture", values);
  const client = connectControl("capture", address, { token, tls });
  try {
    const { snapshotId } = await client.snapshot(positionals.map(parseTableRef));
    console.log(`snapshot ${snapshotId} started`);
    if (!values.wait) return 0;
    let last = "";
    await waitFor(
      async () => {
        const s = await client.status();
        const d = s.details;
        const line = `${d.snapshotTable ?? ""}: ${d.snapshotRows ?? 0} rows, ${d.snapshotTablesLeft ?? "?"} table(s) left`;
        if (line !== last) console.error(line);
        last = line;
        if (s.lastError && d.snapshotId === snapshotId && s.state === "error") throw new Error(s.lastError);
        return d.snapshotId === snapshotId && d.snapshotTablesLeft === "0";
      },
      { timeoutMs: 24 * 3600_000, intervalMs: 1000, what: `snapshot ${snapshotId}` },
    );
    console.log(`snapshot ${snapshotId} done`);
    return 0;
  } finally {
    client.close();
  }
}
