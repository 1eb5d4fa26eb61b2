import assert from "node:assert/strict";
import { test } from "node:test";
import { sleep } from "@dfs/common";
import { subjects } from "@dfs/nats";
import { jetstream } from "@nats-io/jetstream";
import { openPipeline, q } from "../support/pipeline.js";

/**
 * Messages delivered to the DPU's consumer but never received by the DPU (NATS cutting a slow
 * client off loses the ones in flight) must not be skipped. Here a second client pulls from the
 * same durable consumer during the load and never acknowledges: the DPU sees sequence gaps and
 * must read again from its checkpoint instead of moving past them.
 */
test("messages delivered but never received by the DPU are read again, not skipped", async () => {
  const p = await openPipeline("gap");
  let stealing = true;
  try {
    await p.src.query(`CREATE TABLE ${q(p.db)}.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    await p.startCapture();
    await p.startDpu();
    const consumer = await jetstream(p.nc).consumers.get(subjects.streamName(p.id), "dpu-default");
    let stolen = 0;
    const thief = (async () => {
      while (stealing) {
        const batch = await consumer.fetch({ max_messages: 3, expires: 1000 }).catch(() => null);
        if (!batch) {
          await sleep(20);
          continue;
        }
        try {
          for await (const _ of batch) stolen++; // received, never acknowledged
        } catch {
          // The DPU recreated the consumer under us: keep stealing from the new one.
        }
      }
    })();
    for (let i = 1; i <= 300; i++) await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (?, ?)`, [i, i * 2]);
    stealing = false;
    await thief;
    assert.ok(stolen > 0, "the second client took some messages");
    await p.converged("t", 60_000);
  } finally {
    stealing = false;
    await p.close();
  }
});
