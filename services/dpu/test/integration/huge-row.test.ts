// A row past 512 MiB (better-sqlite3's row limit, and V8's longest string) flows source -> capture
// -> journal (in parts) -> JetStream (chunks) -> DPU -> target, byte for byte, between small rows:
// a 640 MiB LONGBLOB made by the source (RANDOM_BYTES, never held by this process), compared by
// LENGTH and SHA2 on both servers. Capture and the DPU run as their own processes, so each one's
// peak resident memory (VmHWM) is its own; both must stay within a small multiple of the row.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { waitFor } from "@dfs/common";
import {
  killChild,
  type ServiceChild,
  spawnServiceChild,
  tempDir,
  urls,
  waitChildReady,
  writeConfig,
} from "@dfs/testkit";
import { openPipeline, type Pipeline, q } from "../support/pipeline.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const DPU_RUNNER = join(HERE, "../support/run-dpu.js");
const CAPTURE_RUNNER = join(HERE, "../../../capture/dist-test/support/run-capture.js");
const MB = 1024 * 1024;
/** The large row: past 512 MiB. */
const ROW_MB = 640;

/** Resident memory of a process now and at its peak (VmRSS, VmHWM), in MiB. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { rss: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

/** Every row as id, note, length and SHA-256 of its blob, ordered by id (computed by the server). */
async function digest(conn: Pipeline["src"], db: string): Promise<string[]> {
  const [rows] = await conn.query(
    `SELECT id, note, LENGTH(b) AS n, SHA2(b, 256) AS h FROM ${q(db)}.files ORDER BY id`,
  );
  return (rows as { id: number; note: string; n: string | null; h: string | null }[]).map(
    (r) => `${r.id} ${r.note} ${r.n} ${r.h}`,
  );
}

async function count(conn: Pipeline["src"], db: string): Promise<number> {
  const [rows] = await conn.query(`SELECT COUNT(*) AS c FROM ${q(db)}.files`);
  return Number((rows as { c: string }[])[0]!.c);
}

test(`huge row: a ${ROW_MB} MiB LONGBLOB between small rows arrives exactly; capture's and the DPU's memory stay within a few copies of it`, {
  timeout: 900_000,
}, async (t) => {
  const p = await openPipeline("huge");
  const t0 = performance.now();
  const seconds = () => Math.round((performance.now() - t0) / 100) / 10;
  const src = p.src;
  const table = `${q(p.db)}.files`;
  let capture: ServiceChild<unknown> | null = null;
  let dpu: ServiceChild<{ pending?: number }> | null = null;
  try {
    // The stack runs both servers with max_allowed_packet=1G; a stack started with less is raised
    // here (never lowered): sessions opened from now on see it, the children's included.
    for (const conn of [src, p.dst])
      await conn.query(
        "SET GLOBAL max_allowed_packet = GREATEST(@@GLOBAL.max_allowed_packet, 1024 * 1024 * 1024)",
      );
    await src.query("SET SESSION group_concat_max_len = 1024 * 1024 * 1024");
    await src.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, note VARCHAR(20) NOT NULL, b LONGBLOB)`);

    const dir = tempDir("dfs-huge-");
    const config = writeConfig(dir, {
      source: {
        id: p.id,
        url: urls.sourceUrl,
        serverId: p.cfg.source.serverId,
        include: { databases: [p.db] },
      },
      nats: { url: urls.natsUrl },
      target: { url: urls.targetUrl, database: p.targetDb },
      capture: { journal: { path: join(dir, "journal.db") }, http: { port: 0 }, grpc: { port: 0 } },
      dpu: { http: { port: 0 }, grpc: { port: 0 } },
      log: { level: "warn" },
    });
    capture = spawnServiceChild(CAPTURE_RUNNER, config);
    await waitChildReady(capture, "capture", 60_000);
    dpu = spawnServiceChild(DPU_RUNNER, config);
    await waitChildReady(dpu, "dpu", 60_000);

    let nextId = 1;
    const small = async (n: number) => {
      for (let i = 0; i < n; i++)
        await src.query(`INSERT INTO ${table} (id, note, b) VALUES (?, 'small', 'x')`, [nextId++]);
    };
    const arrived = async (what: string, timeoutMs: number) => {
      const want = await count(src, p.db);
      await waitFor(async () => (await count(p.dst, p.targetDb).catch(() => -1)) === want, {
        timeoutMs,
        intervalMs: 500,
        what: `${what}: ${want} rows in the target (dpu ${JSON.stringify(dpu?.status())}; capture stderr ${capture?.stderr().slice(-2000)}; dpu stderr ${dpu?.stderr().slice(-2000)})`,
      });
    };
    await small(3);
    await arrived("the first small rows", 60_000);
    const before = { capture: memoryOf(capture.child.pid!), dpu: memoryOf(dpu.child.pid!) };

    // One row of ROW_MB random MiB, made by the server 1 KiB at a time.
    await src.query(
      `INSERT INTO ${table} (id, note, b) SELECT ${nextId++}, 'huge', GROUP_CONCAT(RANDOM_BYTES(1024) SEPARATOR '') FROM ${q(p.db)}.seq_1_to_${ROW_MB * 1024}`,
    );
    const written = seconds();
    await small(3);
    await arrived(`after the ${ROW_MB} MiB row`, 600_000);
    const applied = seconds();

    // Byte for byte, computed by each server.
    const want = await digest(src, p.db);
    assert.equal(want.length, 7);
    assert.equal(want[3]!.split(" ")[2], String(ROW_MB * MB), "the source holds the large row");
    assert.deepEqual(await digest(p.dst, p.targetDb), want);

    const after = { capture: memoryOf(capture.child.pid!), dpu: memoryOf(dpu.child.pid!) };
    const report = { rowMiB: ROW_MB, writtenAtS: written, appliedAtS: applied, before, after };
    t.diagnostic(JSON.stringify(report));
    console.log(JSON.stringify(report));
    // Peak resident memory: a few copies of the row at most (see docs/capture.md and docs/dpu.md,
    // "Large rows", for what holds them), never unbounded.
    assert.ok(
      after.capture.peak < before.capture.rss + 5 * ROW_MB,
      `capture peaked at ${after.capture.peak} MiB`,
    );
    assert.ok(after.dpu.peak < before.dpu.rss + 4 * ROW_MB, `the DPU peaked at ${after.dpu.peak} MiB`);
  } finally {
    await killChild(dpu, "SIGTERM");
    await killChild(capture, "SIGTERM");
    await src.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await p.close();
  }
});
