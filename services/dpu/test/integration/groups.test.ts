// Table groups and replicas: relmgr (its own process) plans two groups; each runs three DPU
// replicas (their own processes), of which one applies and two stand by behind a lease. During a
// mixed load, the active replica of each group is killed with SIGKILL; a standby takes over, and
// the target ends equal to the source with every counter exact (nothing lost or applied twice).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { connectNats, readPlan, subjects } from "@dfs/nats";
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
  writeConfig,
} from "@dfs/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import type { DpuStatus } from "../../dist/index.js";
import {
  counterDiffs,
  LoadGen,
  runLoad,
  schemaSql,
  seededRandom,
  targetConnection,
  testSeed,
  waitConverged,
} from "../support/failure.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const RUN_DPU = join(HERE, "../support/run-dpu.js");
const DFS = join(HERE, "../../../../packages/cli/bin/dfs.js");
const REPLICAS = 3;

test("two table groups with three replicas each: the active replica of each is killed -9 under load; a standby takes over, nothing lost or doubled", {
  timeout: 300_000,
}, async (t) => {
  await ensureStack();
  const id = uniqueId("groups");
  const srcDb = `${id}_src`;
  const dstDb = `${id}_dst`;
  const seed = testSeed();
  const dir = tempDir("dfs-groups-");
  const src = await sourceConnection();
  const loader = await sourceConnection();
  const dst = await targetConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  const cfg = testConfig(id, srcDb, { target: { url: urls.targetUrl, database: dstDb } });
  const children: ServiceChild<DpuStatus>[] = [];
  let relmgr: ReturnType<typeof spawn> | null = null;
  let stopCapture: (() => Promise<void>) | null = null;
  try {
    await src.query(schemaSql(srcDb));
    const capture = await startCapture(cfg);
    stopCapture = () => capture.stop();
    const configOf = (group: string) =>
      writeConfig(
        dir,
        {
          source: { id, url: urls.sourceUrl, serverId: cfg.source.serverId, include: { databases: [srcDb] } },
          nats: { url: urls.natsUrl },
          target: { url: urls.targetUrl, database: dstDb },
          dpu: { group, http: { port: 0 }, grpc: { port: 0 }, lease: { ttlMs: "2s" } },
          relmgr: {
            http: { port: 0 },
            grpc: { port: 0 },
            groups: [
              { name: "ga", tables: [`${srcDb}.acct`, `${srcDb}.line`] },
              { name: "gb", tables: [`${srcDb}.tagged`, `${srcDb}.kv`] },
            ],
          },
          log: { level: "warn" },
        },
        `${group}.yaml`,
      );
    const configs = { ga: configOf("ga"), gb: configOf("gb") };
    relmgr = spawn(process.execPath, [DFS, "relmgr", "-c", configs.ga], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let relmgrErr = "";
    relmgr.stderr!.setEncoding("utf8").on("data", (c: string) => (relmgrErr += c));
    const plan = await waitFor(async () => (await readPlan(nc, id))?.plan, {
      timeoutMs: 30_000,
      what: `relmgr's plan (${relmgrErr})`,
    });
    assert.deepEqual(
      plan.groups.map((g) => [g.name, g.tables.sort().join(",")]),
      [
        ["ga", `${srcDb}.acct,${srcDb}.line`],
        ["gb", `${srcDb}.kv,${srcDb}.tagged`],
      ],
    );

    const replicas: Record<string, ServiceChild<DpuStatus>[]> = { ga: [], gb: [] };
    for (const g of ["ga", "gb"] as const)
      for (let i = 0; i < REPLICAS; i++) {
        const c = spawnServiceChild<DpuStatus>(RUN_DPU, configs[g]);
        replicas[g]!.push(c);
        children.push(c);
      }
    const alive = (c: ServiceChild<unknown>) => c.child.exitCode === null && c.child.signalCode === null;
    const active = (g: string) => replicas[g]!.filter((c) => alive(c) && c.ready());
    for (const g of ["ga", "gb"])
      await waitFor(() => active(g).length === 1, { timeoutMs: 30_000, what: `one active replica of ${g}` });
    // The others stand by: none of them reads.
    await new Promise((r) => setTimeout(r, 500)); // a moment in which a second reader would show
    for (const g of ["ga", "gb"]) assert.equal(active(g).length, 1, `${g}: exactly one replica applies`);

    const gen = new LoadGen(loader, srcDb, seededRandom(seed));
    const load = runLoad(gen, { changes: 30_000, maxTxn: 200, durationMs: 15_000 });
    load.catch(() => {});
    await new Promise((r) => setTimeout(r, 5000)); // the load is under way: mid-apply, not before it
    const takeovers: Record<string, number> = {};
    await Promise.all(
      (["ga", "gb"] as const).map(async (g) => {
        const victim = active(g)[0]!;
        const killedAt = Date.now();
        await killChild(victim);
        await waitFor(() => active(g).length === 1, {
          timeoutMs: 30_000,
          what: `a standby of ${g} to take over`,
        });
        takeovers[g] = Date.now() - killedAt;
      }),
    );
    await load;
    const { ms } = await waitConverged(src, srcDb, dst, dstDb, 120_000, () =>
      children.map((c) => JSON.stringify(c.status())).join("\n"),
    );
    const diffs = await counterDiffs(src, srcDb, dst, dstDb);
    assert.deepEqual(diffs.diffs, [], "every counter exact: nothing lost or applied twice");
    assert.ok(diffs.rows > 0 && diffs.maxC > 1, "the load updated counters");
    // Each group has its own durable consumer; neither was deleted by the other group.
    const jsm = await jetstreamManager(nc);
    const stream = subjects.streamName(id);
    const names = (await jsm.consumers.list(stream).next()).map((c) => c.name).sort();
    assert.deepEqual(names, ["dpu-ga", "dpu-gb"]);
    for (const g of ["ga", "gb"]) assert.ok(takeovers[g]! < 15_000, `${g} took over in ${takeovers[g]} ms`);
    t.diagnostic(
      `seed ${seed}: ${gen.changes} changes; takeover ga ${takeovers.ga} ms, gb ${takeovers.gb} ms; converged ${ms} ms after the load`,
    );
  } finally {
    await Promise.all(children.map((c) => killChild(c, "SIGTERM")));
    relmgr?.kill("SIGTERM");
    await stopCapture?.().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await src.query(`DROP DATABASE IF EXISTS \`${srcDb}\``).catch(() => {});
    await dst.query(`DROP DATABASE IF EXISTS \`${dstDb}\``).catch(() => {});
    await dst
      .query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer LIKE ?", [`${id}:%`])
      .catch(() => {});
    await dst.query("DELETE FROM `_dfs`.`_dfs_applied` WHERE consumer LIKE ?", [`${id}:%`]).catch(() => {});
    await nc.close();
    await Promise.all([src.end(), loader.end(), dst.end()].map((p) => p.catch(() => {})));
  }
});
