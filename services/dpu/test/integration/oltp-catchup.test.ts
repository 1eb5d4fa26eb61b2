// An OLTP backlog caught up by `dfs run` (capture, and the DPU on its worker thread), as in the
// OLTP bench but shorter: the target must keep up with the rate the source was written at, and
// the DPU must never sit still while the stream holds work for it.
//
// The stall this guards against: with a consume() loop, the DPU's client took bursts of 20,000
// messages (the consumer's max_ack_pending), then sat at 0% CPU with tens of thousands of messages
// pending for 30 to 40 s (consumer info: ack pending 0, no pull request waiting) before the next
// burst. nats-server 2.9 ends pull requests past max_ack_pending without the pending counts newer
// servers send; nats.js's counts of what it has asked for drift (more so when its thread is busy
// and idle heartbeats come late) until it asks for nothing, and only its idle-heartbeat check,
// 2 x 15 s later, starts it again. The reader now pulls by itself, for what its queue has room for.
// DFS_TEST_DFS_BIN runs another checkout's dfs (to see the test fail on an earlier commit).
import assert from "node:assert/strict";
import { test } from "node:test";
import { binlogEnd, oltp, startDfsRun, stopChild, waitCaughtUp } from "@dfs/bench";
import { connectNats } from "@dfs/nats";
import { ensureStack, sourceConnection, uniqueId, urls } from "@dfs/testkit";
import { forgetRun, q, targetConnection } from "../support/pipeline.js";

const SHAPE = { seconds: 8, tables: 4, rowsPerTable: 2_000 };

test("an OLTP backlog: dfs run catches up faster than the source wrote it, with no stall", {
  timeout: 600_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("oltp");
  const db = `${id}_db`;
  const clients = await Promise.all([1, 2, 3, 4].map(() => sourceConnection()));
  const src = clients[0]!;
  const dst = await targetConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  if (process.env.DFS_TEST_DFS_BIN) process.env.DFS_BENCH_DFS_BIN = process.env.DFS_TEST_DFS_BIN;
  let run: ReturnType<typeof startDfsRun> | null = null;
  try {
    await oltp.createTables(src, db, SHAPE);
    await oltp.createTables(dst, db, SHAPE);
    for (const c of clients) await c.query(`USE ${q(db)}`);
    const start = await binlogEnd(src);
    const written = await oltp.writeFlat(clients, SHAPE);
    const sentinelAt = await binlogEnd(src);
    await src.query("INSERT INTO oltp_done (id) VALUES (1)");
    const end = await binlogEnd(src);
    run = startDfsRun(urls, id, db, start);
    const caught = await waitCaughtUp(
      run,
      nc,
      dst,
      { db, table: "oltp_done" },
      sentinelAt.sortable,
      end.sortable,
      300_000,
    );
    const rate = written.txns / caught.seconds;
    console.log(
      `# ${written.txns} transactions written at ${Math.round(written.txnsPerSecond)}/s, caught up at ${Math.round(rate)}/s (${caught.seconds.toFixed(1)} s, node start included); longest stall ${caught.longestStallSeconds.toFixed(1)} s; peak RSS ${caught.peakRssMb.toFixed(0)} MB`,
    );
    assert.equal(
      await oltp.checksum(dst, db, SHAPE.tables),
      await oltp.checksum(src, db, SHAPE.tables),
      "target = source",
    );
    assert.ok(
      caught.longestStallSeconds < 5,
      `the DPU stood still for ${caught.longestStallSeconds.toFixed(1)} s with work pending`,
    );
    assert.ok(
      rate > written.txnsPerSecond,
      `caught up at ${Math.round(rate)}/s, slower than the source wrote (${Math.round(written.txnsPerSecond)}/s)`,
    );
  } finally {
    await stopChild(run?.child ?? null, 10_000);
    await forgetRun({ src, dst, nc, id }, { source: db, target: db }); // before src (clients[0]) closes
    for (const c of clients) await c.end().catch(() => {});
    await dst.end().catch(() => {});
    await nc.close();
  }
});
