// No silent loss on the stream side: messages that expired or were deleted from the stream before
// the DPU applied them stop the DPU (DFS_STREAM_LOST, the dfs_dpu_lost_messages metric, exit code
// 65 for `dfs dpu`) instead of being passed over; dpu.acceptLossThrough lets an operator go on
// deliberately. A stream re-created below the DPU's checkpoint is a clear error at start.
// Deleted messages and expired ones (nats.stream.maxAge) are tested apart.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeBatch, decodeChanges } from "@dfs/codec";
import { ErrorCode, waitFor } from "@dfs/common";
import { ensureStreams, streamSettingsOf, subjects } from "@dfs/nats";
import { tempDir, urls, writeConfig } from "@dfs/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { openPipeline, type Pipeline, q } from "../support/pipeline.js";

const DFS = join(dirname(fileURLToPath(import.meta.url)), "../../../../packages/cli/bin/dfs.js");

async function rowsOf(p: Pipeline): Promise<number[]> {
  const [rows] = await p.dst.query(`SELECT id FROM ${q(p.targetDb)}.t ORDER BY id`);
  return (rows as { id: number }[]).map((r) => Number(r.id));
}

/** Inserts rows `from`..`to` one transaction each, and waits until capture published them all. */
async function insertPublished(p: Pipeline, from: number, to: number): Promise<void> {
  const jsm = await jetstreamManager(p.nc);
  const stream = subjects.streamName(p.id);
  const before = (await jsm.streams.info(stream)).state.last_seq;
  for (let i = from; i <= to; i++) await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (?, ?)`, [i, i]);
  await waitFor(async () => (await jsm.streams.info(stream)).state.last_seq >= before + (to - from + 1), {
    timeoutMs: 30_000,
    what: "capture to publish the new rows",
  });
}

/** The messages after `after` that carry rows of table t: their sequence and the ids they insert. */
async function batchMessages(p: Pipeline, after: number): Promise<{ seq: number; ids: number[] }[]> {
  const jsm = await jetstreamManager(p.nc);
  const stream = subjects.streamName(p.id);
  const info = await jsm.streams.info(stream);
  const out: { seq: number; ids: number[] }[] = [];
  for (let seq = after + 1; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (!m?.subject.endsWith(".t")) continue;
    const ids = decodeChanges(decodeBatch(m.data)).map((c) => Number(c.after?.id));
    out.push({ seq, ids });
  }
  return out;
}

test("messages gone from the stream before the DPU applied them stop it; dpu.acceptLossThrough goes on deliberately", async () => {
  const p = await openPipeline("lost");
  try {
    await p.src.query(`CREATE TABLE ${q(p.db)}.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    await p.startCapture();
    const dpu = await p.startDpu();
    await insertPublished(p, 1, 10);
    await p.converged("t");
    const applied = dpu.status().appliedSeq;
    await p.stopDpu();

    // Rows in several messages (capture groups transactions that come together: one at a time here).
    for (let i = 11; i <= 30; i++) await insertPublished(p, i, i);
    const messages = await batchMessages(p, applied);
    assert.ok(messages.length >= 4, `several messages (${messages.length})`);
    // One message in the middle goes (as max_age or a deletion would take it).
    const gone = messages[1]!;
    const jsm = await jetstreamManager(p.nc);
    await jsm.streams.deleteMessage(subjects.streamName(p.id), gone.seq, false);
    const lostIds = new Set(gone.ids);
    const beforeGap = messages.slice(0, 1).flatMap((m) => m.ids);

    const again = await p.startDpu();
    const err = await again.done.then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(err, "the DPU stopped");
    assert.match(
      err.message,
      new RegExp(`stream message ${gone.seq} expired or was deleted before this DPU applied it`),
    );
    assert.match(err.message, new RegExp(`dpu\\.acceptLossThrough: ${gone.seq}`));
    assert.equal(again.status().state, "error");
    const metrics = await again.telemetry.registry.getSingleMetricAsString("dfs_dpu_lost_messages");
    assert.match(metrics, /dfs_dpu_lost_messages\{[^}]*\} 1/);
    // Everything before the gap is applied, nothing after it.
    assert.deepEqual(
      await rowsOf(p),
      [...Array.from({ length: 10 }, (_, i) => i + 1), ...beforeGap],
      "the rows before the first message gone, none after",
    );
    await p.stopDpu();

    // The operator accepts this loss: the DPU goes on after it.
    p.cfg.dpu.acceptLossThrough = gone.seq;
    await p.startDpu();
    const expected = Array.from({ length: 30 }, (_, i) => i + 1).filter((id) => !lostIds.has(id));
    await waitFor(async () => (await rowsOf(p)).length === expected.length, {
      timeoutMs: 30_000,
      what: "the rows after the accepted gap",
    });
    assert.deepEqual(await rowsOf(p), expected, "only the rows of the deleted messages are missing");
  } finally {
    await p.close();
  }
});

test("a stream re-created below the DPU's checkpoint stops `dfs dpu` at start with exit code 65", async () => {
  const p = await openPipeline("recreated");
  try {
    await p.src.query(`CREATE TABLE ${q(p.db)}.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    await p.startCapture();
    await p.startDpu();
    await insertPublished(p, 1, 10);
    await p.converged("t");
    await p.stopDpu();
    await p.capture?.stop();
    p.capture = null;
    const jsm = await jetstreamManager(p.nc);
    await jsm.streams.delete(subjects.streamName(p.id));
    await ensureStreams(p.nc, p.id, streamSettingsOf(p.cfg.nats.stream));

    const config = writeConfig(tempDir(), {
      source: { id: p.id, url: urls.sourceUrl, include: { databases: [p.db] } },
      nats: { url: urls.natsUrl },
      target: { url: urls.targetUrl, database: p.targetDb },
      dpu: { http: { port: 0 }, grpc: { port: 0 } },
      log: { level: "warn" },
    });
    const child = spawn(process.execPath, [DFS, "dpu", "-c", config], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (output += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (output += s));
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    assert.equal(code, 65, output.slice(-2000));
    assert.match(
      output,
      /ends at sequence 0, below this DPU's checkpoint \d+: the stream was re-created or purged/,
    );
  } finally {
    await p.close();
  }
});

/** Runs `dfs dpu -c config` to its end: the exit code and everything it printed. */
async function dfsDpu(config: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [DFS, "dpu", "-c", config], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (output += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (output += s));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output };
}

test("messages expired by nats.stream.maxAge before the DPU read them stop it (metric, `dfs dpu` exit 65); nothing after the gap is applied", async () => {
  // Two seconds: what the DPU misses while it is down expires quickly.
  const p = await openPipeline("expiry", {}, { nats: { stream: { maxAge: "2s", duplicateWindow: "1s" } } });
  try {
    await p.src.query(`CREATE TABLE ${q(p.db)}.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    const jsm = await jetstreamManager(p.nc);
    const stream = subjects.streamName(p.id);
    /** Inserts rows `from`..`to`, one transaction each; waits until capture's stream acknowledged them all. */
    const publish = async (from: number, to: number) => {
      const before = p.capture!.status().rowsPublished;
      for (let i = from; i <= to; i++) await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (?, ?)`, [i, i]);
      await waitFor(() => p.capture!.status().rowsPublished >= before + (to - from + 1), {
        timeoutMs: 30_000,
        what: `capture to publish rows ${from}..${to}`,
      });
      return (await jsm.streams.info(stream)).state;
    };
    await p.startCapture();
    await p.startDpu();
    await publish(1, 5);
    await p.converged("t");
    await p.stopDpu();

    // While the DPU is down, rows 6..15 are published and expire.
    const gap = await publish(6, 15);
    await waitFor(async () => (await jsm.streams.info(stream)).state.first_seq > gap.last_seq, {
      timeoutMs: 20_000,
      what: "rows 6..15 to expire from the stream",
    });
    // The limit is raised (as the error will advise): capture applies it to the stream at start, so
    // rows 16..20 stay. They come after the gap: the DPU must not apply them either.
    await p.capture!.stop();
    p.cfg.nats.stream.maxAge = 600_000;
    await p.startCapture();
    assert.equal((await jsm.streams.info(stream)).config.max_age, 600_000 * 1e6, "max_age raised");
    await publish(16, 20);
    const later = await batchMessages(p, gap.last_seq);
    assert.deepEqual(
      later.flatMap((m) => m.ids),
      [16, 17, 18, 19, 20],
      "the rows after the gap are in the stream",
    );
    const firstStored = (await jsm.streams.info(stream)).state.first_seq;

    const dpu = await p.startDpu();
    const checkpoint = dpu.status().appliedSeq;
    const err = (await dpu.done.then(
      () => null,
      (e: Error) => e,
    )) as (Error & { code?: string }) | null;
    assert.ok(err, "the DPU stopped");
    assert.equal(err.code, ErrorCode.STREAM_LOST, err.message);
    // One message, or several (capture groups transactions that come together into one message).
    const named =
      /stream (?:message (\d+) expired or was deleted before this DPU applied it|messages (\d+)\.\.(\d+) \((\d+)\) expired or were deleted before this DPU applied them)/.exec(
        err.message,
      );
    assert.ok(named, err.message);
    const from = Number(named[1] ?? named[2]);
    const to = Number(named[1] ?? named[3]);
    const count = to - from + 1;
    if (named[4] !== undefined) assert.equal(Number(named[4]), count, "the count named");
    assert.equal(from, checkpoint + 1, "the gap starts after the checkpoint");
    assert.equal(to, firstStored - 1, "and ends before the first message the stream still has");
    assert.ok(to >= gap.last_seq && to < later[0]!.seq, `rows 6..15 in it, 16..20 after it (${from}..${to})`);
    assert.match(err.message, new RegExp(`dpu\\.acceptLossThrough: ${to}`));
    const metric = await dpu.telemetry.registry.getSingleMetricAsString("dfs_dpu_lost_messages");
    assert.match(metric, new RegExp(`dfs_dpu_lost_messages\\{[^}]*\\} ${count}\\n?$`, "m"), metric);
    assert.deepEqual(await rowsOf(p), [1, 2, 3, 4, 5], "nothing after the gap applied");
    await p.stopDpu();

    // `dfs dpu` on the same consumer: the same gap, exit code 65 (EX_DATAERR).
    const config = writeConfig(tempDir(), {
      source: { id: p.id, url: urls.sourceUrl, include: { databases: [p.db] } },
      nats: { url: urls.natsUrl, stream: { maxAge: "10m", duplicateWindow: "1s" } },
      target: { url: urls.targetUrl, database: p.targetDb },
      dpu: { http: { port: 0 }, grpc: { port: 0 } },
      log: { level: "warn" },
    });
    const run = await dfsDpu(config);
    assert.equal(run.code, 65, run.output.slice(-2000));
    const what =
      from === to
        ? `message ${from} expired or was`
        : `messages ${from}\\.\\.${to} \\(${count}\\) expired or were`;
    assert.match(run.output, new RegExp(`dfs dpu: DFS_STREAM_LOST: stream ${what} deleted`));
    assert.deepEqual(await rowsOf(p), [1, 2, 3, 4, 5], "still nothing after the gap");
  } finally {
    await p.close();
  }
});
