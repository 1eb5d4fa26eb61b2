// Delivery of many small messages: the DPU must apply a backlog of small OLTP transactions (one
// small message per table) without idle time while work is pending.
//
// The stall this guards against, seen in an OLTP catch-up: a consume() loop asks for more messages
// whenever messages arrive, not when they are used, so while the DPU was busy (or paused) the client
// buffered messages until the consumer's max_ack_pending (20,000) was reached. nats-server 2.9 then
// ends the waiting pull requests (409 Exceeded MaxAckPending) without the pending-count headers
// newer servers send, so the client still counted them as open and asked for nothing more until its
// idle-heartbeat check gave up on them, about 30 s later: the DPU sat at 0% CPU with 60,000
// messages pending (consumer info: ack pending 0, waiting pulls 0), then took one burst of 20,000.
// Here the DPU is paused for a moment first, which buffers the same way.
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeBatch, Headers, toValue, ValueKind } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { ensureStreams, subjects } from "@dfs/nats";
import { ChangeBatch, Op } from "@dfs/proto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { openPipeline, q } from "../support/pipeline.js";

const TABLES = ["t1", "t2", "t3", "t4"];
const TXNS = 30_000;
const MESSAGES = TXNS * TABLES.length;

test(`${TXNS.toLocaleString("en")} small transactions over ${TABLES.length} tables are applied without a stall (no idle time with work pending)`, {
  timeout: 300_000,
}, async () => {
  const p = await openPipeline("deliv");
  try {
    for (const t of TABLES)
      await p.src.query(`CREATE TABLE ${q(p.db)}.${t} (id INT PRIMARY KEY, v VARCHAR(20))`);
    await ensureStreams(p.nc, p.id, { replicas: 1, maxAgeMs: 0, maxBytes: -1, duplicateWindowMs: 60_000 });
    // The backlog: small transactions of one row in each of four tables, as an OLTP source writes
    // them (capture publishes a message per table of a transaction). Half is there when the DPU
    // starts; the other half comes while it works, as capture publishes during a catch-up.
    const js = jetstream(p.nc);
    const publish = async (from: number, to: number) => {
      let inFlight: Promise<unknown>[] = [];
      for (let n = from; n < to; n++) {
        const i = Math.floor(n / TABLES.length) + 1;
        const table = TABLES[n % TABLES.length]!;
        const payload = encodeBatch(
          ChangeBatch.fromPartial({
            sourceId: p.id,
            db: p.db,
            table,
            columns: [
              { name: "id", type: "int(11)", charset: "" },
              { name: "v", type: "varchar(20)", charset: "utf8mb4" },
            ],
            primaryKey: ["id"],
            scn: BigInt(n + 1),
            txnOrdinal: BigInt(i),
            txnLast: n % TABLES.length === TABLES.length - 1,
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
        // As capture sends them: the DPU refuses messages without an SCN of a journal.
        h.set(Headers.scn, String(n + 1));
        h.set(Headers.journal, "delivery-test");
        inFlight.push(
          js.publish(subjects.data(p.id, p.db, table), payload, { headers: h, msgID: `deliv:${n}` }),
        );
        if (inFlight.length >= 2000) {
          await Promise.all(inFlight);
          inFlight = [];
        }
      }
      await Promise.all(inFlight);
    };
    await publish(0, MESSAGES / 2);

    const dpu = await p.startDpu();
    const rest = publish(MESSAGES / 2, MESSAGES);
    dpu.pause();
    // While paused, a reader that buffers ahead reaches the consumer's max_ack_pending; one that
    // reads only what it has room for does not (then this waits its 5 s out).
    const jsm = await jetstreamManager(p.nc);
    await waitFor(
      async () =>
        (await jsm.consumers.info(subjects.streamName(p.id), "dpu-default")).num_ack_pending >= 20_000,
      { timeoutMs: 5_000, what: "the paused DPU's reader to buffer" },
    ).catch(() => {});
    dpu.resume();
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
    await rest;
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `# ${MESSAGES} messages applied in ${seconds.toFixed(1)} s; longest idle with messages pending ${longestIdle} ms`,
    );
    assert.equal(dpu.status().appliedSeq, MESSAGES, "every message applied");
    assert.ok(longestIdle < 5_000, `the DPU sat idle for ${longestIdle} ms with messages pending`);
    for (const t of TABLES) {
      const [rows] = await p.dst.query(`SELECT COUNT(*) AS n FROM ${q(p.targetDb)}.${t}`);
      assert.equal(Number((rows as { n: number }[])[0]!.n), TXNS, t);
    }
  } finally {
    await p.close();
  }
});
