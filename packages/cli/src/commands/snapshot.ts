import { waitFor } from "@dfs/common";
import { connectControl } from "@dfs/control";
import { type ControlArgs, controlTarget, tableArg } from "./ctl.js";

/**
 * `dfs snapshot [-c FILE] [--wait] [db.table ...]`: asks the running capture (its control plane)
 * to snapshot tables (none named = every captured table); --wait follows it to the end.
 */
export async function runSnapshot(
  tables: string[],
  values: ControlArgs & { wait?: boolean },
): Promise<number> {
  const { address, token, tls } = controlTarget("capture", values);
  const client = connectControl("capture", address, { token, tls });
  try {
    const { snapshotId } = await client.snapshot(tables.map(tableArg));
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
