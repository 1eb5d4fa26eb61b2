// Failure test: capture is killed with SIGKILL (twice) in the middle of a 100,000-row load and
// restarted on the same journal; every row change must end up in the stream exactly once.
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "@dfs/common";
import { connectNats, subjects } from "@dfs/nats";
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
import {
  type CaptureChild,
  compareMultiset,
  duplicateIds,
  inspectJournal,
  killChild,
  spawnCapture,
  subjectCount,
  waitReady,
  writeConfig,
} from "../support/failure.js";

const ROWS_PER_TXN = 500;
const INSERT_TXNS = 180; // ids 1..90,000
const UPDATE_TXNS = 10; // ids 1..5,000 updated once
const DELETE_TXNS = 10; // ids 5,001..10,000 deleted
const TXNS = INSERT_TXNS + UPDATE_TXNS + DELETE_TXNS;
const TOTAL_CHANGES = TXNS * ROWS_PER_TXN; // 100,000
/**
 * The load is paced so that it lasts about this long and the kills land while rows flow. It must
 * outlast the restart after the first kill, which waits out the dead process's lease (ttl + 1 s,
 * 16 s by default): with a shorter load the second kill can find every row already published.
 */
const LOAD_MS = 40_000;
/** Transactions are written in bursts, so that a kill finds work journaled, in flight and unread. */
const BURST = 10;

function expectedKeys(): string[] {
  const keys: string[] = [];
  for (let id = 1; id <= INSERT_TXNS * ROWS_PER_TXN; id++) keys.push(`c:${id}`);
  for (let id = 1; id <= UPDATE_TXNS * ROWS_PER_TXN; id++) keys.push(`u:${id}`);
  const firstDeleted = UPDATE_TXNS * ROWS_PER_TXN + 1;
  for (let id = firstDeleted; id < firstDeleted + DELETE_TXNS * ROWS_PER_TXN; id++) keys.push(`d:${id}`);
  return keys;
}

/** 200 transactions of 500 rows each, in bursts of BURST transactions spread over LOAD_MS. */
async function runLoad(
  conn: Connection,
  db: string,
  progress: { txns: number; done: boolean },
): Promise<void> {
  const start = Date.now();
  const pace = async (i: number) => {
    const due = start + (Math.floor(i / BURST) * BURST * LOAD_MS) / TXNS - Date.now();
    if (due > 0) await delay(due); // pacing the writer, not waiting for a condition
  };
  let i = 0;
  for (let t = 0; t < INSERT_TXNS; t++, i++) {
    await pace(i);
    const rows: unknown[][] = [];
    for (let k = 1; k <= ROWS_PER_TXN; k++) {
      const id = t * ROWS_PER_TXN + k;
      rows.push([id, `v${id}`, id % 1000, `txn ${t}`]);
    }
    await conn.query(`INSERT INTO \`${db}\`.t (id, v, n, note) VALUES ?`, [rows]);
    progress.txns++;
  }
  for (let t = 0; t < UPDATE_TXNS; t++, i++) {
    await pace(i);
    const lo = t * ROWS_PER_TXN + 1;
    await conn.query(`UPDATE \`${db}\`.t SET v = CONCAT('u', id), n = n + 1 WHERE id BETWEEN ? AND ?`, [
      lo,
      lo + ROWS_PER_TXN - 1,
    ]);
    progress.txns++;
  }
  for (let t = 0; t < DELETE_TXNS; t++, i++) {
    await pace(i);
    const lo = (UPDATE_TXNS + t) * ROWS_PER_TXN + 1;
    await conn.query(`DELETE FROM \`${db}\`.t WHERE id BETWEEN ? AND ?`, [lo, lo + ROWS_PER_TXN - 1]);
    progress.txns++;
  }
  progress.done = true;
}

const randomBetween = (lo: number, hi: number) => Math.floor(lo + Math.random() * (hi - lo));

test("kill -9 twice during a 100,000-row load: every change is in the stream exactly once", {
  timeout: 300_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("crash");
  const db = id;
  const dir = tempDir("dfs-crash-");
  const journalPath = join(dir, "journal.db");
  let admin: Connection | null = null;
  let loader: Connection | null = null;
  let nc: NatsConnection | null = null;
  let child: CaptureChild | null = null;
  const log: string[] = [];
  try {
    admin = await sourceConnection();
    loader = await sourceConnection();
    await admin.query(
      `CREATE DATABASE \`${db}\`; CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v VARCHAR(32) NOT NULL, n INT NOT NULL, note VARCHAR(64))`,
    );
    // Start exactly after the table exists, wherever the capture process happens to be at the time.
    const [status] = await admin.query("SHOW MASTER STATUS");
    const { File: file, Position: position } = (status as { File: string; Position: number }[])[0]!;
    const configPath = writeConfig(dir, {
      source: {
        id,
        url: urls.sourceUrl,
        serverId: 5000 + Math.floor(Math.random() * 50_000),
        include: { databases: [db] },
        start: { from: "position", file, position: Number(position) },
      },
      nats: { url: urls.natsUrl },
      // The lease stays on: the restarted capture must wait out the killed process's lease by itself.
      // A message holds one transaction's worth of rows: with transactions grouped, the count of
      // data messages still measures progress in transactions.
      capture: {
        journal: { path: journalPath },
        heartbeatIntervalMs: 500,
        batch: { maxRows: ROWS_PER_TXN },
      },
      log: { level: "warn" },
    });
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    const dataSubject = subjects.data(id, db, "t");
    const dataMessages = () => subjectCount(nc!, id, dataSubject);

    child = spawnCapture(configPath);
    await waitReady(child);
    const progress = { txns: 0, done: false };
    const load = runLoad(loader, db, progress);
    load.catch(() => {}); // awaited below

    // Two kills at random points while the stream holds between 10% and 60% of the load.
    const kills: { atMessages: number; loadTxns: number }[] = [];
    let floor = Math.ceil(TXNS * 0.1);
    for (let k = 0; k < 2; k++) {
      const hi = Math.floor(TXNS * (k === 0 ? 0.35 : 0.6));
      const target = randomBetween(Math.max(floor, Math.ceil(TXNS * 0.1)), Math.max(hi, floor + 1));
      await waitFor(async () => (await dataMessages()) >= target, {
        timeoutMs: 60_000,
        intervalMs: 20,
        what: `${target} data messages before kill ${k + 1}`,
      });
      child.child.kill("SIGKILL");
      const how: number | string = await child.exited;
      assert.equal(how, "SIGKILL", `capture child should die of SIGKILL: ${child.stderr()}`);
      const atMessages = await dataMessages();
      kills.push({ atMessages, loadTxns: progress.txns });
      log.push(
        `kill ${k + 1}: target ${target}, stream ${atMessages}/${TXNS} messages, load ${progress.txns}/${TXNS}`,
      );
      assert.ok(existsSync(journalPath), "the journal file survives the kill");
      assert.ok(
        atMessages < TXNS,
        `kill ${k + 1} must land while rows are still flowing (${atMessages}/${TXNS})`,
      );
      child = spawnCapture(configPath);
      await waitReady(child);
      floor = atMessages + Math.ceil(TXNS * 0.1);
    }
    assert.equal(kills.length, 2);

    await load;
    await waitFor(async () => (await dataMessages()) >= TXNS, {
      timeoutMs: 120_000,
      intervalMs: 200,
      what: `all ${TXNS} data messages in the stream`,
    }).catch((e: Error) => {
      throw new Error(`${e.message}; status ${JSON.stringify(child?.status())}; stderr ${child?.stderr()}`);
    });
    // Wait for the journal backlog to be published and trimmed, then stop cleanly: nothing can be
    // added to the stream after this, so late duplicates would be seen below.
    await waitFor(() => (child!.status()?.journal.entries ?? Number.POSITIVE_INFINITY) <= 3, {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: "the journal backlog to drain",
    });
    child.child.kill("SIGTERM");
    assert.equal(await child.exited, 0, `capture stops cleanly on SIGTERM: ${child.stderr()}`);

    const messages = await readStream(nc, id);
    const dupIds = duplicateIds(messages.map((m) => m.msgId));
    assert.deepEqual(dupIds.slice(0, 10), [], `duplicate Nats-Msg-Id in the stream (${dupIds.length})`);
    assert.ok(
      messages.every((m) => m.msgId !== ""),
      "every message carries a Nats-Msg-Id",
    );

    const changes = changesOf(messages).filter((c) => c.ref.db === db && c.ref.table === "t");
    const keyOf = (c: (typeof changes)[number]) => `${c.op}:${String((c.after ?? c.before)?.id)}`;
    const cmp = compareMultiset(changes.map(keyOf), expectedKeys());
    assert.deepEqual(
      {
        duplicates: cmp.duplicates.slice(0, 10),
        missing: cmp.missing.slice(0, 10),
        unexpected: cmp.unexpected.slice(0, 10),
      },
      { duplicates: [], missing: [], unexpected: [] },
      `stream vs source: ${cmp.duplicates.length} duplicated, ${cmp.missing.length} missing, ${cmp.unexpected.length} unexpected (${log.join("; ")})`,
    );
    assert.equal(changes.length, TOTAL_CHANGES);
    // The same transaction replayed after a crash keeps its ordinal: (txnOrdinal, rowIndex) is unique too.
    const positions = compareMultiset(
      changes.map((c) => `${c.batch.txnOrdinal}/${c.rowIndex}`),
      [],
    );
    assert.equal(
      positions.duplicates.length,
      0,
      `duplicate (txnOrdinal,rowIndex): ${positions.duplicates.slice(0, 5)}`,
    );

    // Order: transactions in stream order, and each row's insert before its update or delete.
    let lastOrdinal = -1n;
    const inserted = new Set<string>();
    for (const c of changes) {
      assert.ok(
        c.batch.txnOrdinal >= lastOrdinal,
        `txnOrdinal went backwards at ${c.batch.txnOrdinal} after ${lastOrdinal}`,
      );
      lastOrdinal = c.batch.txnOrdinal;
      const rowId = String((c.after ?? c.before)?.id);
      if (c.op === "c") inserted.add(rowId);
      else assert.ok(inserted.has(rowId), `${c.op} of id ${rowId} came before its insert`);
    }
    // Values: what was written, not just the keys.
    for (const c of changes) {
      const rowId = Number((c.after ?? c.before)?.id);
      if (c.op === "c") assert.equal(c.after?.v, `v${rowId}`);
      if (c.op === "u") assert.deepEqual([c.before?.v, c.after?.v], [`v${rowId}`, `u${rowId}`]);
      if (c.op === "d") assert.equal(c.before?.v, `v${rowId}`);
    }

    // The journal is trimmed: what was published is gone from it.
    const j = inspectJournal(journalPath);
    assert.equal(j.batchEntries, 0, `published batches left in the journal: ${JSON.stringify(j)}`);
    assert.ok(j.entries <= 3, `journal not trimmed after catch-up: ${JSON.stringify(j)}`);
    assert.ok(
      j.checkpoint && j.publishedScn >= j.checkpoint.committedScn - 3,
      `published ${JSON.stringify(j)}`,
    );
    process.stderr.write(`# crash test: ${log.join("; ")}\n`);
  } finally {
    await killChild(child);
    if (nc) {
      await deleteStreams(nc, id).catch(() => {});
      await nc.close().catch(() => {});
    }
    await admin?.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await admin?.end().catch(() => {});
    await loader?.end().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});
