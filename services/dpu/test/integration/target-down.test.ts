// Failure test: the target MariaDB is stopped for 60 s in the middle of a steady load. The DPU must
// keep running and retrying (no crash, nothing dead-lettered), and once the target is back it must
// catch up by itself until target == source.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import { startComponent, stopComponent } from "@dfs/stack";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Connection } from "mysql2/promise";
import { type DpuStatus, startDpu } from "../../dist/index.js";
import {
  LoadGen,
  ReconnectingTarget,
  readCheckpoint,
  runLoad,
  schemaSql,
  seededRandom,
  targetConnection,
  testSeed,
  waitConverged,
} from "../support/failure.js";

const CHANGES = 20_000;
const LOAD_MS = 40_000;
const DOWN_MS = 60_000;

interface Sample {
  at: number;
  state: DpuStatus["state"];
  retries: number;
  rowsApplied: number;
}

test("target down for 60 s during a steady load: the DPU retries, keeps running and catches up by itself", {
  timeout: 400_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("tdown");
  const srcDb = `${id}_src`;
  const dstDb = `${id}_dst`;
  const consumer = `${id}:dpu-default`;
  const seed = testSeed();
  let src: Connection | null = null;
  let loader: Connection | null = null;
  const dst = new ReconnectingTarget();
  let nc: NatsConnection | null = null;
  const stopAll: (() => Promise<void>)[] = [];
  try {
    src = await sourceConnection();
    loader = await sourceConnection();
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    await src.query(schemaSql(srcDb));
    const cfg = testConfig(id, srcDb, { target: { url: urls.targetUrl, database: dstDb } });
    const capture = await startCapture(cfg);
    stopAll.push(() => capture.stop());
    const dpu = await startDpu(cfg);
    stopAll.push(() => dpu.stop());

    const gen = new LoadGen(loader, srcDb, seededRandom(seed));
    const load = runLoad(gen, { changes: CHANGES, maxTxn: 100, durationMs: LOAD_MS });
    load.catch(() => {}); // awaited below

    await waitFor(() => dpu.status().rowsApplied >= 2000, {
      timeoutMs: 60_000,
      intervalMs: 20,
      what: "2,000 rows applied before the target goes down",
    });
    await stopComponent("target");
    const downAt = Date.now();
    const loadAtStop = gen.changes;
    await assert.rejects(targetConnection(), "the target refuses connections while stopped");

    // 60 s without a target: the DPU keeps running and keeps retrying; nothing is applied.
    const samples: Sample[] = [];
    await waitFor(
      () => {
        const s = dpu.status();
        samples.push({
          at: Date.now() - downAt,
          state: s.state,
          retries: s.retries,
          rowsApplied: s.rowsApplied,
        });
        return Date.now() - downAt >= DOWN_MS;
      },
      { timeoutMs: DOWN_MS + 10_000, intervalMs: 250, what: "the end of the 60 s outage" },
    );
    const loadWhileDown = gen.changes - loadAtStop;
    const down = dpu.status();
    await startComponent("target");
    const upAt = Date.now();

    const notRunning = samples.filter((s) => s.state !== "running");
    assert.deepEqual(notRunning.slice(0, 3), [], "the DPU stays running while the target is down");
    const at = (ms: number) => samples.find((s) => s.at >= ms)!;
    const first = samples[0]!;
    assert.ok(
      at(10_000).retries > first.retries,
      `retries grow in the first 10 s (${JSON.stringify([first, at(10_000)])})`,
    );
    assert.ok(
      down.retries > at(10_000).retries,
      `retries keep growing until the target is back (${at(10_000).retries} -> ${down.retries})`,
    );
    assert.equal(down.rowsApplied, at(1000).rowsApplied, "nothing is applied while the target is down");
    assert.match(down.lastError, /\S/, "the status names the target error");
    assert.ok(loadWhileDown > 0, "the source kept changing while the target was down");
    assert.ok(down.queued > 0, `changes are waiting in the DPU's queue (${down.queued})`);

    await load;
    assert.equal(gen.changes, CHANGES);
    const { ms } = await waitConverged(src, srcDb, dst, dstDb, 120_000, () => JSON.stringify(dpu.status()));
    const recoveredMs = Date.now() - upAt;
    const st = dpu.status();
    assert.equal(st.state, "running");
    assert.equal(st.deadLettered, 0, `dead-lettered: ${st.lastError}`);
    assert.equal(st.rowsApplied, CHANGES, "every row change applied exactly once");
    assert.equal(
      await readCheckpoint(dst, consumer),
      st.appliedSeq,
      "the checkpoint is the last applied seq",
    );
    process.stderr.write(
      `# target-down: seed ${seed}; ${loadAtStop} changes before the stop, ${loadWhileDown} while down; retries ${first.retries} -> ${at(10_000).retries} (10 s) -> ${down.retries} (60 s); queued ${down.queued}; lastError "${down.lastError}"; converged ${recoveredMs} ms after the restart (${ms} ms of polling)\n`,
    );
  } finally {
    await startComponent("target").catch((e: Error) =>
      process.stderr.write(`# target restart: ${e.message}\n`),
    );
    for (const s of stopAll.reverse()) await s().catch(() => {});
    if (nc) {
      await deleteStreams(nc, id).catch(() => {});
      await nc.close().catch(() => {});
    }
    await src?.query(`DROP DATABASE IF EXISTS \`${srcDb}\``).catch(() => {});
    await dst.query(`DROP DATABASE IF EXISTS \`${dstDb}\``).catch(() => {});
    await dst.query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [consumer]).catch(() => {});
    await dst.end();
    await src?.end().catch(() => {});
    await loader?.end().catch(() => {});
  }
});
