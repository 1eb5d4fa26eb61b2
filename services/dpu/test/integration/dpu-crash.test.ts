// Failure test: the DPU (a child process) is killed with SIGKILL at 5 random points while it applies
// a 70,000-row-change load, and restarted each time with the same config. The target must end equal
// to the source, every `c = c + 1` counter exactly right (nothing applied twice or lost), and the
// checkpoint must never go backwards.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { connectNats, subjects } from "@dfs/nats";
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
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Connection } from "mysql2/promise";
import { type DpuStatus, startDpu } from "../../dist/index.js";
import {
  counterDiffs,
  LoadGen,
  readCheckpoint,
  runLoad,
  schemaSql,
  seededRandom,
  targetConnection,
  testSeed,
  waitConverged,
} from "../support/failure.js";

const CHANGES = 70_000;
const LOAD_MS = 45_000;
const KILLS = 5;

interface Kill {
  afterRows: number;
  midBatch: boolean;
  checkpoint: number;
  restartedAt: number;
  streamLastSeq: number;
  loadChanges: number;
  /** The durable consumer right after the restart. */
  consumer: { delivered: number; ackFloor: number; ackPending: number };
}

test("kill -9 of the DPU at 5 random points during a 70,000-change load: no change lost or applied twice", {
  timeout: 420_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("dcrash");
  const srcDb = `${id}_src`;
  const dstDb = `${id}_dst`;
  const consumer = `${id}:dpu-default`;
  const seed = testSeed();
  const dir = tempDir("dfs-dpu-crash-");
  let src: Connection | null = null;
  let loader: Connection | null = null;
  let dst: Connection | null = null;
  let probe: Connection | null = null;
  let sampleConn: Connection | null = null;
  let nc: NatsConnection | null = null;
  let child: DpuChild | null = null;
  let stopCapture: (() => Promise<void>) | null = null;
  let sampler: NodeJS.Timeout | undefined;
  let loadDone = false;
  try {
    src = await sourceConnection();
    loader = await sourceConnection();
    dst = await targetConnection();
    probe = await targetConnection();
    sampleConn = await targetConnection();
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    await src.query(schemaSql(srcDb));
    const cfg = testConfig(id, srcDb, { target: { url: urls.targetUrl, database: dstDb } });
    const capture = await startCapture(cfg);
    stopCapture = () => capture.stop();
    const configPath = writeConfig(dir, {
      source: { id, url: urls.sourceUrl, serverId: cfg.source.serverId, include: { databases: [srcDb] } },
      nats: { url: urls.natsUrl },
      target: { url: urls.targetUrl, database: dstDb },
      log: { level: "warn" },
    });
    const jsm = await jetstreamManager(nc);
    const streamLastSeq = async () => (await jsm.streams.info(subjects.streamName(id))).state.last_seq;

    child = spawnDpu(configPath);
    await waitReady(child);

    // The checkpoint, sampled every 20 ms across every restart: it must never go backwards.
    const samples: number[] = [];
    let sampling = false;
    sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      readCheckpoint(sampleConn!, consumer)
        .then((s) => samples.push(s))
        .catch(() => {})
        .finally(() => {
          sampling = false;
        });
    }, 20);

    const gen = new LoadGen(loader, srcDb, seededRandom(seed), 1000);
    await gen.createHot(10);
    const load = runLoad(gen, { changes: CHANGES, maxTxn: 1000, durationMs: LOAD_MS }).finally(() => {
      loadDone = true;
    });
    load.catch(() => {}); // awaited below

    // Whether the DPU is running a data or checkpoint statement right now: inside a target
    // transaction that has not committed. (PROCESSLIST is live; INNODB_TRX is cached for 100 ms.)
    const inTransaction = async (): Promise<boolean> => {
      const [rows] = await probe!.query(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND = 'Query' AND (INFO LIKE 'INSERT INTO%' OR INFO LIKE 'DELETE FROM%') AND (LOCATE(?, INFO) > 0 OR LOCATE(?, INFO) > 0)",
        [`\`${dstDb}\``, `'${consumer}'`],
      );
      return (rows as unknown[]).length > 0;
    };

    const kills: Kill[] = [];
    const rnd = seededRandom(seed ^ 0x5eed);
    for (let k = 0; k < KILLS; k++) {
      const c: DpuChild = child;
      const afterRows = 200 + Math.floor(rnd() * 2500);
      await waitFor(() => (c.status()?.rowsApplied ?? 0) >= afterRows, {
        timeoutMs: 60_000,
        intervalMs: 5,
        what: `the DPU child to apply ${afterRows} rows before kill ${k + 1}`,
      }).catch((e: Error) => {
        throw new Error(`${e.message}; status ${JSON.stringify(c.status())}; stderr ${c.stderr()}`);
      });
      // Then up to 1 s for a moment it is inside a target transaction: most kills land mid-batch.
      let midBatch = false;
      await waitFor(async () => (midBatch = await inTransaction()), {
        timeoutMs: 1000,
        intervalMs: 1,
        what: "a DPU transaction in progress",
      }).catch(() => {}); // none seen: kill between batches
      c.child.kill("SIGKILL");
      assert.equal(await c.exited, "SIGKILL", `the DPU child dies of SIGKILL: ${c.stderr()}`);
      assert.ok(!loadDone, `kill ${k + 1} lands while the load is still running`);
      const checkpoint = await readCheckpoint(dst, consumer);
      child = spawnDpu(configPath);
      await waitReady(child);
      const restartedAt = child.firstStatus()!.appliedSeq;
      assert.ok(
        restartedAt >= checkpoint,
        `restart ${k + 1} resumes from the checkpoint (${restartedAt} >= ${checkpoint})`,
      );
      kills.push({
        afterRows,
        midBatch,
        checkpoint,
        restartedAt,
        streamLastSeq: await streamLastSeq(),
        consumer: await jsm.consumers.info(subjects.streamName(id), "dpu-default").then((i) => ({
          delivered: i.delivered.stream_seq,
          ackFloor: i.ack_floor.stream_seq,
          ackPending: i.num_ack_pending,
        })),
        loadChanges: gen.changes,
      });
    }
    assert.equal(kills.length, KILLS);

    await load;
    assert.equal(gen.changes, CHANGES);
    const last = child;
    const { ms } = await waitConverged(src, srcDb, dst, dstDb, 180_000, () =>
      JSON.stringify({ status: last.status(), kills, stderr: last.stderr().slice(-2000) }),
    );
    const counters = await counterDiffs(src, srcDb, dst, dstDb);
    assert.deepEqual(
      counters.diffs.slice(0, 10),
      [],
      `acct.c differs on ${counters.diffs.length} of ${counters.rows} rows`,
    );
    assert.ok(counters.maxC >= 50, `rows were incremented many times (max c ${counters.maxC})`);

    clearInterval(sampler);
    const backwards = samples.flatMap((s, i) =>
      i > 0 && s < samples[i - 1]! ? [`${samples[i - 1]} -> ${s}`] : [],
    );
    assert.ok(samples.length > 100, `checkpoint samples taken (${samples.length})`);
    assert.deepEqual(backwards, [], "the checkpoint never goes backwards");
    const st = last.status()!;
    assert.equal(st.state, "running");
    assert.equal(st.deadLettered, 0, `dead-lettered: ${st.lastError}`);
    process.stderr.write(
      `# dpu-crash: seed ${seed}; ${kills.filter((x) => x.midBatch).length}/${KILLS} kills mid-batch; converged ${ms} ms after the load; acct ${counters.rows} rows, max c ${counters.maxC}; ${samples.length} checkpoint samples; kills ${JSON.stringify(kills)}\n`,
    );
  } finally {
    clearInterval(sampler);
    await killChild(child);
    await stopCapture?.().catch(() => {});
    if (nc) {
      await deleteStreams(nc, id).catch(() => {});
      await nc.close().catch(() => {});
    }
    await src?.query(`DROP DATABASE IF EXISTS \`${srcDb}\``).catch(() => {});
    await dst?.query(`DROP DATABASE IF EXISTS \`${dstDb}\``).catch(() => {});
    await dst?.query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [consumer]).catch(() => {});
    for (const c of [src, loader, dst, probe, sampleConn]) await c?.end().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});

// Regression test for the same loss without a crash: a clean stop leaves the messages the DPU had
// queued unacknowledged, and the next DPU must still apply them before anything newer.
test("a clean stop with a backlog queued, then a restart: nothing is lost", {
  timeout: 120_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("dstop");
  const srcDb = `${id}_src`;
  const dstDb = `${id}_dst`;
  const seed = testSeed();
  const src = await sourceConnection();
  const loader = await sourceConnection();
  const dst = await targetConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  const stopAll: (() => Promise<void>)[] = [];
  try {
    await src.query(schemaSql(srcDb));
    const cfg = testConfig(id, srcDb, { target: { url: urls.targetUrl, database: dstDb } });
    const capture = await startCapture(cfg);
    stopAll.push(() => capture.stop());
    let dpu = await startDpu(cfg);
    stopAll.push(() => dpu.stop());
    const gen = new LoadGen(loader, srcDb, seededRandom(seed));
    const load = runLoad(gen, { changes: 20_000, maxTxn: 1000, durationMs: 8000 });
    load.catch(() => {}); // awaited below
    const first = dpu;
    await waitFor(() => first.status().rowsApplied >= 1000, {
      timeoutMs: 30_000,
      what: "1,000 rows applied",
    });
    first.pause();
    await waitFor(() => first.status().queued >= 50, { timeoutMs: 30_000, what: "50 messages queued" });
    const queued = first.status().queued;
    await first.stop();
    dpu = await startDpu(cfg);
    await load;
    const { ms } = await waitConverged(src, srcDb, dst, dstDb, 60_000, () => JSON.stringify(dpu.status()));
    assert.equal(dpu.status().deadLettered, 0);
    process.stderr.write(
      `# clean stop: seed ${seed}; ${queued} messages queued at the stop; converged in ${ms} ms\n`,
    );
  } finally {
    for (const s of stopAll.reverse()) await s().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc.close().catch(() => {});
    await src.query(`DROP DATABASE IF EXISTS \`${srcDb}\``).catch(() => {});
    await dst.query(`DROP DATABASE IF EXISTS \`${dstDb}\``).catch(() => {});
    await dst
      .query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer = ?", [`${id}:dpu-default`])
      .catch(() => {});
    for (const c of [src, loader, dst]) await c.end().catch(() => {});
  }
});

// --- the DPU as a child process (test/support/run-dpu) ---

/** The compiled DPU runner (dist-test/support/run-dpu.js). */
const RUNNER = join(dirname(fileURLToPath(import.meta.url)), "..", "support", "run-dpu.js");

type DpuChild = ServiceChild<DpuStatus>;

const spawnDpu = (configPath: string): DpuChild => spawnServiceChild<DpuStatus>(RUNNER, configPath);
const waitReady = (c: DpuChild): Promise<void> => waitChildReady(c, "dpu");
