import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { Position } from "@dfs/codec";
import { Op } from "@dfs/proto";
import { tempDir } from "@dfs/testkit";
import {
  ArchiveReader,
  ArchiveWriter,
  archiveStats,
  flashback,
  listFiles,
  parseKeyArg,
} from "../../dist/index.js";
import { batch, DEC, MAX, row } from "../support/batches.js";

function writer(dir: string, o: Partial<Parameters<typeof ArchiveWriter.open>[0]> = {}) {
  return ArchiveWriter.open({
    dir,
    period: "day",
    maxFileBytes: 1 << 30,
    retention: {},
    consumer: "c",
    ...o,
  });
}

test("changes round-trip exactly; the checkpoint is written with them and read back", () => {
  const dir = tempDir();
  const w = writer(dir);
  assert.deepEqual(w.readCheckpoint(), { lowWater: 0, units: [] });
  w.write(batch(1, 1_700_000_000, 100, [{ op: Op.OP_CREATE, after: row(MAX, null) }]), { lowWater: 1 });
  w.write(
    batch(2, 1_700_000_001, 200, [{ op: Op.OP_UPDATE, before: row(MAX, null), after: row(MAX, "x") }]),
    {
      applied: { seq: 2, firstRow: 0, maxSeq: 2, units: "2:0" },
    },
  );
  assert.deepEqual(w.readCheckpoint(), { lowWater: 1, units: ["2:0"] });
  w.close();
  const entries = [...new ArchiveReader(dir).entries()];
  assert.equal(entries.length, 2);
  const e = entries[1]!;
  assert.equal(e.kind, "change");
  if (e.kind !== "change") return;
  assert.equal(e.change.after!.id, MAX);
  assert.equal(e.change.after!.d, DEC);
  assert.deepEqual([...(e.change.after!.b as Uint8Array)], [0, 255, 39]);
  assert.equal(e.change.before!.s, null);
  assert.equal(e.change.after!.s, "x");
  assert.equal(e.txn.gtid, "0-1-2");
  assert.equal(e.txn.position.toString(), "mysql-bin.000001:200");
  const byKey = [...new ArchiveReader(dir).entries({ key: parseKeyArg(String(MAX)) })];
  assert.equal(byKey.length, 2);
  const later = [...new ArchiveReader(dir).entries({ fromPos: Position.parse("mysql-bin.000001:150") })];
  assert.equal(later.length, 1);
});

test("a new file per day of commit time carries the checkpoint; retention drops whole old files", () => {
  const dir = tempDir();
  const day = 86_400;
  const t0 = 1_700_000_000;
  let now = (t0 + 10) * 1000;
  const w = writer(dir, { retention: { maxAgeMs: 2.5 * day * 1000 }, now: () => now });
  for (let i = 0; i < 4; i++) {
    now = (t0 + i * day + 10) * 1000;
    w.write(batch(i + 1, t0 + i * day, 100 * (i + 1), [{ op: Op.OP_CREATE, after: row(BigInt(i), "a") }]), {
      applied: { seq: i + 1, firstRow: 0, maxSeq: i + 1, units: `${i + 1}:0` },
    });
  }
  // Files of days 0..3; the one of day 0 is older than 2.5 days at day 3: deleted.
  const files = listFiles(dir);
  assert.deepEqual(
    files.map((f) => f.number),
    [2, 3, 4],
  );
  assert.ok(!existsSync(`${dir}/000001-${new Date(t0 * 1000).toISOString().slice(0, 10)}.sqlite`));
  // Each new file's first write carried the low-water mark; the applied records are all found.
  const cp = w.readCheckpoint();
  assert.deepEqual(cp, { lowWater: 0, units: ["2:0", "3:0", "4:0"] });
  w.close();
  const stats = archiveStats(new ArchiveReader(dir));
  assert.equal(stats.files.length, 3);
  assert.deepEqual(stats.tables, [{ db: "shop", table: "t", inserts: 3, updates: 0, deletes: 0, reads: 0 }]);
});

test("a large transaction not committed leaves nothing; retention by size keeps the current file", () => {
  const dir = tempDir();
  const w = writer(dir, { period: "size" });
  w.writePart(batch(1, 1_700_000_000, 100, [{ op: Op.OP_CREATE, after: row(1n, "a") }]));
  w.abortLarge();
  w.writePart(batch(1, 1_700_000_000, 100, [{ op: Op.OP_CREATE, after: row(2n, "b") }]));
  w.commitLarge({ lowWater: 1 });
  w.close();
  const entries = [...new ArchiveReader(dir).entries()];
  assert.equal(entries.length, 1);
  assert.equal(entries[0]!.kind === "change" && entries[0]!.change.after!.id, 2);
  const again = writer(dir, { period: "size", retention: { maxBytes: 1 } });
  assert.equal(listFiles(dir).length, 1, "the only (current) file is never deleted");
  assert.equal(again.readCheckpoint().lowWater, 1);
  again.close();
});

test("flashback: inverses newest first, exact literals, whole-image match without a key", () => {
  const dir = tempDir();
  const w = writer(dir);
  w.write(batch(1, 1_700_000_000, 100, [{ op: Op.OP_CREATE, after: row(MAX, "it's") }]), { lowWater: 1 });
  w.write(
    batch(2, 1_700_000_001, 200, [{ op: Op.OP_UPDATE, before: row(MAX, "it's"), after: row(MAX, null) }]),
    {
      lowWater: 2,
    },
  );
  w.write(batch(3, 1_700_000_002, 300, [{ op: Op.OP_DELETE, before: row(5n, null) }], "nokey"), {
    lowWater: 3,
  });
  w.close();
  const fb = flashback([...new ArchiveReader(dir).entries()]);
  const lit = `${MAX}, '${DEC}', '2024-02-29 23:59:59.999999', '{\\"a\\": [1]}', X'00ff27'`;
  assert.deepEqual(
    fb.statements.map((s) => s.sql),
    [
      `INSERT INTO \`shop\`.\`nokey\` (\`id\`, \`d\`, \`dt\`, \`j\`, \`b\`, \`s\`) VALUES (5, '${DEC}', '2024-02-29 23:59:59.999999', '{\\"a\\": [1]}', X'00ff27', NULL)`,
      `UPDATE \`shop\`.\`t\` SET \`id\` = ${lit.split(", ")[0]}, \`d\` = '${DEC}', \`dt\` = '2024-02-29 23:59:59.999999', \`j\` = '{\\"a\\": [1]}', \`b\` = X'00ff27', \`s\` = 'it\\'s' WHERE \`id\` = ${MAX} LIMIT 1`,
      `DELETE FROM \`shop\`.\`t\` WHERE \`id\` = ${MAX} LIMIT 1`,
    ],
  );
  assert.equal(fb.changes, 3);
});

test("reading while a writer starts, closes and deletes files never fails and never counts a change twice", async () => {
  const dir = tempDir();
  const writes = 400;
  const worker = new Worker(new URL("../support/roll-writer.js", import.meta.url), {
    workerData: { dir, writes },
  });
  let done = false;
  const finished = new Promise<void>((resolve, reject) => {
    worker.once("message", () => {
      done = true;
      resolve();
    });
    worker.once("error", reject);
  });
  let reads = 0;
  let last = 0;
  while (!done) {
    // Every file a reader finds is whole: stats and entries of a file being created or deleted
    // either include it entirely or not at all.
    const stats = archiveStats(new ArchiveReader(dir));
    const changes = stats.files.reduce((n, f) => n + f.changes, 0);
    const seqs = stats.files.filter((f) => f.firstSeq !== null).map((f) => f.lastSeq! - f.firstSeq! + 1);
    assert.equal(
      changes,
      seqs.reduce((n, k) => n + k, 0),
      "each file's changes match its sequence range",
    );
    last = Math.max(last, ...stats.files.map((f) => f.lastSeq ?? 0));
    reads++;
    await new Promise((r) => setImmediate(r));
  }
  await finished;
  assert.ok(reads > 10, `the reader read ${reads} times while the writer wrote`);
  assert.ok(last > 0, "the reader saw written files");
  // Finally the newest file holds the last write's checkpoint.
  const final = archiveStats(new ArchiveReader(dir));
  assert.equal(final.files.at(-1)?.checkpoint, writes);
});
