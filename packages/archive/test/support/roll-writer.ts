// A worker thread that writes an archive whose files are cut after every write (a tiny
// maxFileBytes) and dropped by retention soon after, so files are created, closed and deleted all
// the time: for the test of reading an archive while a DPU writes it.
import { parentPort, workerData } from "node:worker_threads";
import { Op } from "@dfs/proto";
import { ArchiveWriter } from "../../dist/index.js";
import { batch, row } from "./batches.js";

const { dir, writes } = workerData as { dir: string; writes: number };
const w = ArchiveWriter.open({
  dir,
  period: "size",
  maxFileBytes: 4096,
  retention: { maxBytes: 200_000 },
  consumer: "c",
});
for (let i = 1; i <= writes; i++)
  w.write(batch(i, 1_700_000_000 + i, 100 * i, [{ op: Op.OP_CREATE, after: row(BigInt(i), "a") }]), {
    lowWater: i,
  });
w.close();
parentPort!.postMessage("done");
