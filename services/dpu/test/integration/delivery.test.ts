// Delivery of many small messages: the DPU must apply a backlog of small messages without idle
// time while work is pending. With a consume() loop, the client buffered messages up to the
// consumer's max_ack_pending, and nats-server 2.9 then let the open pull requests sit until they
// expired (30 s) before delivering more: the DPU idled with thousands of messages pending.
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeBatch, Headers, toValue, ValueKind } from "@dfs/codec";
import { ensureStreams, subjects } from "@dfs/nats";
import { ChangeBatch, Op } from "@dfs/proto";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { openPipeline, q } from "../support/pipeline.js";

const MESSAGES = 60_000;

test(`${MESSAGES.toLocaleString("en")} small messages are applied without a stall (no idle time with work pending)`, {
  timeout: 300_000,
}, async () => {
  const p = await openPipeline("deliv");
  try {
    await p.src.query(`CREATE TABLE ${q(p.db)}.t (id INT PRIMARY KEY, v VARCHAR(20))`);
    await ensureStreams(p.nc, p.id, { replicas: 1, maxAgeMs: 0, maxBytes: -1, duplicateWindowMs: 60_000 });
    // The backlog: one small transaction per message, as an OLTP source writes them.
    const js = jetstream(p.nc);
    const subject = subjects.data(p.id, p.db, "t");
    let inFlight: Promise<unknown>[] = [];
    for (let i = 1; i <= MESSAGES; i++) {
      const payload = encodeBatch(
        ChangeBatch.fromPartial({
          sourceId: p.id,
          db: p.db,
          table: "t",
          columns: [
            { name: "id", type: "int(11)", charset: "" },
            { name: "v", type: "varchar(20)", charset: "utf8mb4" },
          ],
          primaryKey: ["id"],
          txnOrdinal: BigInt(i),
          txnLast: true,
          captureTimeMs: BigInt(Date.now()),
          rows: [
            {
              op: Op.OP_CREATE,
              rowIndex: 0,
              before: [],
              after: [toValue(ValueKind.Int, i), toValue(ValueKind.Text, "v")],
            },
          ],
        }),
      );
      const h = headers();
      h.set(Headers.kind, "batch");
      inFlight.push(js.publish(subject, payload, { headers: h, msgID: `deliv:${i}` }));
      if (inFlight.length >= 2000) {
        await Promise.all(inFlight);
        inFlight = [];
      }
    }
    await Promise.all(inFlight);

    const dpu = await p.startDpu();
    const started = Date.now();
    let lastSeq = 0;
    let lastMove = Date.now();
    let longestIdle = 0;
    while (dpu.status().appliedSeq < MESSAGES && Date.now() - started < 240_000) {
      await new Promise((r) => setTimeout(r, 100));
      const seq = dpu.status().appliedSeq;
      if (seq !== lastSeq) {
        lastSeq = seq;
        lastMove = Date.now();
      } else if (seq < MESSAGES) longestIdle = Math.max(longestIdle, Date.now() - lastMove);
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `# ${MESSAGES} messages applied in ${seconds.toFixed(1)} s; longest idle with messages pending ${longestIdle} ms`,
    );
    assert.equal(dpu.status().appliedSeq, MESSAGES, "every message applied");
    assert.ok(longestIdle < 5_000, `the DPU sat idle for ${longestIdle} ms with messages pending`);
    const [rows] = await p.dst.query(`SELECT COUNT(*) AS n FROM ${q(p.targetDb)}.t`);
    assert.equal(Number((rows as { n: number }[])[0]!.n), MESSAGES);
  } finally {
    await p.close();
  }
});
