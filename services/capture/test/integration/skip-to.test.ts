// capture.skipTo, the deliberate way past a binlog event capture stopped on as undecodable: the
// checkpoint moves forward to the named position at start, the binlog between is not captured,
// and a position at or before the checkpoint changes nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeChanges } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { batchesOf, startHarness, waitForRaw } from "../support/harness.js";

const q = (s: string) => `\`${s}\``;

test("capture.skipTo moves the checkpoint forward past a range deliberately; not backwards", async () => {
  const h = await startHarness("skipto");
  try {
    const t = `${q(h.db)}.${q("t")}`;
    await h.conn.query(`CREATE TABLE ${t} (id INT PRIMARY KEY)`);
    await h.conn.query(`INSERT INTO ${t} VALUES (1)`);
    const ids = (ms: Awaited<ReturnType<typeof waitForRaw>>) =>
      batchesOf(ms)
        .filter((b) => b.table === "t")
        .flatMap((b) => decodeChanges(b).map((c) => Number(c.after?.id)));
    await waitForRaw(h.nc, h.id, (ms) => ids(ms).includes(1), 30_000);
    await h.capture.stop();

    // Written while capture is down: 2 and 3 are to be skipped, 4 is after the position.
    await h.conn.query(`INSERT INTO ${t} VALUES (2)`);
    await h.conn.query(`INSERT INTO ${t} VALUES (3)`);
    const [status] = await h.conn.query("SHOW MASTER STATUS");
    const { File: file, Position: pos } = (status as { File: string; Position: number }[])[0]!;
    await h.conn.query(`INSERT INTO ${t} VALUES (4)`);

    h.cfg.capture.skipTo = `${file}:${pos}`;
    const capture = await h.restart();
    const seen = await waitForRaw(h.nc, h.id, (ms) => ids(ms).includes(4), 30_000);
    assert.deepEqual(ids(seen), [1, 4], "2 and 3 were skipped, deliberately");
    await waitFor(() => capture.status().state === "running", { timeoutMs: 10_000, what: "capture running" });

    // The same setting on the next start: the checkpoint is past it, nothing moves back.
    await h.conn.query(`INSERT INTO ${t} VALUES (5)`);
    await waitForRaw(h.nc, h.id, (ms) => ids(ms).includes(5), 30_000);
    await h.restart();
    await h.conn.query(`INSERT INTO ${t} VALUES (6)`);
    const after = await waitForRaw(h.nc, h.id, (ms) => ids(ms).includes(6), 30_000);
    assert.deepEqual(ids(after), [1, 4, 5, 6], "no row captured twice, none skipped again");
  } finally {
    await h.close();
  }
});
