// Chaos: the whole system under a continuous mixed load from several clients while faults are
// injected in turn, several rounds of them; afterwards the target equals the source by checksum
// and row by row, every counter `c` (incremented by every update) included, so no change was lost
// or applied twice. docs/testing.md describes it.
//
// It runs on a stack of its own (MariaDB source and target, nats-server, on free ports, data in a
// temporary directory), because it restarts servers: the shared stack other tests and the
// benchmarks use meanwhile is never touched. The services are separate `dfs` processes: `dfs
// capture`, `dfs relmgr` and one `dfs dpu` per table group. relmgr plans two groups (ga: acct,
// line; gb: tagged, kv); each DPU waits for that plan in NATS KV before it applies, so every DPU
// restart depends on the plan having survived (NATS restarts included). Transactions that touch
// both groups are applied by both DPUs.
//
// Faults, each round in a rotated order: kill -9 capture; kill -9 both DPUs; kill -9 relmgr
// (each started again at once); restart nats-server (same data dir: stream, consumers, plan and
// leases survive on file storage); kill -9 the target mariadbd and start it again (crash
// recovery); restart the source (the clients wait meanwhile, so no COMMIT's outcome is in doubt);
// cut the source connections (KILL every session of capture's user, the binlog dump among them).
// After each fault the test waits until a marker transaction written after it reached the target
// through both groups, and until a table created after it entered relmgr's plan (DDL through
// capture and NATS, relmgr re-reading the source), then lets the load run a while.
//
// Lengths (environment): DFS_CHAOS_ROUNDS (default 3, CI 1), DFS_CHAOS_GAP_MS (load between
// faults, default 4000, CI 2000), DFS_CHAOS_CLIENTS (writers, default 3), DFS_CHAOS_RATE (row
// changes per second per writer, default 300), DFS_TEST_SEED (repeat a run's load),
// DFS_CHAOS_FAULTS (some of capture,dpu,relmgr,nats,target,source-restart,source), and
// DFS_CHAOS_KEEP_LOGS=1 (keep the logs of a run that passed; a failed run's are always kept).
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "@dfs/common";
import { connectNats, readPlan } from "@dfs/nats";
import { freePort, type PrivateStack, startPrivateStack, writeConfig } from "@dfs/testkit";
import {
  ChaosLoad,
  connectionOptions,
  counterTotals,
  Reconnecting,
  rowDiffs,
  ServiceProcess,
} from "../support/chaos.js";
import { schemaSql, testSeed, waitConverged } from "../support/failure.js";

const CI = process.env.CI === "true";
const envInt = (name: string, fallback: number) => Number(process.env[name]) || fallback;
const ROUNDS = envInt("DFS_CHAOS_ROUNDS", CI ? 1 : 3);
const GAP_MS = envInt("DFS_CHAOS_GAP_MS", CI ? 2000 : 4000);
const CLIENTS = envInt("DFS_CHAOS_CLIENTS", 3);
const RATE = envInt("DFS_CHAOS_RATE", 300);
/** How long the pipeline may take to carry a marker through after a fault. */
const RECOVERY_MS = 90_000;
const DB = "chaos";
const SOURCE_USER = "dfs_chaos";

test(`chaos: ${ROUNDS} round(s) of kill -9 capture, DPUs and relmgr, NATS, target and source restarts, cut source connections, under load`, {
  timeout: 180_000 + ROUNDS * 150_000,
}, async (t) => {
  const seed = testSeed();
  const started = Date.now();
  const stack: PrivateStack = await startPrivateStack("dfs-chaos-");
  const services: ServiceProcess[] = [];
  let load: ChaosLoad | null = null;
  const src = new Reconnecting(connectionOptions(stack.urls.sourceUrl));
  const dst = new Reconnecting(connectionOptions(stack.urls.targetUrl));
  const logs = join(stack.dir, "logs");
  mkdirSync(logs);
  const cleanups: (() => Promise<void>)[] = [];
  const diag = () => services.map((s) => s.tail()).join("\n");
  // The services' and servers' logs outlive the stack's directory, for the one who looks into a failure.
  const keepLogs = () => {
    try {
      const kept = mkdtempSync(join(tmpdir(), "dfs-chaos-logs-"));
      cpSync(logs, kept, { recursive: true });
      for (const f of ["source.err", "target.err", "nats.log"]) cpSync(join(stack.dir, f), join(kept, f));
      t.diagnostic(`logs kept in ${kept}`);
    } catch (err) {
      t.diagnostic(`logs not kept: ${(err as Error).message}`); // the test's own error matters more
    }
  };
  try {
    // Capture reads as a user with only the privileges it needs, so that its sessions (and none
    // of the load's) can be found and cut on the source.
    await src.query(
      `CREATE USER '${SOURCE_USER}'@'127.0.0.1'; GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO '${SOURCE_USER}'@'127.0.0.1'`,
    );

    const sourceUrl = stack.urls.sourceUrl.replace("root@", `${SOURCE_USER}@`);
    const [captureHttp, relmgrHttp, gaHttp, gbHttp] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const configOf = (group: string, dpuHttp: number) =>
      writeConfig(
        stack.dir,
        {
          source: { id: "chaos", url: sourceUrl, serverId: 7001, include: { databases: [DB] } },
          target: { url: stack.urls.targetUrl },
          nats: { url: stack.urls.natsUrl },
          capture: {
            journal: { path: join(stack.dir, "journal.db") },
            heartbeatIntervalMs: "500ms",
            http: { port: captureHttp },
            grpc: { port: 0 },
            lease: { ttlMs: "3s" },
            reconnect: { initialMs: "100ms", maxMs: "2s" },
          },
          dpu: {
            group,
            http: { port: dpuHttp },
            grpc: { port: 0 },
            apply: { connections: 3 },
            retry: { initialMs: "100ms", maxMs: "2s" },
          },
          relmgr: {
            http: { port: relmgrHttp },
            grpc: { port: 0 },
            groups: [
              { name: "ga", tables: [`${DB}.acct`, `${DB}.line`] },
              { name: "gb", tables: [`${DB}.tagged`, `${DB}.kv`] },
            ],
          },
          log: { level: "info" },
        },
        `${group}.yaml`,
      );
    const ga = configOf("ga", gaHttp);
    const gb = configOf("gb", gbHttp);
    const capture = new ServiceProcess(
      "capture",
      ["capture", "-c", ga],
      captureHttp,
      join(logs, "capture.log"),
    );
    const relmgr = new ServiceProcess("relmgr", ["relmgr", "-c", ga], relmgrHttp, join(logs, "relmgr.log"));
    const dpuA = new ServiceProcess("dpu-ga", ["dpu", "-c", ga], gaHttp, join(logs, "dpu-ga.log"));
    const dpuB = new ServiceProcess("dpu-gb", ["dpu", "-c", gb], gbHttp, join(logs, "dpu-gb.log"));
    services.push(capture, relmgr, dpuA, dpuB);
    // Capture first: once it reads, the schema is created (and reaches the target through the
    // stream); relmgr then plans the groups from it, and the DPUs follow that plan.
    capture.start();
    await capture.waitLive("/readyz");
    await src.query(schemaSql(DB));
    // Markers: rows no client touches, one per group, bumped together after each fault.
    await src.query(
      `INSERT INTO ${DB}.acct (id, c) VALUES (0, 0); INSERT INTO ${DB}.kv (k, v, c) VALUES ('marker', '', 0)`,
    );
    relmgr.start();
    await relmgr.waitLive("/readyz");
    for (const s of [dpuA, dpuB]) s.start();
    for (const s of [dpuA, dpuB]) await s.waitLive();

    // A marker transaction on the source (touching both groups), then its values in the target.
    let markers = 0;
    /** When the marker reached the target through each group, in ms after `since`. */
    const carried = async (what: string, since = Date.now()): Promise<{ ga: number; gb: number }> => {
      const seen = { ga: 0, gb: 0 };
      // A fresh session first (the source may have restarted), so the marker's COMMIT is not cut.
      await waitFor(async () => (await src.query("SELECT 1")) && true, {
        timeoutMs: RECOVERY_MS,
        what: "a session on the source",
      });
      markers++;
      await src.query(
        `BEGIN; UPDATE ${DB}.acct SET c = c + 1 WHERE id = 0; UPDATE ${DB}.kv SET c = c + 1 WHERE k = 'marker'; COMMIT`,
      );
      await waitFor(
        async () => {
          const [rows] = await dst.query(
            `SELECT (SELECT c FROM ${DB}.acct WHERE id = 0) AS a, (SELECT c FROM ${DB}.kv WHERE k = 'marker') AS b`,
          );
          const r = (rows as { a: string | null; b: string | null }[])[0]!;
          // At least: a marker applied twice shows in the row-by-row comparison at the end.
          if (!seen.ga && Number(r.a) >= markers) seen.ga = Math.max(1, Date.now() - since);
          if (!seen.gb && Number(r.b) >= markers) seen.gb = Math.max(1, Date.now() - since);
          return seen.ga && seen.gb;
        },
        {
          timeoutMs: RECOVERY_MS,
          intervalMs: 200,
          what: `a marker written after ${what} to reach the target`,
        },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${diag()}`);
      });
      return seen;
    };
    await carried("start-up");

    // relmgr at work: a table created on the source reaches relmgr as DDL through capture and
    // NATS; relmgr re-reads the source's schema and publishes a plan that has it (in a group of
    // its own: no rows are written to it, no DPU applies it).
    const nc = await connectNats({ url: stack.urls.natsUrl, name: "chaos-test" });
    cleanups.push(() => nc.close());
    let extras = 0;
    const planned = async (what: string) => {
      const table = `${DB}.extra_${++extras}`;
      await src.query(`CREATE TABLE ${table} (id INT PRIMARY KEY)`);
      await waitFor(
        async () => (await readPlan(nc, "chaos"))?.plan.groups.some((g) => g.tables.includes(table)),
        {
          timeoutMs: RECOVERY_MS,
          intervalMs: 200,
          what: `relmgr to plan ${table}, created after ${what}`,
        },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${relmgr.tail()}`);
      });
    };
    await planned("start-up");

    load = new ChaosLoad(stack.urls.sourceUrl, DB, {
      clients: CLIENTS,
      seed,
      ratePerClient: RATE,
      maxTxn: 200,
      bigTxn: 4000,
    });
    await load.open();
    load.start();

    const sourceCuts: number[] = [];
    const allFaults: { key: string; name: string; inject: () => Promise<void> }[] = [
      {
        key: "capture",
        name: "kill -9 capture",
        inject: async () => {
          await capture.crashAndRestart();
          await capture.waitLive();
        },
      },
      {
        key: "dpu",
        name: "kill -9 both DPUs",
        inject: async () => {
          await Promise.all([dpuA.crashAndRestart(), dpuB.crashAndRestart()]);
          await Promise.all([dpuA.waitLive(), dpuB.waitLive()]);
        },
      },
      {
        key: "relmgr",
        name: "kill -9 relmgr",
        inject: async () => {
          await relmgr.crashAndRestart();
          await relmgr.waitLive();
        },
      },
      {
        key: "nats",
        name: "restart NATS",
        inject: async () => {
          await stack.stop("nats");
          await stack.start("nats");
        },
      },
      {
        key: "target",
        name: "kill -9 and restart the target",
        inject: async () => {
          await stack.stop("target", { hard: true });
          await stack.start("target");
        },
      },
      {
        key: "source-restart",
        name: "restart the source",
        inject: async () => {
          // The clients wait meanwhile: a COMMIT cut by the restart would leave their model unsure.
          await load!.pause();
          await stack.stop("source");
          await stack.start("source");
          await load!.resume();
        },
      },
      {
        key: "source",
        name: "cut the source connections",
        inject: async () => {
          const [rows] = await src.query(
            "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?",
            [SOURCE_USER],
          );
          const ids = (rows as { id: string }[]).map((r) => r.id);
          for (const id of ids) await src.query(`KILL ${id}`).catch(() => {});
          sourceCuts.push(ids.length);
        },
      },
    ];
    const only = process.env.DFS_CHAOS_FAULTS?.split(",");
    const faults = allFaults.filter((f) => !only || only.includes(f.key));
    const recovery: Record<string, string[]> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < faults.length; i++) {
        const { name, inject } = faults[(i + round) % faults.length]!;
        const at = Date.now();
        await inject();
        const { ga, gb } = await carried(name, at);
        await planned(name);
        recovery[name] = [...(recovery[name] ?? []), `${ga}/${gb}`];
        if (load.error) throw load.error;
        await delay(GAP_MS); // the load runs on between faults
      }
      t.diagnostic(`round ${round + 1}: ${load.changes()} row changes so far`);
    }
    await load.stop();
    await carried("the end of the load");

    const { ms } = await waitConverged(src, DB, dst, DB, 120_000, diag).catch(async (err: Error) => {
      const { diffs } = await rowDiffs(src, dst, DB);
      throw new Error(`${err.message}\nrows that differ:\n${diffs.join("\n")}`);
    });
    const { diffs, compared } = await rowDiffs(src, dst, DB);
    assert.deepEqual(diffs, [], "every row equal, its counter c included: nothing lost or applied twice");
    for (const table of ["acct", "kv"] as const)
      assert.deepEqual(
        await counterTotals(dst, DB, table),
        await counterTotals(src, DB, table),
        `${table}: counters`,
      );
    assert.ok(
      sourceCuts.every((n) => n > 0),
      `every cut found capture's sessions (${sourceCuts.join(", ")})`,
    );
    const crashes = services.flatMap((s) => s.crashes);
    assert.deepEqual(crashes, [], `no service exited by itself\n${diag()}`);

    const gens = load.gens;
    t.diagnostic(
      `seed ${seed}: ${ROUNDS} round(s), ${load.changes()} row changes in ${gens.reduce((n, g) => n + g.txns, 0)} transactions + ${load.bumps} contended bumps from ${CLIENTS + 1} clients (${gens.reduce((n, g) => n + g.rolledBack, 0)} rolled back by deadlocks); ${compared} rows compared; converged ${ms} ms after the load; ${Math.round((Date.now() - started) / 1000)} s in all`,
    );
    for (const [name, ms] of Object.entries(recovery))
      t.diagnostic(`${name}: marker through ga/gb in ${ms.join(", ")} ms`);
    if (process.env.DFS_CHAOS_KEEP_LOGS === "1") keepLogs();
  } catch (err) {
    keepLogs();
    throw err;
  } finally {
    await load?.stop().catch(() => {});
    await Promise.all(services.map((s) => s.stop()));
    await Promise.all([src.end(), dst.end(), ...cleanups.map((f) => f().catch(() => {}))]);
    await stack.remove();
  }
});
