// Errors classified where they enter: a target that refuses writes for a while, and a source that
// is away while the DPU needs a table's definition from it. Neither may dead-letter or lose a change.
import assert from "node:assert/strict";
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { subjects } from "@dfs/nats";
import { startComponent, stopComponent } from "@dfs/stack";
import { jetstreamManager } from "@nats-io/jetstream";
import { openPipeline, type Pipeline, q } from "../support/pipeline.js";

async function deadLetters(p: Pipeline): Promise<number> {
  const jsm = await jetstreamManager(p.nc);
  const info = await jsm.streams.info(subjects.dlqStreamName(p.id)).catch(() => null);
  return info?.state.messages ?? 0;
}

async function count(p: Pipeline, side: "src" | "dst"): Promise<number> {
  const [rows] = await p[side].query(`SELECT COUNT(*) AS n FROM ${q(side === "src" ? p.db : p.targetDb)}.t`);
  return Number((rows as { n: number | string }[])[0]!.n);
}

test("a read-only target: the DPU waits and retries, dead-letters nothing, and applies everything once it may write", async () => {
  const user = `dfs_ro_${Date.now().toString(36)}`;
  const password = "ro-test-pw";
  // The DPU writes as a user of its own; p.dst (root) sets the server read-only and checks.
  const p = await openPipeline("ronly", {}, {}, { targetUrl: `mysql://${user}:${password}@127.0.0.1:13307` });
  try {
    for (const host of ["%", "localhost", "127.0.0.1"]) {
      await p.dst.query(`CREATE USER '${user}'@'${host}' IDENTIFIED BY '${password}'`);
      // Everything a DPU needs, and no privilege that bypasses read_only (SUPER, READ_ONLY ADMIN).
      await p.dst.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON *.* TO '${user}'@'${host}'`,
      );
    }
    await p.src.query(
      `CREATE TABLE ${q(p.db)}.t (id INT PRIMARY KEY, v VARCHAR(20), n INT NOT NULL DEFAULT 0)`,
    );
    await p.startCapture();
    const dpu = await p.startDpu();
    await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (1, 'a', 0), (2, 'b', 0)`);
    await p.converged("t");

    await p.dst.query("SET GLOBAL read_only = 1");
    const before = dpu.status().retries;
    for (let i = 3; i < 203; i++) await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (?, 'x', 0)`, [i]);
    await p.src.query(`UPDATE ${q(p.db)}.t SET n = n + 1`);
    await p.src.query(`DELETE FROM ${q(p.db)}.t WHERE id = 1`);
    await waitFor(() => dpu.status().retries >= before + 3, { timeoutMs: 30_000, what: "the DPU to retry" });
    const st = dpu.status();
    assert.equal(st.state, "running", "the DPU keeps running while it waits");
    assert.match(st.waitingFor, /DFS_TARGET_READ_ONLY/);
    assert.match(st.lastError, /read.only/i);
    assert.equal(st.deadLettered, 0, "nothing is dead-lettered");
    assert.equal(await deadLetters(p), 0);
    assert.equal(await count(p, "dst"), 2, "nothing was written meanwhile");

    await p.dst.query("SET GLOBAL read_only = 0");
    await p.converged("t", 60_000);
    assert.equal(await count(p, "dst"), 201);
    assert.equal(dpu.status().waitingFor, "", "no longer waiting");
    assert.equal(dpu.status().deadLettered, 0);
    assert.equal(await deadLetters(p), 0);
  } finally {
    await p.dst.query("SET GLOBAL read_only = 0").catch(() => {});
    await p.stopDpu().catch(() => {});
    for (const host of ["%", "localhost", "127.0.0.1"])
      await p.dst.query(`DROP USER IF EXISTS '${user}'@'${host}'`).catch(() => {});
    await p.close();
  }
});

test("the source is away while the DPU copies a missing table's definition: it retries, and dead-letters nothing", {
  timeout: 180_000,
}, async () => {
  const p = await openPipeline("srcaway");
  let sourceDown = false;
  try {
    await p.src.query(
      `CREATE TABLE ${q(p.db)}.t (id INT PRIMARY KEY, v VARCHAR(20), n INT NOT NULL DEFAULT 0)`,
    );
    const capture = await p.startCapture();
    await p.startDpu();
    await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (1, 'a', 0)`);
    await p.converged("t");
    await p.stopDpu();
    // The target loses the table; the next rows must recreate it from the source's definition.
    await p.dst.query(`DROP TABLE ${q(p.targetDb)}.t`);
    const published = capture.status().rowsPublished;
    for (let i = 2; i <= 50; i++) await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (?, 'x', 0)`, [i]);
    await waitFor(() => capture.status().rowsPublished >= published + 49, {
      timeoutMs: 30_000,
      what: "published",
    });
    await capture.stop();
    p.capture = null;

    await stopComponent("source");
    sourceDown = true;
    const dpu = await p.startDpu();
    await waitFor(() => dpu.status().retries >= 2, {
      timeoutMs: 30_000,
      what: "the DPU to retry the look-up",
    });
    assert.equal(dpu.status().deadLettered, 0, "a source outage is not a missing table");
    assert.equal(await deadLetters(p), 0);
    assert.equal(dpu.status().state, "running");

    await startComponent("source");
    sourceDown = false;
    // Rows 2..50 came after the table was dropped on the target: they fill the recreated table.
    await waitFor(async () => (await count(p, "dst").catch(() => -1)) === 49, {
      timeoutMs: 60_000,
      what: "the table to be created from the source's definition and filled",
    });
    assert.equal(dpu.status().deadLettered, 0);
    assert.equal(await deadLetters(p), 0);
  } finally {
    if (sourceDown) await startComponent("source").catch(() => {});
    await p.close();
  }
});
