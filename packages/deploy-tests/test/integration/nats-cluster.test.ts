// The pipeline on a 3-node JetStream cluster on loopback (the nats-server binary the stack uses,
// ports and store directories of this test's own), stream replicas 3 as the prod overlay has it.
// During a load the node leading the stream is killed -9, and later started again on its store.
// Nothing is lost or doubled: the target equals the source by checksum, and the counter column,
// incremented by every update, holds on the target exactly the number of updates made.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { connectNats, subjects } from "@dfs/nats";
import { sourceConnection, toYaml, uniqueId, urls } from "@dfs/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import mysql from "mysql2/promise";
import { requireTool } from "../support/repo.js";
import { type DfsProcess, freePort, startDfs, stop } from "../support/services.js";

const ROWS = 200;
const UPDATES = 3000;

interface Node {
  name: string;
  port: number;
  clusterPort: number;
  dir: string;
  proc: ChildProcess | null;
  exited: Promise<unknown>;
  log: string;
}

function startNode(bin: string, n: Node, all: Node[]): void {
  const routes = all.filter((o) => o !== n).map((o) => `nats://127.0.0.1:${o.clusterPort}`);
  const proc = spawn(
    bin,
    [
      "-a",
      "127.0.0.1",
      "-p",
      String(n.port),
      "-js",
      "-sd",
      n.dir,
      "-n",
      n.name,
      "--cluster_name",
      "dfs",
      "--cluster",
      `nats://127.0.0.1:${n.clusterPort}`,
      "--routes",
      routes.join(","),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  n.log = "";
  proc.stderr!.setEncoding("utf8").on("data", (c: string) => {
    n.log = (n.log + c).slice(-5000);
  });
  n.proc = proc;
  n.exited = new Promise((r) => proc.once("exit", r));
}

async function checksum(conn: mysql.Connection, table: string): Promise<string> {
  const [rows] = await conn.query(`CHECKSUM TABLE ${table}`);
  return String((rows as { Checksum: unknown }[])[0]?.Checksum);
}

test("capture and a DPU on a 3-node JetStream cluster lose and double nothing when the stream leader is killed -9", async () => {
  const bin = requireTool("nats-server", "apt-get install -y nats-server");
  const dir = mkdtempSync(join(tmpdir(), "dfs-natscluster-"));
  const nodes: Node[] = [];
  for (let i = 0; i < 3; i++) {
    const d = join(dir, `n${i}`);
    mkdirSync(d);
    nodes.push({
      name: `n${i}`,
      port: await freePort(),
      clusterPort: await freePort(),
      dir: d,
      proc: null,
      exited: Promise.resolve(),
      log: "",
    });
  }
  const natsUrl = nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(",");
  const id = uniqueId("jsc");
  const db = `${id}_db`;
  const src = await sourceConnection();
  const tgt = await mysql.createConnection({ host: "127.0.0.1", port: 13307, user: "root" });
  const procs: DfsProcess[] = [];
  const nc = { value: null as Awaited<ReturnType<typeof connectNats>> | null };
  const why = () =>
    `${procs.map((p) => `--- ${p.name}\n${p.output()}`).join("\n")}\n${nodes.map((n) => `--- ${n.name}\n${n.log}`).join("\n")}`;
  try {
    for (const n of nodes) startNode(bin, n, nodes);
    nc.value = await waitFor(async () => connectNats({ url: natsUrl, name: "dfs-test-cluster" }), {
      timeoutMs: 30_000,
      what: "the cluster to accept clients",
    });
    const conn = nc.value;
    // JetStream answers once the cluster has elected its meta leader (jetstreamManager asks it).
    const jsm = await waitFor(async () => jetstreamManager(conn), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: "JetStream's meta leader",
    });
    // A replicated stream can be placed once all three peers are current (on a busy 2-core host that
    // takes a while after the meta leader): the services start only then, so what is tested is the
    // leader's death under load, not the cluster's own start-up.
    const probe = `PROBE_${id.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
    await waitFor(
      async () => {
        await jsm.streams.add({ name: probe, subjects: [`probe.${id}`], num_replicas: 3 });
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 1000, what: "a stream with 3 replicas to be placed" },
    );
    await jsm.streams.delete(probe);

    await src.query(`CREATE DATABASE ${db}`);
    await src.query(`CREATE TABLE ${db}.t (id INT PRIMARY KEY, n INT NOT NULL, v VARCHAR(40))`);
    const config = join(dir, "dfs.yaml");
    writeFileSync(
      config,
      toYaml({
        source: {
          id,
          url: urls.sourceUrl,
          serverId: 5000 + Math.floor(Math.random() * 50_000),
          include: { databases: [db] },
        },
        target: { url: urls.targetUrl },
        nats: { url: natsUrl, stream: { replicas: 3 } },
        capture: {
          journal: { path: join(dir, "journal.db") },
          heartbeatIntervalMs: 500,
          http: { port: await freePort() },
          grpc: { port: await freePort() },
          publish: { ackTimeoutMs: 2000 },
          reconnect: { initialMs: 100, maxMs: 2000 },
        },
        dpu: { http: { port: await freePort() }, grpc: { port: await freePort() }, lease: { ttlMs: 2000 } },
        log: { level: "warn" },
      }),
    );
    procs.push(startDfs("capture", ["capture", "-c", config]));
    procs.push(startDfs("dpu", ["dpu", "-c", config]));
    const stream = subjects.streamName(id);
    const info = await waitFor(async () => jsm.streams.info(stream), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: "the stream",
    }).catch((e: Error) => assert.fail(`${e.message}\n${why()}`));
    assert.equal(info.config.num_replicas, 3);

    // The load: inserts, then updates that each add 1 to n of one row; the leader dies midway.
    const expected = new Map<number, number>();
    for (let i = 1; i <= ROWS; i++) {
      await src.query(`INSERT INTO ${db}.t VALUES (?, 0, ?)`, [i, `row ${i}`]);
      expected.set(i, 0);
    }
    let killed: Node | null = null;
    for (let u = 0; u < UPDATES; u++) {
      const row = 1 + ((u * 7919) % ROWS);
      await src.query(`UPDATE ${db}.t SET n = n + 1, v = ? WHERE id = ?`, [`u${u}`, row]);
      expected.set(row, expected.get(row)! + 1);
      if (u === Math.floor(UPDATES / 3)) {
        const leader = (await jsm.streams.info(stream)).cluster?.leader;
        killed = nodes.find((n) => n.name === leader) ?? nodes[0]!;
        killed.proc!.kill("SIGKILL");
        await killed.exited;
      }
      if (u === Math.floor((2 * UPDATES) / 3) && killed) startNode(bin, killed, nodes);
    }
    assert.ok(killed, "a node was killed");
    await src.query(`INSERT INTO ${db}.t VALUES (?, ?, 'last')`, [ROWS + 1, 0]);
    expected.set(ROWS + 1, 0);

    // The target catches up: the same checksum, and n on every row is the number of its updates.
    const table = `${db}.t`;
    const want = await checksum(src, table);
    await waitFor(async () => (await checksum(tgt, table).catch(() => "")) === want, {
      timeoutMs: 180_000,
      intervalMs: 500,
      what: "the target's checksum to equal the source's",
    }).catch((e: Error) => assert.fail(`${e.message}\n${why()}`));
    const [rows] = await tgt.query(`SELECT id, n FROM ${table} ORDER BY id`);
    const got = new Map((rows as { id: number; n: number }[]).map((r) => [r.id, r.n]));
    assert.equal(got.size, expected.size);
    for (const [rowId, n] of expected) assert.equal(got.get(rowId), n, `row ${rowId}`);
    let total = 0;
    for (const n of got.values()) total += n;
    assert.equal(total, UPDATES);
    // The restarted node is back in the stream's peer set.
    await waitFor(
      async () => {
        const c = (await jsm.streams.info(stream)).cluster;
        return (c?.replicas ?? []).filter((r) => r.current).length === 2;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: "all three stream peers current" },
    );
    for (const p of procs) assert.equal(p.child.exitCode, null, `${p.name} still runs\n${why()}`);
  } finally {
    for (const p of procs) await stop(p);
    await nc.value?.close().catch(() => {});
    for (const n of nodes) {
      n.proc?.kill("SIGTERM");
      await n.exited;
    }
    await src.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
    await tgt.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
    await src.end();
    await tgt.end();
    rmSync(dir, { recursive: true, force: true });
  }
});
