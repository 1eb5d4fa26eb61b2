// The pipeline use under kill -9: the DPU (its own process) is killed twice while 20,000 mixed
// changes on customers -> orders -> order_items arrive, and restarted. Rows and their key-map
// entries commit together, so afterwards every target row is there once, every child points at
// its parent's target row, and no key-map entry is missing or left over.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import {
  deleteStreams,
  ensureStack,
  killChild,
  type ServiceChild,
  sourceConnection,
  spawnServiceChild,
  tempDir,
  testConfig,
  uniqueId,
  urls,
  waitChildReady,
  writeConfig,
} from "@dfs/testkit";
import type { DpuStatus } from "../../dist/index.js";
import { seededRandom, testSeed } from "../support/failure.js";
import { q, targetConnection } from "../support/pipeline.js";
import { shopDifferences, shopLoad, shopPipeline, sourceSchema, targetSchema } from "../support/shop.js";

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), "../support/run-dpu.js");

test("pipeline: the DPU killed -9 twice under 20,000 mixed changes: every row once, every child on its parent, key maps exact", {
  timeout: 300_000,
}, async (t) => {
  await ensureStack();
  const id = uniqueId("pcrash");
  const db = `${id}_src`;
  const tdb = `${id}_dst`;
  const seed = testSeed();
  const src = await sourceConnection();
  const writers = await Promise.all([0, 1].map(() => sourceConnection()));
  const dst = await targetConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  const cfg = testConfig(id, db, { target: { url: urls.targetUrl } });
  let child: ServiceChild<DpuStatus> | null = null;
  let stopCapture: (() => Promise<void>) | null = null;
  try {
    await src.query(`CREATE DATABASE ${q(db)}`);
    for (const sql of sourceSchema(db)) await src.query(sql);
    for (const sql of targetSchema(tdb)) await dst.query(sql);
    const capture = await startCapture(cfg);
    stopCapture = () => capture.stop();
    const configPath = writeConfig(tempDir("dfs-pcrash-"), {
      source: { id, url: urls.sourceUrl, serverId: cfg.source.serverId, include: { databases: [db] } },
      nats: { url: urls.natsUrl },
      target: { url: urls.targetUrl },
      dpu: { http: { port: 0 }, grpc: { port: 0 }, lease: { ttlMs: "1s" } },
      pipeline: shopPipeline(db, tdb),
      log: { level: "warn" },
    });
    const start = async () => {
      child = spawnServiceChild<DpuStatus>(RUNNER, configPath);
      await waitChildReady(child, "dpu", 60_000);
    };
    await start();
    const load = shopLoad(db, writers, 20_000, seededRandom(seed));
    load.catch(() => {});
    const applied: number[] = [];
    for (const afterMs of [2500, 3000]) {
      await new Promise((r) => setTimeout(r, afterMs)); // into the load, not waiting for a condition
      applied.push(child!.status()?.rowsApplied ?? 0);
      await killChild(child);
      await start();
    }
    const written = await load;
    let diffs: string[] = [];
    await waitFor(
      async () => {
        diffs = await shopDifferences(src, dst, db, tdb);
        return diffs.length === 0;
      },
      { timeoutMs: 120_000, intervalMs: 1000, what: "the target to equal the source through the mappings" },
    ).catch(() => {
      assert.deepEqual(diffs, [], `seed ${seed}; ${JSON.stringify(child?.status())}`);
    });
    assert.ok(
      applied.every((n) => n > 0),
      `the DPU had applied rows before each kill (${applied.join(", ")})`,
    );
    assert.equal(child!.status()?.deadLettered, 0, "nothing dead-lettered");
    t.diagnostic(`seed ${seed}: ${written} changes; rows applied before the kills: ${applied.join(", ")}`);
  } finally {
    await killChild(child, "SIGTERM");
    await stopCapture?.().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await src.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
    await dst.query(`DROP DATABASE IF EXISTS ${q(tdb)}`).catch(() => {});
    await dst
      .query("DELETE FROM `_dfs`.`_dfs_keymap` WHERE target_table LIKE ?", [`${tdb}.%`])
      .catch(() => {});
    for (const table of ["_dfs_checkpoint", "_dfs_applied"])
      await dst.query(`DELETE FROM \`_dfs\`.${q(table)} WHERE consumer LIKE ?`, [`${id}:%`]).catch(() => {});
    await nc.close();
    await Promise.all([src, dst, ...writers].map((c) => c.end().catch(() => {})));
  }
});
