import assert from "node:assert/strict";
import { test } from "node:test";
import { sleep, waitFor } from "@dfs/common";
import { Op } from "@dfs/proto";
import { startComponent, stopComponent } from "@dfs/stack";
import { batchesOf, startHarness, waitForRaw } from "../support/harness.js";

/**
 * The journal holds at most capture.journal.maxBytes of unpublished data: with NATS away, the
 * reader stops reading the binlog at that point (the rest waits on the server), and reads on by
 * itself once publishing drains the journal.
 */
test("backpressure: a full journal pauses the binlog reader; it resumes when NATS is back", async () => {
  const h = await startHarness("bp", {
    overrides: {
      capture: { journal: { maxBytes: "256KiB", trimIntervalMs: "100ms" }, batch: { maxRows: 100 } },
    },
  });
  let natsDown = false;
  try {
    const { conn, db } = h;
    await conn.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, pad VARCHAR(200) NOT NULL)`);
    await stopComponent("nats");
    natsDown = true;
    const total = 20_000;
    for (let start = 1; start <= total; start += 500) {
      const values = Array.from({ length: 500 }, (_, i) => `(${start + i}, REPEAT('x', 200))`).join(",");
      await conn.query(`INSERT INTO \`${db}\`.t VALUES ${values}`);
    }
    // ~4 MB of rows against a 256 KiB journal: the reader must pause well before the end.
    await waitFor(() => h.capture.status().readerPaused, { timeoutMs: 20_000, what: "the reader to pause" });
    const paused = h.capture.status();
    assert.ok(paused.journal.bytes >= 256 * 1024, `journal at its limit (${paused.journal.bytes} bytes)`);
    assert.ok(
      paused.rowsCaptured < total,
      `capture stopped reading (${paused.rowsCaptured} of ${total} rows)`,
    );
    await sleep(1500); // a pause is a state: it must hold while nothing is published
    const later = h.capture.status();
    assert.equal(later.readerPaused, true);
    assert.ok(later.rowsCaptured - paused.rowsCaptured < 1000, "the reader stays paused");
    assert.ok(
      later.journal.bytes < 2 * 256 * 1024,
      `the journal stays near its limit (${later.journal.bytes} bytes)`,
    );

    await startComponent("nats");
    natsDown = false;
    const messages = await waitForRaw(
      h.nc,
      h.id,
      (ms) => batchesOf(ms).reduce((n, b) => n + b.rows.length, 0) >= total,
      60_000,
    );
    const ids = batchesOf(messages).flatMap((b) =>
      b.rows
        .filter((r) => r.op === Op.OP_CREATE)
        .map((r) => Number((r.after[0]!.kind as { value: bigint }).value)),
    );
    assert.deepEqual(
      ids,
      Array.from({ length: total }, (_, i) => i + 1),
      "every row once, in order",
    );
    assert.equal(h.capture.status().readerPaused, false, "reading resumed");
  } finally {
    if (natsDown) await startComponent("nats").catch(() => {});
    await h.close();
  }
});
