// The backup use end to end: capture -> stream -> the DPU's archive sink (a child process,
// `dfs dpu -c FILE`, killed with SIGKILL twice during a 50,000-change load and restarted), then
// every change of the stream is in the archive exactly once; `dfs archive replay` into an empty
// database equals the source; `dfs archive flashback --apply` of the range after a copy point
// brings the source back to the copy.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ArchiveReader, archiveStats } from "@dfs/archive";
import { type CaptureService, startCapture } from "@dfs/capture";
import { formatTableRef } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { loadConfig } from "@dfs/config";
import { connectNats } from "@dfs/nats";
import {
  deleteStreams,
  ensureStack,
  readStream,
  sourceConnection,
  tempDir,
  uniqueId,
  urls,
  writeConfig,
} from "@dfs/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Connection } from "mysql2/promise";
import { ArchiveLoad, archiveSchemaSql, q, TABLES } from "../support/archive-load.js";
import { seededRandom, testSeed } from "../support/failure.js";
import { tableDump, targetConnection } from "../support/pipeline.js";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const DFS = join(ROOT, "packages/cli/bin/dfs.js");
const CHANGES = 50_000;
/** Rows the load changes by its own count (affected rows differ a little from the binlog's row events). */
const LOAD_ROWS = 51_000;
const run = promisify(execFile);

function dfs(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [DFS, ...args], { maxBuffer: 256 * 1024 * 1024, cwd: ROOT });
}

/** The archiving DPU as its own process, as an operator runs it. */
function startDpuChild(config: string): {
  child: ChildProcess;
  exited: Promise<unknown>;
  stderr: () => string;
} {
  const child = spawn(process.execPath, [DFS, "dpu", "-c", config], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => {
    err = (err + c).slice(-20_000);
  });
  const exited = new Promise((r) => child.once("exit", r));
  return { child, exited, stderr: () => err };
}

function archivedChanges(dir: string): number {
  return archiveStats(new ArchiveReader(dir)).files.reduce((n, f) => n + f.changes, 0);
}

test("archive: 50,000 mixed changes through a DPU killed twice; exactly once, replay equals the source, flashback restores", {
  timeout: 900_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("arch");
  const db = `${id}_src`;
  const copyDb = `${id}_copy`;
  const replayDb = `${id}_replay`;
  const dir = tempDir("dfs-archive-");
  const archiveDir = join(dir, "archive");
  const seed = testSeed();
  const config = writeConfig(dir, {
    source: {
      id,
      url: urls.sourceUrl,
      serverId: 5000 + Math.floor(Math.random() * 50_000),
      include: { databases: [db] },
    },
    nats: { url: urls.natsUrl },
    capture: {
      journal: { path: join(dir, "journal.db") },
      heartbeatIntervalMs: 500,
      http: { port: 0 },
      grpc: { port: 0 },
    },
    dpu: { http: { port: 0 }, grpc: { port: 0 } },
    archive: { dir: archiveDir, period: "size", maxFileBytes: "2MiB" },
    log: { level: "warn" },
  });
  let src: Connection | null = null;
  let dst: Connection | null = null;
  let nc: NatsConnection | null = null;
  let capture: CaptureService | null = null;
  let dpu: ReturnType<typeof startDpuChild> | null = null;
  try {
    src = await sourceConnection();
    dst = await targetConnection();
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    await src.query(`CREATE DATABASE ${q(db)}`);
    await src.query(archiveSchemaSql(db));
    capture = await startCapture(loadConfig(config));
    dpu = startDpuChild(config);
    const load = new ArchiveLoad(src, db, seededRandom(seed));
    let written = 0;
    const kills: number[] = [];
    /** Writes until `upTo` rows changed; kills and restarts the DPU once the archive passed `killAt`. */
    const writeUntil = async (upTo: number, killAt: number) => {
      let killed = false;
      for (let n = 0; written < upTo; n++) {
        written += await load.transaction();
        if (!killed && n % 25 === 0 && archivedChanges(archiveDir) >= killAt) {
          dpu!.child.kill("SIGKILL");
          await dpu!.exited;
          kills.push(archivedChanges(archiveDir));
          dpu = startDpuChild(config);
          killed = true;
        }
      }
      // The kill happens at the latest once the archive got there.
      if (!killed) {
        await waitFor(() => archivedChanges(archiveDir) >= killAt, {
          timeoutMs: 120_000,
          what: "the archive to grow",
        });
        dpu!.child.kill("SIGKILL");
        await dpu!.exited;
        kills.push(archivedChanges(archiveDir));
        dpu = startDpuChild(config);
      }
    };
    await writeUntil(CHANGES / 2, CHANGES / 5);

    // The copy point: the tables as they are now, and the binlog position the next transaction starts at.
    await src.query(`CREATE DATABASE ${q(copyDb)}`);
    for (const t of TABLES) {
      await src.query(`CREATE TABLE ${q(copyDb)}.${q(t)} LIKE ${q(db)}.${q(t)}`);
      await src.query(`INSERT INTO ${q(copyDb)}.${q(t)} SELECT * FROM ${q(db)}.${q(t)}`);
    }
    const [status] = await src.query("SHOW MASTER STATUS");
    const at = (status as { File: string; Position: number }[])[0]!;
    const copyPoint = `${at.File}:${at.Position}`;

    await writeUntil(LOAD_ROWS, CHANGES * 0.7);
    await src.query(`INSERT INTO ${q(db)}.t_marker VALUES (1, 'end of load')`);
    const marker = { tables: [{ db, table: "t_marker" }] };
    await waitFor(
      () =>
        [...new ArchiveReader(archiveDir).entries(marker)].filter((e) => e.kind === "change").length === 1,
      {
        timeoutMs: 300_000,
        intervalMs: 500,
        what: "the end marker in the archive",
      },
    ).catch((e: Error) => {
      throw new Error(`${e.message}; dpu stderr: ${dpu?.stderr()}`);
    });

    // Exactly once: the archive holds each change of the stream once, with its raw typed images.
    const identity = (table: string, start: string, gtid: string, row: number, op: string, raw: Uint8Array) =>
      `${table}|${start}|${gtid}|${row}|${op}|${Buffer.from(raw).toString("hex")}`;
    const fromStream: string[] = [];
    for (const m of await readStream(nc, id)) {
      if (m.kind !== "batch") continue;
      for (const c of m.events) {
        const st = c.batch.sourceTxns[c.sourceTxn]!;
        fromStream.push(
          identity(formatTableRef(c.ref), `${st.startFile}:${st.startPos}`, st.gtid, c.rowIndex, c.op, c.raw),
        );
      }
    }
    const fromArchive: string[] = [];
    for (const e of new ArchiveReader(archiveDir).entries()) {
      if (e.kind !== "change") continue;
      const c = e.change;
      fromArchive.push(
        identity(formatTableRef(c.ref), e.txn.position.toString(), e.txn.gtid, c.rowIndex, c.op, c.raw),
      );
    }
    assert.ok(fromStream.length >= CHANGES, `the load made ${fromStream.length} changes`);
    assert.equal(new Set(fromArchive).size, fromArchive.length, "no change archived twice");
    assert.equal(
      fromArchive.length,
      fromStream.length,
      `archived ${fromArchive.length} of ${fromStream.length}`,
    );
    assert.deepEqual(
      [...fromArchive].sort(),
      [...fromStream].sort(),
      "the archive holds exactly the stream's changes",
    );
    assert.equal(kills.length, 2, "the DPU was killed twice");
    const stats = JSON.parse((await dfs(["archive", "stats", "-c", config, "--json"])).stdout) as {
      files: unknown[];
    };
    assert.ok(stats.files.length >= 2, `several files (size-bounded): ${stats.files.length}`);

    // Query by key, exact values.
    const [first] = await src.query(`SELECT id FROM ${q(db)}.t_types WHERE u = 18446744073709551615 LIMIT 1`);
    const key = (first as { id: string }[])[0]!.id;
    const q1 = await dfs([
      "archive",
      "query",
      "-c",
      config,
      "--table",
      `${db}.t_types`,
      "--key",
      key,
      "--json",
    ]);
    const lines = q1.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { after: { id: unknown } | null });
    assert.ok(lines.length >= 1 && q1.stdout.includes('"18446744073709551615"'), q1.stdout.slice(0, 500));

    // Replay everything into an empty database: equal to the source, table by table.
    await dfs(["archive", "replay", "-c", config, "--url", urls.targetUrl, "--database", replayDb]);
    for (const t of TABLES)
      assert.equal(
        await tableDump(dst, replayDb, t),
        await tableDump(src, db, t),
        `replayed ${t} equals the source`,
      );

    // Flashback of everything after the copy point, applied to the source: back to the copy.
    const printed = await dfs(["archive", "flashback", "-c", config, "--from-pos", copyPoint]);
    assert.match(printed.stdout, /^BEGIN;$/m);
    await dfs(["archive", "flashback", "-c", config, "--from-pos", copyPoint, "--apply", "--to-source"]);
    for (const t of TABLES)
      assert.equal(
        await tableDump(src, db, t),
        await tableDump(src, copyDb, t),
        `${t} is back at the copy point`,
      );
  } finally {
    if (dpu) {
      dpu.child.kill("SIGKILL");
      await dpu.exited;
    }
    await capture?.stop().catch(() => {});
    if (nc) await deleteStreams(nc, id).catch(() => {});
    await nc?.close().catch(() => {});
    for (const d of [db, copyDb]) await src?.query(`DROP DATABASE IF EXISTS ${q(d)}`).catch(() => {});
    await dst?.query(`DROP DATABASE IF EXISTS ${q(replayDb)}`).catch(() => {});
    await dst
      ?.query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer LIKE ?", [`${id}:%`])
      .catch(() => {});
    await src?.end().catch(() => {});
    await dst?.end().catch(() => {});
  }
});
