import assert from "node:assert/strict";
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { Op } from "@dfs/proto";
import { batchesOf, startHarness, waitForRaw } from "./test-helpers.js";

/** Ids of the source's binlog dump threads (one per reading replica). */
async function dumpThreads(conn: import("mysql2/promise").Connection): Promise<number[]> {
  const [rows] = await conn.query(
    "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
  );
  return (rows as { ID: number | string }[]).map((r) => Number(r.ID));
}

test("a cut binlog connection is re-opened from the checkpoint: no change lost or doubled", async () => {
  const h = await startHarness("recon", {
    overrides: { capture: { reconnect: { initialMs: "100ms", maxMs: "1s" } } },
  });
  try {
    const { conn, db } = h;
    await conn.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    let next = 1;
    const writeTxns = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const values = Array.from({ length: 10 }, () => `(${next}, ${next++})`).join(",");
        await conn.query(`INSERT INTO \`${db}\`.t VALUES ${values}`);
      }
    };
    await writeTxns(10);
    const before = await waitFor(
      async () => {
        const ids = await dumpThreads(conn);
        return ids.length > 0 ? ids : null;
      },
      { timeoutMs: 10_000, what: "capture's binlog dump thread" },
    );

    // Cut the connection twice, with writes before, between and after.
    for (let round = 0; round < 2; round++) {
      for (const id of await dumpThreads(conn)) await conn.query(`KILL ${id}`).catch(() => {});
      await writeTxns(10);
    }
    const written = next - 1;
    const messages = await waitForRaw(
      h.nc,
      h.id,
      (ms) => batchesOf(ms).reduce((n, b) => n + b.rows.length, 0) >= written,
      30_000,
    );
    const ids = batchesOf(messages).flatMap((b) =>
      b.rows
        .filter((r) => r.op === Op.OP_CREATE)
        .map((r) => Number((r.after[0]!.kind as { value: bigint }).value)),
    );
    assert.equal(ids.length, written, "every inserted row exactly once");
    assert.deepEqual(
      ids,
      Array.from({ length: written }, (_, i) => i + 1),
      "in insertion order",
    );
    const msgIds = messages.map((m) => m.msgId);
    assert.equal(new Set(msgIds).size, msgIds.length, "no message id twice");
    const after = await dumpThreads(conn);
    assert.ok(
      after.length > 0 && after.every((id) => !before.includes(id)),
      "capture reads through a new connection",
    );
    assert.match(h.capture.status().lastError, /connection|closed|killed|lost/i, "the cut was noticed");
    assert.equal(h.capture.status().state, "running");
  } finally {
    await h.close();
  }
});
