// Parallel apply under an OLTP load, with kill -9: source transactions stay whole in the target.
//
// Four clients move money between accounts in two tables (acct_a, acct_b), open accounts (an
// insert paid from another account) and close them (a delete whose balance moves elsewhere): every
// source transaction keeps SUM(bal) over both tables constant. `dfs run` applies the stream on 4
// target connections while a reader polls the target's total in one statement (one read view).
// If a source transaction were split across target transactions (by table, by lane, by group, or
// by a crash), the reader would see the total off. `dfs run` is killed with SIGKILL mid-load and
// restarted on the same journal; the target must end equal to the source, and the DPU must have
// used more than one connection for some groups.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { binlogEnd, type DfsRun, freePort, startDfsRun, stopChild } from "@dfs/bench";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import { ensureStack, sourceConnection, uniqueId, urls } from "@dfs/testkit";
import type { Connection } from "mysql2/promise";
import { forgetRun, q, tableDump, targetConnection } from "../support/pipeline.js";

const TRANSFERS = 20_000;
const CLIENTS = 4;
const ACCOUNTS = 2_000; // per table
const OPENING = 1_000;
const TABLES = ["acct_a", "acct_b"] as const;
const TOTAL = 2 * ACCOUNTS * OPENING;

interface Metrics {
  transactions: number;
  parallelGroups: number;
}

/** The DPU's applied source transactions and its groups applied on more than one connection. */
async function dpuMetrics(port: number): Promise<Metrics> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let transactions = 0;
  let parallelGroups = 0;
  for (const line of text.split("\n")) {
    const m = /^(dfs_dpu_transactions_total|dfs_dpu_groups_total)(\{[^}]*\})? ([0-9.e+]+)$/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (m[1] === "dfs_dpu_transactions_total") transactions += value;
    const conns = /connections="(\d+)"/.exec(m[2] ?? "");
    if (m[1] === "dfs_dpu_groups_total" && conns && Number(conns[1]) > 1) parallelGroups += value;
  }
  return { transactions, parallelGroups };
}

function random(n: number): number {
  return Math.floor(Math.random() * n);
}

/** One client's share of the load; retries a transaction the server rolled back (deadlock). */
async function client(conn: Connection, index: number, count: number, db: string): Promise<void> {
  const t = (name: string) => `${q(db)}.${q(name)}`;
  const pick = () => ({ table: TABLES[random(2)]!, id: 1 + random(ACCOUNTS) });
  /** Adds `delta` to one account; false when it is gone (closed by this client earlier). */
  const add = async (a: { table: string; id: number }, delta: number) => {
    const [r] = await conn.query(`UPDATE ${t(a.table)} SET bal = bal + ? WHERE id = ?`, [delta, a.id]);
    return (r as { affectedRows: number }).affectedRows === 1;
  };
  const own = [1_000_000 * (index + 1), 1_000_000 * (index + 2)]; // ids of accounts it opens
  let opened = 0;
  for (let done = 0; done < count; ) {
    const kind = random(20);
    let ok = true;
    await conn.query("START TRANSACTION");
    try {
      if (kind === 0) {
        // Open an account in either table, paid from a shared account.
        ok = await add(pick(), -10);
        if (ok)
          await conn.query(`INSERT INTO ${t(TABLES[random(2)]!)} (id, bal) VALUES (?, 10)`, [
            own[0]! + ++opened,
          ]);
      } else if (kind === 1) {
        // Close one of the accounts it opened: its balance moves to a shared account.
        const table = TABLES[random(2)]!;
        const [rows] = await conn.query(
          `SELECT id, bal FROM ${t(table)} WHERE id > ? AND id < ? ORDER BY id LIMIT 1 FOR UPDATE`,
          own,
        );
        const row = (rows as { id: number; bal: string | number }[])[0];
        if (!row) ok = false;
        else {
          await conn.query(`DELETE FROM ${t(table)} WHERE id = ?`, [row.id]);
          ok = await add(pick(), Number(row.bal));
        }
      } else {
        // A transfer; rows are locked in one order by every client, so transfers never deadlock.
        const from = pick();
        const to = pick();
        const amount = 1 + random(50);
        const updates = [
          { ...from, delta: -amount },
          { ...to, delta: amount },
        ].sort((x, y) => x.table.localeCompare(y.table) || x.id - y.id);
        if (from.table === to.table && from.id === to.id) ok = false;
        for (const u of updates) if (ok) ok = await add(u, u.delta);
      }
      await conn.query(ok ? "COMMIT" : "ROLLBACK");
      if (ok) done++;
    } catch (err) {
      await conn.query("ROLLBACK").catch(() => {});
      const errno = (err as { errno?: number }).errno;
      if (errno !== 1213 && errno !== 1205) throw err; // deadlock, lock wait timeout: another one
    }
  }
}

async function total(conn: Connection, db: string): Promise<number> {
  const [rows] = await conn.query(
    `SELECT (SELECT COALESCE(SUM(bal), 0) FROM ${q(db)}.acct_a) + (SELECT COALESCE(SUM(bal), 0) FROM ${q(db)}.acct_b) AS s`,
  );
  return Number((rows as { s: string | number }[])[0]!.s);
}

test("4 connections apply an OLTP transfer load with kill -9: every source transaction stays whole", {
  timeout: 600_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("xfer");
  const db = `${id}_db`;
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => sourceConnection()));
  const src = clients[0]!;
  const dst = await targetConnection();
  const reader = await targetConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  const port = await freePort();
  const extra = [
    `dpu: { apply: { connections: 4 }, batch: { maxRows: 1000 }, http: { port: ${port} }, grpc: { port: 0 } }`,
    "monitor: { http: { port: 0 } }",
  ];
  const capture = ["  lease: { ttlMs: 2s }", "  http: { port: 0 }", "  grpc: { port: 0 }"];
  let run: DfsRun | null = null;
  let dir: string | undefined;
  let reading = true;
  const broken: number[] = [];
  let reads = 0;
  try {
    for (const conn of [src, dst]) {
      await conn.query(`CREATE DATABASE ${q(db)}`);
      for (const table of TABLES) {
        await conn.query(`CREATE TABLE ${q(db)}.${q(table)} (id BIGINT PRIMARY KEY, bal BIGINT NOT NULL)`);
        const values = Array.from({ length: ACCOUNTS }, (_, i) => [i + 1, OPENING]);
        await conn.query(`INSERT INTO ${q(db)}.${q(table)} (id, bal) VALUES ?`, [values]);
      }
      await conn.query(`CREATE TABLE ${q(db)}.done (id INT PRIMARY KEY)`);
    }
    assert.equal(await total(dst, db), TOTAL);
    const start = await binlogEnd(src);
    run = startDfsRun(urls, id, db, start, extra, { capture });
    dir = run.dir;

    // The reader: the target's total, in one statement, as often as it can.
    const watching = (async () => {
      while (reading) {
        const s = await total(reader, db);
        reads++;
        if (s !== TOTAL && broken.length < 20) broken.push(s);
      }
    })();

    const load = Promise.all(clients.map((c, i) => client(c, i, TRANSFERS / CLIENTS, db)));
    // Kill once the DPU has applied a good part of the load, on more than one connection.
    let before: Metrics = { transactions: 0, parallelGroups: 0 };
    await waitFor(
      async () => {
        if (run!.child.exitCode !== null) return true; // fails below, at once
        before = await dpuMetrics(port).catch(() => before);
        return before.transactions >= TRANSFERS / 4;
      },
      { timeoutMs: 120_000, what: "the DPU applying a quarter of the load" },
    );
    assert.equal(run.child.exitCode, null, "dfs run is still running");
    run.child.kill("SIGKILL");
    await new Promise((res) => run!.child.once("exit", res));
    run = startDfsRun(urls, id, db, start, extra, { capture, dir });

    await load;
    await src.query(`INSERT INTO ${q(db)}.done (id) VALUES (1)`);
    let after: Metrics = { transactions: 0, parallelGroups: 0 };
    const restarted = run.child;
    await waitFor(
      async () => {
        if (restarted.exitCode !== null) return true; // fails below, at once
        const [rows] = await dst.query(`SELECT COUNT(*) AS n FROM ${q(db)}.done`);
        after = await dpuMetrics(port).catch(() => after);
        return Number((rows as { n: number }[])[0]!.n) === 1;
      },
      { timeoutMs: 240_000, what: "the target applying the whole load after the restart" },
    );
    assert.equal(restarted.exitCode, null, "the restarted dfs run is still running");
    reading = false;
    await watching;

    console.log(
      `# ${TRANSFERS} transactions; killed after ${before.transactions} applied; ${reads} reads of the target's total; groups on >1 connection: ${before.parallelGroups} before the kill, ${after.parallelGroups} after`,
    );
    assert.deepEqual(
      broken,
      [],
      `the target's total was not ${TOTAL} in some reads (a source transaction split)`,
    );
    assert.ok(reads > 100, `the reader read the total ${reads} times`);
    assert.equal(await total(dst, db), TOTAL);
    for (const table of TABLES) {
      assert.equal(
        await tableDump(dst, db, table),
        await tableDump(src, db, table),
        `${table}: target = source`,
      );
    }
    assert.ok(
      before.parallelGroups + after.parallelGroups > 0,
      "the DPU applied some groups on more than one connection",
    );
  } finally {
    reading = false;
    await stopChild(run?.child ?? null, 10_000);
    await forgetRun({ src, dst, nc, id }, { source: db, target: db }); // before src (clients[0]) closes
    for (const c of clients) await c.end().catch(() => {});
    await dst.end().catch(() => {});
    await reader.end().catch(() => {});
    await nc.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});
