// A poison change (a value the target table cannot hold) goes to the dead-letter stream with its
// reason while every other change keeps flowing; a re-delivered poison batch is not dead-lettered
// twice; `dfs dlq list` shows it and `dfs dlq replay` applies it once the target is fixed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeBatch, fromValue } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { subjects } from "@dfs/nats";
import { tempDir, urls } from "@dfs/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { listDeadLetters } from "../../dist/dlq.js";
import { openPipeline, type Pipeline, q } from "../support/pipeline.js";

const DFS = fileURLToPath(new URL("../../../../packages/cli/bin/dfs.js", import.meta.url));

/** Runs the dfs command; resolves with its exit code and output (never rejects on a non-zero exit). */
function dfs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DFS, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The target's rows as "id:v:n" lines. */
async function targetRows(p: Pipeline): Promise<string> {
  const [rows] = await p.dst.query(
    `SELECT CONCAT_WS(':', id, v, n) AS r FROM ${q(p.targetDb)}.t ORDER BY id`,
  );
  return (rows as { r: string }[]).map((r) => r.r).join(" ");
}

async function waitTarget(p: Pipeline, expected: string, what: string): Promise<void> {
  await waitFor(async () => (await targetRows(p)) === expected, {
    timeoutMs: 30_000,
    what,
  }).catch(async (err: Error) => {
    assert.equal(await targetRows(p), expected, `${err.message}; ${JSON.stringify(p.dpu?.status())}`);
  });
}

test("dlq: a poison row is dead-lettered once, the rest flows, and dfs dlq replay applies it after the fix", async () => {
  const p = await openPipeline("dlq");
  const src = `${q(p.db)}.t`;
  const dst = `${q(p.targetDb)}.t`;
  try {
    await p.startCapture();
    await p.startDpu();
    await p.src.query(`CREATE TABLE ${src} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, n INT)`);
    await p.src.query(`INSERT INTO ${src} VALUES (1, 'one', 1)`);
    await waitTarget(p, "1:one:1", "the DPU to create and fill the target table");

    // The target now differs: its column holds 3 characters where the source's holds 20.
    await p.dst.query(`ALTER TABLE ${dst} MODIFY v VARCHAR(3) NOT NULL`);
    await p.src.query(
      `BEGIN; INSERT INTO ${src} VALUES (2, 'two', 2); INSERT INTO ${src} VALUES (3, 'too long', 3); INSERT INTO ${src} VALUES (4, 'abc', 4); COMMIT`,
    );
    await p.src.query(`INSERT INTO ${src} VALUES (5, 'ok', 5)`);
    await p.src.query(`UPDATE ${src} SET n = 10 WHERE id = 1`);
    await waitTarget(p, "1:one:10 2:two:2 4:abc:4 5:ok:5", "the fitting rows (same and later transactions)");

    const letters = await listDeadLetters(p.nc, p.id);
    assert.equal(letters.length, 1, "exactly one dead letter");
    const letter = letters[0]!;
    assert.equal(letter.db, p.db);
    assert.equal(letter.table, "t");
    assert.equal(letter.errno, "1406", `errno of "${letter.error}"`);
    assert.match(letter.error, /Data too long for column 'v'/);
    assert.ok(letter.payload, "a small dead letter holds its payload");
    assert.equal(letter.chunks, null);
    const batch = decodeBatch(letter.payload);
    const txn = batch.sourceTxns[batch.rows[0]!.sourceTxn];
    assert.equal(letter.rowIndex - (txn?.firstRow ?? 0), 1, "the second row of its source transaction");
    assert.equal(batch.rows.length, 1, "a dead letter holds one row");
    const names = batch.columns.map((c) => c.name);
    const after = batch.rows[0]!.after.map(fromValue);
    assert.deepEqual(names, ["id", "v", "n"]);
    assert.deepEqual(after, [3n, "too long", 3n], "the poison row's after image");
    assert.equal(p.dpu!.status().deadLettered, 1, "status().deadLettered");
    assert.equal(p.dpu!.status().state, "running");

    // Later changes keep being applied.
    await p.src.query(`INSERT INTO ${src} VALUES (6, 'six', 6)`);
    await waitTarget(p, "1:one:10 2:two:2 4:abc:4 5:ok:5 6:six:6", "a change after the dead letter");

    // A crash after the dead letter was published but before the batch committed: the DPU sees the
    // poison batch again (checkpoint before it, consumer delivering from the start).
    await p.stopDpu();
    await p.dst.query("UPDATE `_dfs`.`_dfs_checkpoint` SET stream_seq = ? WHERE consumer = ?", [
      letter.streamSeq - 1,
      `${p.id}:dpu-default`,
    ]);
    const jsm = await jetstreamManager(p.nc);
    await jsm.consumers.delete(subjects.streamName(p.id), "dpu-default");
    const again = await p.startDpu();
    await p.src.query(`INSERT INTO ${src} VALUES (7, 'sev', 7)`);
    await waitTarget(p, "1:one:10 2:two:2 4:abc:4 5:ok:5 6:six:6 7:sev:7", "the re-delivered backlog");
    assert.equal(again.status().deadLettered, 1, "the poison batch was refused again");
    const afterRestart = await listDeadLetters(p.nc, p.id);
    assert.deepEqual(
      afterRestart.map((l) => `${l.streamSeq}:${l.rowIndex}`),
      [`${letter.streamSeq}:1`],
      "still one dead letter: the re-published one was deduplicated by its message id",
    );
    const dlqInfo = await jsm.streams.info(subjects.dlqStreamName(p.id));
    assert.equal(dlqInfo.state.messages, 1, "one message in the dead-letter stream");

    // The CLI: list, a replay that still fails, the fix, a replay that works.
    const dir = tempDir("dfs-dlq-");
    const config = join(dir, "dfs.yaml");
    writeFileSync(
      config,
      [
        "source:",
        `  id: ${p.id}`,
        `  url: ${urls.sourceUrl}`,
        "  serverId: 4999",
        "target:",
        `  url: ${urls.targetUrl}`,
        `  database: ${p.targetDb}`,
        "nats:",
        `  url: ${urls.natsUrl}`,
        "capture:",
        "  journal:",
        `    path: ${join(dir, "journal.db")}`,
        "dpu:",
        "  retry: { initialMs: 50ms, maxMs: 500ms }",
        "log:",
        "  level: warn",
        "",
      ].join("\n"),
    );
    const list = await dfs(["dlq", "list", "-c", config]);
    assert.equal(list.code, 0, `dlq list: ${list.stderr}`);
    const lines = list.stdout.trim().split("\n");
    assert.equal(lines[0], "SEQ\tTABLE\tSTREAM_SEQ\tROW\tERRNO\tERROR");
    assert.equal(lines.length, 2, `one dead letter listed:\n${list.stdout}`);
    const [seq, table, streamSeq, row, errno, error] = lines[1]!.split("\t");
    assert.deepEqual(
      [Number(seq), table, Number(streamSeq), row, errno],
      [letter.seq, `${p.db}.t`, letter.streamSeq, "1", "1406"],
      "the listed dead letter",
    );
    assert.match(error ?? "", /Data too long/);
    assert.match(list.stderr, /1 dead letter\(s\)/);

    const early = await dfs(["dlq", "replay", "-c", config]);
    assert.equal(
      early.code,
      65,
      `replay before the fix fails (65, EX_DATAERR): ${early.stdout}${early.stderr}`,
    );
    assert.match(early.stdout, /failed: .*Data too long/);
    assert.equal((await listDeadLetters(p.nc, p.id)).length, 1, "a failed replay keeps the dead letter");

    await p.dst.query(`ALTER TABLE ${dst} MODIFY v VARCHAR(20) NOT NULL`);
    const replay = await dfs(["dlq", "replay", "-c", config]);
    assert.equal(replay.code, 0, `dlq replay: ${replay.stdout}${replay.stderr}`);
    assert.match(replay.stdout, new RegExp(`^${letter.seq}\\t${p.db}\\.t\\treplayed$`, "m"));
    assert.equal(await targetRows(p), "1:one:10 2:two:2 3:too long:3 4:abc:4 5:ok:5 6:six:6 7:sev:7");
    assert.deepEqual(await listDeadLetters(p.nc, p.id), [], "the dead-letter stream is empty");
    const relist = await dfs(["dlq", "list", "-c", config]);
    assert.equal(relist.stdout.trim(), "SEQ\tTABLE\tSTREAM_SEQ\tROW\tERRNO\tERROR", "dlq list shows none");

    // The pipeline still runs, and the target equals the source.
    await p.src.query(`UPDATE ${src} SET v = 'changed', n = 33 WHERE id = 3`);
    await p.converged("t");
    assert.equal(again.status().state, "running");
  } finally {
    await p.close();
  }
});

test("dlq: a dead letter whose row a later change already moved on is not replayed over it (superseded)", async () => {
  const p = await openPipeline("dlqstale");
  const src = `${q(p.db)}.t`;
  const dst = `${q(p.targetDb)}.t`;
  try {
    await p.startCapture();
    const dpu = await p.startDpu();
    await p.src.query(`CREATE TABLE ${src} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, n INT)`);
    await p.src.query(`INSERT INTO ${src} VALUES (1, 'one', 1)`);
    await waitTarget(p, "1:one:1", "the first row");

    // Two poison changes while the target's column is narrower: an update of row 1, an insert of row 2.
    await p.dst.query(`ALTER TABLE ${dst} MODIFY v VARCHAR(3) NOT NULL`);
    await p.src.query(`UPDATE ${src} SET v = 'too long', n = 2 WHERE id = 1`);
    await p.src.query(`INSERT INTO ${src} VALUES (2, 'also long', 2)`);
    await waitFor(async () => (await listDeadLetters(p.nc, p.id)).length === 2, {
      timeoutMs: 30_000,
      what: "two dead letters",
    });
    // Fixed; then row 1 changes again and that newer image is applied.
    await p.dst.query(`ALTER TABLE ${dst} MODIFY v VARCHAR(20) NOT NULL`);
    await p.src.query(`UPDATE ${src} SET v = 'new', n = 3 WHERE id = 1`);
    await waitTarget(p, "1:new:3", "the newer change of row 1");

    const results = await dpu.replayDlq([]);
    const byRow = new Map(
      results.map((r) => [r.superseded ? "superseded" : r.ok ? "replayed" : "failed", r]),
    );
    assert.equal(results.length, 2, JSON.stringify(results));
    assert.ok(byRow.get("superseded"), `row 1's dead letter is superseded: ${JSON.stringify(results)}`);
    assert.ok(byRow.get("replayed"), `row 2's dead letter is replayed: ${JSON.stringify(results)}`);
    assert.equal(await targetRows(p), "1:new:3 2:also long:2", "row 1 keeps its newer image; row 2 is there");
    assert.deepEqual(await listDeadLetters(p.nc, p.id), [], "both removed from the dead letters");
    await p.converged("t");
  } finally {
    await p.close();
  }
});
