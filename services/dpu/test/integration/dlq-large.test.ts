// Dead letters larger than NATS's max_payload (1 MiB here): a 3 MiB row the target refuses (its
// column is a BLOB, 64 KiB at most) is dead-lettered as chunks while the rows around it flow; `dfs
// dlq list` lists it without reading its chunks; `dfs dlq replay` fails while the target still
// refuses it and keeps it, then applies it byte for byte after the fix and removes the letter and
// its chunks. A letter one of whose chunks is gone is never replayed truncated.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeBatch, fromValue, sha256Hex } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { subjects } from "@dfs/nats";
import { tempDir, urls, writeConfig } from "@dfs/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import { listDeadLetters, readDeadLetter } from "../../dist/dlq.js";
import { openPipeline, type Pipeline, q } from "../support/pipeline.js";

const DFS = fileURLToPath(new URL("../../../../packages/cli/bin/dfs.js", import.meta.url));
const MiB = 1024 * 1024;

/** Runs the dfs command; resolves with its exit code and output (never rejects on a non-zero exit). */
function dfs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DFS, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Rows as "id:note:length:sha256", computed by the server. */
async function rows(conn: Pipeline["src"], db: string): Promise<string[]> {
  const [r] = await conn.query(
    `SELECT CONCAT_WS(':', id, note, LENGTH(b), SHA2(b, 256)) AS r FROM ${q(db)}.t ORDER BY id`,
  );
  return (r as { r: string }[]).map((x) => x.r);
}

async function dlqMessages(p: Pipeline): Promise<number> {
  const jsm = await jetstreamManager(p.nc);
  return (await jsm.streams.info(subjects.dlqStreamName(p.id))).state.messages;
}

test("dlq: refused rows larger than max_payload are dead-lettered as chunks, listed, and replayed exactly after the fix", async () => {
  const p = await openPipeline("dlqbig");
  const src = `${q(p.db)}.t`;
  const dst = `${q(p.targetDb)}.t`;
  /** A row with `mib` MiB of random bytes, made by the source. */
  const big = (id: number, mib: number) =>
    `INSERT INTO ${src} (id, note, b) SELECT ${id}, 'big', GROUP_CONCAT(RANDOM_BYTES(1024) SEPARATOR '') FROM ${q(p.db)}.seq_1_to_${mib * 1024}`;
  try {
    await p.src.query("SET SESSION group_concat_max_len = 64 * 1024 * 1024");
    await p.startCapture();
    await p.startDpu();
    const maxPayload = p.nc.info?.max_payload ?? 0;
    assert.ok(maxPayload > 0 && maxPayload < 3 * MiB, `NATS max_payload ${maxPayload} is below the rows`);
    await p.src.query(`CREATE TABLE ${src} (id INT PRIMARY KEY, note VARCHAR(20) NOT NULL, b LONGBLOB)`);
    await p.src.query(`INSERT INTO ${src} VALUES (1, 'small', 'x')`);
    await waitFor(async () => (await rows(p.dst, p.targetDb).catch(() => [])).length === 1, {
      timeoutMs: 30_000,
      what: "the DPU to create and fill the target table",
    });

    // The target's column now holds 64 KiB at most: the large rows are refused (1406).
    await p.dst.query(`ALTER TABLE ${dst} MODIFY b BLOB`);
    await p.src.query("BEGIN");
    await p.src.query(`INSERT INTO ${src} VALUES (2, 'small', 'y')`);
    await p.src.query(big(3, 3));
    await p.src.query(`INSERT INTO ${src} VALUES (4, 'small', 'z')`);
    await p.src.query("COMMIT");
    await p.src.query(big(5, 2));
    await p.src.query(`INSERT INTO ${src} VALUES (6, 'small', 'w')`);
    const want = await rows(p.src, p.db);
    await waitFor(
      async () =>
        (await rows(p.dst, p.targetDb)).join(" ") === [want[0], want[1], want[3], want[5]].join(" "),
      { timeoutMs: 60_000, what: `the fitting rows (${JSON.stringify(p.dpu?.status())})` },
    );
    assert.equal(p.dpu!.status().state, "running", "the DPU goes on");

    const letters = await listDeadLetters(p.nc, p.id);
    assert.equal(letters.length, 2, "one dead letter per refused row");
    const [l3, l5] = letters as [(typeof letters)[0], (typeof letters)[0]];
    for (const [l, mib] of [
      [l3, 3],
      [l5, 2],
    ] as const) {
      assert.equal(l.errno, "1406", `errno of "${l.error}"`);
      assert.match(l.error, /Data too long for column 'b'/);
      assert.deepEqual([l.db, l.table], [p.db, "t"]);
      assert.equal(l.payload, null, "listed without its payload");
      assert.ok(l.chunks, "stored as chunks");
      assert.ok(l.bytes > mib * MiB && l.bytes < mib * MiB + 64 * 1024, `${l.bytes} bytes`);
      assert.equal(l.chunks.count, Math.ceil(l.bytes / (maxPayload - 8 * 1024)));
    }
    assert.equal(
      await dlqMessages(p),
      2 + l3.chunks!.count + l5.chunks!.count,
      "two letters and their chunks",
    );

    // The letter joins back into the refused row, exactly.
    const batch = decodeBatch(await readDeadLetter(p.nc, p.id, l3));
    assert.equal(batch.rows.length, 1);
    const after = batch.rows[0]!.after.map(fromValue);
    assert.equal(after[0], 3n);
    const blob = after[2] as Uint8Array;
    assert.equal(
      `3:big:${blob.byteLength}:${sha256Hex(blob)}`,
      want[2],
      "the dead letter's row is the source's",
    );

    // A letter missing a chunk is never replayed truncated: it stays, with the reason.
    const jsm = await jetstreamManager(p.nc);
    await jsm.streams.deleteMessage(subjects.dlqStreamName(p.id), l5.chunks!.firstSeq + 1, false);
    await assert.rejects(readDeadLetter(p.nc, p.id, l5), /incomplete: chunk 1 of \d+ is missing/);

    const dir = tempDir("dfs-dlq-large-");
    const config = writeConfig(dir, {
      source: { id: p.id, url: urls.sourceUrl, serverId: 4998 },
      target: { url: urls.targetUrl, database: p.targetDb },
      nats: { url: urls.natsUrl },
      capture: { journal: { path: join(dir, "journal.db") } },
      dpu: { retry: { initialMs: "50ms", maxMs: "500ms" } },
      log: { level: "warn" },
    });
    const list = await dfs(["dlq", "list", "-c", config]);
    assert.equal(list.code, 0, `dlq list: ${list.stderr}`);
    assert.deepEqual(
      list.stdout
        .trim()
        .split("\n")
        .slice(1)
        .map((line) => line.split("\t").slice(0, 5).join(" ")),
      [l3, l5].map((l) => `${l.seq} ${p.db}.t ${l.streamSeq} ${l.rowIndex} 1406`),
    );

    const early = await dfs(["dlq", "replay", "-c", config, "--seq", String(l3.seq)]);
    assert.equal(early.code, 65, `replay before the fix fails: ${early.stdout}${early.stderr}`);
    assert.match(early.stdout, /failed: .*Data too long/);
    assert.equal((await listDeadLetters(p.nc, p.id)).length, 2, "a failed replay keeps the dead letter");

    await p.dst.query(`ALTER TABLE ${dst} MODIFY b LONGBLOB`);
    const replay = await dfs(["dlq", "replay", "-c", config]);
    assert.equal(replay.code, 65, `one replays, the incomplete one fails: ${replay.stdout}${replay.stderr}`);
    assert.match(replay.stdout, new RegExp(`^${l3.seq}\\t${p.db}\\.t\\treplayed$`, "m"));
    assert.match(replay.stdout, new RegExp(`^${l5.seq}\\t${p.db}\\.t\\tfailed: .*incomplete`, "m"));
    assert.deepEqual(
      await rows(p.dst, p.targetDb),
      [want[0], want[1], want[2], want[3], want[5]],
      "row 3 applied byte for byte",
    );
    const left = await listDeadLetters(p.nc, p.id);
    assert.deepEqual(
      left.map((l) => l.seq),
      [l5.seq],
      "the replayed letter is removed",
    );
    assert.equal(await dlqMessages(p), 1 + l5.chunks!.count - 1, "with its chunks; the other's stay");

    // Row 5 comes again with a later change of it, and the pipeline still runs.
    await p.src.query(`UPDATE ${src} SET note = 'big again' WHERE id = 5`);
    const now = await rows(p.src, p.db);
    await waitFor(async () => (await rows(p.dst, p.targetDb)).join(" ") === now.join(" "), {
      timeoutMs: 60_000,
      what: "the target to equal the source",
    });
  } finally {
    await p.close();
  }
});
