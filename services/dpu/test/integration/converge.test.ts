// Convergence test: 100,000 mixed row changes over four tables (PK, composite PK, unique key only,
// utf8mb4_bin PK), in transactions of 1 to 1,000 rows, many touching several tables, with key
// changes, key swaps and keys reused after a delete; the target must end equal to the source.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Connection } from "mysql2/promise";
import { startDpu } from "../../dist/index.js";
import {
  counterDiffs,
  LoadGen,
  readCheckpoint,
  runLoad,
  schemaSql,
  seededRandom,
  TABLES,
  targetConnection,
  testSeed,
  waitConverged,
} from "../support/failure.js";

const CHANGES = 100_000;

test("100,000 mixed changes over four tables converge: target == source by per-table checksums", {
  timeout: 400_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("conv");
  const srcDb = `${id}_src`;
  const dstDb = `${id}_dst`;
  const seed = testSeed();
  const consumer = `${id}:dpu-default`;
  let src: Connection | null = null;
  let loader: Connection | null = null;
  let dst: Connection | null = null;
  let nc: NatsConnection | null = null;
  const stopAll: (() => Promise<void>)[] = [];
  try {
    src = await sourceConnection();
    loader = await sourceConnection();
    dst = await targetConnection();
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    await src.query(schemaSql(srcDb));
    const cfg = testConfig(id, srcDb, { target: { url: urls.targetUrl, database: dstDb } });
    const capture = await startCapture(cfg);
    stopAll.push(() => capture.stop());
    const dpu = await startDpu(cfg);
    stopAll.push(() => dpu.stop());

    const gen = new LoadGen(loader, srcDb, seededRandom(seed));
    const t0 = Date.now();
    await runLoad(gen, { changes: CHANGES, maxTxn: 1000 });
    const loadMs = Date.now() - t0;
    assert.equal(gen.changes, CHANGES);

    const s = src;
    const d = dst;
    const { ms, sums } = await waitConverged(s, srcDb, d, dstDb, 180_000, () => JSON.stringify(dpu.status()));
    for (const t of TABLES) assert.match(sums[t]!, / n=[1-9]/, `${t} holds rows at the end of the load`);
    const counters = await counterDiffs(s, srcDb, d, dstDb);
    assert.deepEqual(counters.diffs.slice(0, 10), [], `acct.c differs on ${counters.diffs.length} rows`);

    const st = dpu.status();
    assert.equal(st.state, "running");
    assert.equal(st.deadLettered, 0, `dead-lettered: ${st.lastError}`);
    // Every captured row change was applied exactly once (no restart, no retry of a batch here).
    assert.equal(st.rowsApplied, CHANGES, "rows applied == row changes made on the source");
    // After a group applied on several connections the low-water mark is written with the next
    // group, or by the idle flush: the stored checkpoint reaches the last applied seq shortly.
    await waitFor(async () => (await readCheckpoint(d, consumer)) === dpu.status().appliedSeq, {
      timeoutMs: 5000,
      what: "the stored checkpoint to be the last applied seq",
    });
    process.stderr.write(
      `# converge: seed ${seed}, ${gen.txns} transactions, load ${loadMs} ms, converged ${ms} ms after the load; acct ${counters.rows} rows, max c ${counters.maxC}; ${JSON.stringify(sums)}\n`,
    );
  } finally {
    for (const s of stopAll.reverse()) await s().catch(() => {});
    if (nc) {
      await deleteStreams(nc, id).catch(() => {});
      await nc.close().catch(() => {});
    }
    await src?.query(`DROP DATABASE IF EXISTS \`${srcDb}\``).catch(() => {});
    await dst?.query(`DROP DATABASE IF EXISTS \`${dstDb}\``).catch(() => {});
    await dst?.query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [consumer]).catch(() => {});
    await src?.end().catch(() => {});
    await loader?.end().catch(() => {});
    await dst?.end().catch(() => {});
  }
});
