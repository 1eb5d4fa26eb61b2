// Failure test: NATS is stopped for 30 s in the middle of a steady load. Capture must keep reading
// the binlog into its journal while NATS is away, and catch up by itself when it is back: every row
// change in the stream exactly once, in order, and the journal drained.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { createLogger, errorMessage, waitFor } from "@dfs/common";
import { loadConfig } from "@dfs/config";
import { connectNats, subjects } from "@dfs/nats";
import { startComponent, stopComponent } from "@dfs/stack";
import {
  changesOf,
  deleteStreams,
  ensureStack,
  readStream,
  sourceConnection,
  tempDir,
  uniqueId,
  urls,
} from "@dfs/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Connection } from "mysql2/promise";
import { type CaptureService, type CaptureStatus, startCapture } from "../../dist/index.js";
import { compareMultiset, duplicateIds, reachable, subjectCount, writeConfig } from "../support/failure.js";

const TXNS = 300;
const ROWS_PER_TXN = 100; // 30,000 rows
const LOAD_MS = 20_000;
const DOWN_MS = 30_000;

async function runLoad(conn: Connection, db: string, progress: { txns: number }): Promise<void> {
  const start = Date.now();
  for (let t = 0; t < TXNS; t++) {
    const due = start + (t * LOAD_MS) / TXNS - Date.now();
    if (due > 0) await delay(due); // pacing the writer, not waiting for a condition
    const rows: unknown[][] = [];
    for (let k = 1; k <= ROWS_PER_TXN; k++) {
      const id = t * ROWS_PER_TXN + k;
      rows.push([id, `row ${id}`, t]);
    }
    await conn.query(`INSERT INTO \`${db}\`.t (id, v, txn) VALUES ?`, [rows]);
    progress.txns++;
  }
}

/** Starts NATS again if it is down; retried, because every later test needs it. */
async function ensureNatsUp(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await startComponent("nats");
      return;
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
}

test("NATS down for 30 s during a load: capture journals meanwhile and catches up exactly once", {
  timeout: 240_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("natsdown");
  const db = id;
  const dir = tempDir("dfs-natsdown-");
  let conn: Connection | null = null;
  let loader: Connection | null = null;
  let nc: NatsConnection | null = null;
  let capture: CaptureService | null = null;
  let natsStopped = false;
  try {
    conn = await sourceConnection();
    loader = await sourceConnection();
    await conn.query(
      `CREATE DATABASE \`${db}\`; CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, txn INT NOT NULL)`,
    );
    const configPath = writeConfig(dir, {
      source: {
        id,
        url: urls.sourceUrl,
        serverId: 5000 + Math.floor(Math.random() * 50_000),
        include: { databases: [db] },
      },
      nats: { url: urls.natsUrl },
      capture: { journal: { path: join(dir, "journal.db") }, heartbeatIntervalMs: 500 },
      log: { level: "warn" },
    });
    const cfg = loadConfig(configPath);
    capture = await startCapture(cfg, {
      log: createLogger({ level: "warn", name: "capture", destination: 2 }),
    });
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    // The connection's events (reconnects, errors), for the message of a failure.
    const events: string[] = [];
    const t0 = Date.now();
    void (async () => {
      for await (const st of nc!.status())
        if (st.type !== "reconnecting") events.push(`${Date.now() - t0}ms ${st.type}`);
    })().catch(() => {});
    const dataSubject = subjects.data(id, db, "t");

    const progress = { txns: 0 };
    const load = runLoad(loader, db, progress);
    load.catch(() => {}); // awaited below

    // Some rows flowed through to the stream: now take NATS away.
    await waitFor(async () => (await subjectCount(nc!, id, dataSubject)) >= 20, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: "20 data messages before stopping NATS",
    });
    const cap = capture;
    natsStopped = true;
    await stopComponent("nats");
    const stoppedAt = Date.now();
    const loadAtStop = progress.txns;

    // While NATS is down: the binlog is still read and journaled, nothing is published.
    const samples: { at: number; status: CaptureStatus }[] = [];
    let cameBackAfterMs: number | undefined;
    await waitFor(
      async () => {
        samples.push({ at: Date.now() - stoppedAt, status: cap.status() });
        if (await reachable(urls.natsUrl)) cameBackAfterMs = Date.now() - stoppedAt;
        return cameBackAfterMs !== undefined || Date.now() - stoppedAt >= DOWN_MS;
      },
      { timeoutMs: DOWN_MS + 10_000, intervalMs: 500, what: "the NATS outage window" },
    );
    assert.equal(
      cameBackAfterMs,
      undefined,
      `NATS came back ${cameBackAfterMs} ms into the outage: another process restarted it (a test running at the same time calls ensureStack()/stackUp(), which starts stopped components); run this test alone`,
    );
    // Acks already on the wire when NATS went away may still count during the first 2 s.
    const settled = (samples.find((x) => x.at >= 2000) ?? samples[0]!).status;
    const last = samples[samples.length - 1]!.status;
    assert.ok(
      progress.txns > loadAtStop,
      `the load went on while NATS was down (${loadAtStop} -> ${progress.txns})`,
    );
    assert.ok(
      last.rowsCaptured >= settled.rowsCaptured + 5_000,
      `capture kept reading the binlog while NATS was down: rowsCaptured ${settled.rowsCaptured} -> ${last.rowsCaptured}`,
    );
    assert.ok(
      last.journal.entries > settled.journal.entries && last.journal.bytes > settled.journal.bytes,
      `the journal grew while NATS was down: ${JSON.stringify(settled.journal)} -> ${JSON.stringify(last.journal)}`,
    );
    assert.ok(last.journal.committedScn > settled.journal.committedScn, "journal commits went on");
    assert.equal(last.rowsPublished, settled.rowsPublished, "nothing is published while NATS is down");
    assert.equal(
      last.journal.publishedScn,
      settled.journal.publishedScn,
      "the published cursor stays while NATS is down",
    );
    assert.equal(last.state, "running", `capture keeps running: ${last.lastError}`);
    assert.equal(last.readerPaused, false, "the reader is not paused (journal far below maxBytes)");

    await ensureNatsUp();
    events.push(`${Date.now() - t0}ms NATS started again`);
    natsStopped = false;
    await load;
    const journaledRows = last.rowsCaptured;

    // Catch-up by itself: every row in the stream, and the journal backlog drained.
    // Counted on the test's own connection; when that one fails, on a new one as well, so that a
    // stuck client connection (the test's, not capture's) is told apart from a stuck server.
    let countError = "";
    let freshCounts = 0;
    let lastCount = -1;
    const count = async (): Promise<number> => {
      try {
        return await subjectCount(nc!, id, dataSubject);
      } catch (e) {
        countError = errorMessage(e);
        const fresh = await connectNats({ url: urls.natsUrl, name: `test-${id}-probe` });
        try {
          freshCounts++;
          return await subjectCount(fresh, id, dataSubject);
        } finally {
          await fresh.close();
        }
      }
    };
    await waitFor(
      async () => {
        lastCount = await count().catch(() => -1);
        return lastCount >= TXNS;
      },
      {
        timeoutMs: 90_000,
        intervalMs: 500,
        what: `all ${TXNS} data messages after NATS came back`,
      },
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}; last count ${lastCount}, last count error: ${countError || "none"} (test connection ${nc!.isClosed() ? "closed" : "open"}, ${freshCounts} counts on a new connection; its events: ${events.join(", ")}); status ${JSON.stringify(cap.status())}`,
      );
    });
    if (freshCounts > 0)
      process.stderr.write(
        `# nats-down: the test's own connection failed to count (${countError}); ${freshCounts} counts on a new connection; its events: ${events.join(", ")}\n`,
      );
    if (freshCounts > 0) {
      await nc.close().catch(() => {});
      nc = await connectNats({ url: urls.natsUrl, name: `test-${id}-after` });
    }
    await waitFor(() => cap.status().journal.entries <= 3, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: "the journal backlog to drain",
    }).catch((e: Error) => {
      throw new Error(`${e.message}; status ${JSON.stringify(cap.status())}`);
    });
    const final = cap.status();
    assert.equal(final.state, "running");
    assert.equal(final.rowsCaptured, TXNS * ROWS_PER_TXN);
    assert.equal(final.rowsPublished, TXNS * ROWS_PER_TXN, "every captured row was published once");
    await cap.stop();
    await cap.done;

    const messages = await readStream(nc, id);
    const dupIds = duplicateIds(messages.map((m) => m.msgId));
    assert.deepEqual(dupIds.slice(0, 10), [], `duplicate Nats-Msg-Id in the stream (${dupIds.length})`);
    const changes = changesOf(messages).filter((c) => c.ref.db === db && c.ref.table === "t");
    const expected = Array.from({ length: TXNS * ROWS_PER_TXN }, (_, i) => `c:${i + 1}`);
    const cmp = compareMultiset(
      changes.map((c) => `${c.op}:${String(c.after?.id)}`),
      expected,
    );
    assert.deepEqual(
      {
        duplicates: cmp.duplicates.slice(0, 10),
        missing: cmp.missing.slice(0, 10),
        unexpected: cmp.unexpected.slice(0, 10),
      },
      { duplicates: [], missing: [], unexpected: [] },
      `${cmp.duplicates.length} duplicated, ${cmp.missing.length} missing, ${cmp.unexpected.length} unexpected`,
    );
    // Per-table order: ids were inserted in ascending order, one transaction after the other.
    let prev = 0;
    for (const c of changes) {
      const rowId = Number(c.after?.id);
      assert.equal(rowId, prev + 1, `row ${rowId} follows row ${prev} in the stream`);
      assert.equal(c.after?.v, `row ${rowId}`);
      prev = rowId;
    }
    process.stderr.write(
      `# nats-down: load ${loadAtStop}/${TXNS} txns at stop, ${journaledRows} rows captured by the end of the outage\n`,
    );
  } finally {
    if (natsStopped) await ensureNatsUp();
    await capture?.stop().catch(() => {});
    if (nc) {
      await deleteStreams(nc, id).catch(() => {});
      await nc.close().catch(() => {});
    }
    await conn?.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await conn?.end().catch(() => {});
    await loader?.end().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});
