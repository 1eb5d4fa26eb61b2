// A real binlog event the reader cannot decode, end to end through `dfs capture`: it exits once with
// 65 (DFS_BINLOG_UNDECODABLE) naming where the failing transaction starts and why, instead of
// restarting into the event; capture.skipTo set to where the next transaction starts (found as the
// message says) lets it go on.
//
// The event: a row of a table with a MariaDB 5.3-format temporal column (DATETIME(3) made while
// mysql56_temporal_format=OFF). Its type code is ambiguous even with binlog_row_metadata=FULL, so
// zongji describes such a table from INFORMATION_SCHEMA when it reads the row, and a column dropped
// after the row was written (while capture was down) leaves the event with more columns than the
// table has: zongji refuses it, and would again on every restart. A column added before the others
// instead is not refused by zongji (it put the row's values under the wrong names and types, and
// capture published them): capture compares the names the event carries and stops the same way.
// mysql56_temporal_format is global, so this runs on a private stack (the shared source's other
// tests would make 5.3-format columns meanwhile).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeBatch, decodeChanges, decodeDdl, Headers } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { connectNats, subjects } from "@dfs/nats";
import { startPrivateStack, tempDir, uniqueId, writeConfig } from "@dfs/testkit";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import mysql from "mysql2/promise";

const DFS = join(dirname(fileURLToPath(import.meta.url)), "../../../../packages/cli/bin/dfs.js");

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function dfsCapture(config: string): Run {
  const child = spawn(process.execPath, [DFS, "capture", "-c", config], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Waits for the child's exit within `ms`; a child still running then is killed and fails the test. */
async function exitOf(run: Run, ms: number, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ms)));
  const code = await Promise.race([run.exited, late]);
  clearTimeout(timer);
  if (code === "late") {
    run.child.kill("SIGKILL");
    assert.fail(`${what}: still running after ${ms} ms:\n${run.output().slice(-3000)}`);
  }
  return code;
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re, "g"))?.length ?? 0;

/** What capture published so far: inserted ids and DDL statements, read on from the last call. */
function streamFollower(jsm: JetStreamManager, sourceId: string) {
  const stream = subjects.streamName(sourceId);
  const got = { ids: [] as number[], ddl: [] as string[] };
  let next = 1;
  return async () => {
    const info = await jsm.streams.info(stream).catch(() => null);
    for (; info && next <= info.state.last_seq; next++) {
      const m = await jsm.streams.getMessage(stream, { seq: next });
      const kind = m?.header.get(Headers.kind);
      if (kind === "batch")
        got.ids.push(...decodeChanges(decodeBatch(m!.data)).map((c) => Number(c.after?.id)));
      else if (kind === "ddl") got.ddl.push(decodeDdl(m!.data).statement);
    }
    return got;
  };
}

test("dfs capture on a real undecodable event: exits once with 65 naming position and reason; capture.skipTo goes on", async () => {
  const stack = await startPrivateStack("dfs-undecodable-");
  const runs: Run[] = [];
  const src = await mysql.createConnection({ host: "127.0.0.1", port: stack.ports.source, user: "root" });
  const nc = await connectNats({ url: stack.urls.natsUrl, name: "undecodable-test" });
  try {
    const id = uniqueId("undec");
    const db = `${id}_db`;
    const t = `\`${db}\`.\`t\``;
    const u = `\`${db}\`.\`u\``;
    await src.query("SET GLOBAL mysql56_temporal_format = OFF");
    await src.query(`CREATE DATABASE \`${db}\``);
    // t for the dropped column, u for the added one (a rebuilt table's columns take the new format).
    for (const table of [t, u])
      await src.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, at DATETIME(3), note VARCHAR(20))`);
    await src.query("SET GLOBAL mysql56_temporal_format = ON");
    for (const table of [t, u]) {
      const [created] = await src.query(`SHOW CREATE TABLE ${table}`);
      assert.match(
        (created as Record<string, string>[])[0]!["Create Table"]!,
        /datetime\(3\) \/\* mariadb-5\.3 \*\//,
        `precondition: a 5.3-format column in ${table}`,
      );
    }

    const dir = tempDir("dfs-undecodable-");
    const base = {
      source: { id, url: stack.urls.sourceUrl, serverId: 4711, include: { databases: [db] } },
      nats: { url: stack.urls.natsUrl },
      capture: {
        journal: { path: join(dir, "journal.db") },
        heartbeatIntervalMs: 500,
        reconnect: { initialMs: 100, maxMs: 500 },
        http: { port: 0 },
        grpc: { port: 0 },
      },
      log: { level: "info" },
    };
    const config = writeConfig(dir, base);
    const published = streamFollower(await jetstreamManager(nc), id);
    const ids = async () => (await published()).ids;
    /** Runs `dfs capture` once on a transaction it cannot decode: exit 65, the position and the reason. */
    const stopsOnce = async (cfgFile: string, at: { file: string; pos: number }, reason: string) => {
      const run = dfsCapture(cfgFile);
      runs.push(run);
      const code = await exitOf(run, 30_000, "capture on the undecodable event");
      const out = run.output();
      assert.equal(code, 65, `EX_DATAERR:\n${out.slice(-3000)}`);
      assert.match(out, /dfs capture: DFS_BINLOG_UNDECODABLE: /, "the code, on stderr");
      const named = new RegExp(`the transaction at ([^ ]+):(\\d+) cannot be decoded: ${reason}`).exec(out);
      assert.ok(named, `the position and the reason:\n${out.slice(-3000)}`);
      assert.deepEqual({ file: named[1], pos: Number(named[2]) }, at, "where the failing transaction starts");
      assert.equal(count(out, /"msg":"capture running"/), 1, "started once");
      assert.equal(count(out, /restarting from the checkpoint/), 0, "never restarted into the event");
      return { file: named[1]!, pos: Number(named[2]) };
    };
    const masterPos = async () => {
      const [rows] = await src.query("SHOW MASTER STATUS");
      const r = (rows as { File: string; Position: number }[])[0]!;
      return { file: r.File, pos: Number(r.Position) };
    };

    // Capture reads the table's rows while it has all three columns.
    const first = dfsCapture(config);
    runs.push(first);
    await waitFor(() => first.output().includes('"msg":"capture running"'), {
      timeoutMs: 30_000,
      what: `capture running: ${first.output().slice(-2000)}`,
    });
    await src.query(`INSERT INTO ${t} VALUES (1, '2024-01-01 00:00:00.125', 'one')`);
    await waitFor(async () => (await ids()).includes(1), { timeoutMs: 30_000, what: "row 1 in the stream" });
    first.child.kill("SIGTERM");
    assert.equal(await exitOf(first, 20_000, "the first capture, stopped"), 0, first.output().slice(-2000));

    // While capture is down: row 2, then the column goes, then row 3 (decodable: it has two columns).
    const failing = await masterPos();
    await src.query(`INSERT INTO ${t} VALUES (2, '2024-01-02 03:04:05.678', 'two')`);
    const next = await masterPos();
    await src.query(`ALTER TABLE ${t} DROP COLUMN note`);
    await src.query(`INSERT INTO ${t} VALUES (3, '2024-01-03 00:00:00.500')`);

    const named = await stopsOnce(
      config,
      failing,
      `Table ${db}\\.t schema changed between binlog event and metadata fetch: the event has 3 columns, fetched metadata has 2`,
    );
    assert.deepEqual(await ids(), [1], "nothing after the event was captured");

    // The next transaction's start, found as the message says.
    const [events] = await src.query("SHOW BINLOG EVENTS IN ? FROM ?", [named.file, named.pos]);
    const commit = (events as { Event_type: string; Info: string; End_log_pos: number }[]).find(
      (e) => e.Event_type === "Xid" || (e.Event_type === "Query" && /^COMMIT/.test(e.Info)),
    );
    assert.ok(commit, "the failing transaction's commit");
    assert.deepEqual(
      { file: named.file, pos: Number(commit.End_log_pos) },
      next,
      "where row 2's transaction ends",
    );

    const skipping = writeConfig(
      dir,
      { ...base, capture: { ...base.capture, skipTo: `${named.file}:${commit.End_log_pos}` } },
      "skip.yaml",
    );
    const resumed = dfsCapture(skipping);
    runs.push(resumed);
    await waitFor(async () => (await ids()).includes(3), {
      timeoutMs: 30_000,
      what: `row 3 after capture.skipTo: ${resumed.output().slice(-2000)}`,
    });
    assert.match(resumed.output(), /checkpoint moved forward by capture\.skipTo/);
    await src.query(`INSERT INTO ${t} VALUES (4, '2024-01-04 00:00:00.000')`);
    await waitFor(async () => (await ids()).includes(4), { timeoutMs: 30_000, what: "row 4, written later" });
    assert.deepEqual(await ids(), [1, 3, 4], "row 2 passed deliberately, the rows after it captured");
    const { ddl } = await published();
    assert.ok(
      ddl.some((sql) => /DROP COLUMN note/.test(sql)),
      `the ALTER after the skipped transaction: ${ddl.join("; ")}`,
    );
    resumed.child.kill("SIGTERM");
    assert.equal(await exitOf(resumed, 20_000, "the resumed capture, stopped"), 0);

    // A column added before the others while capture is down: zongji reads the table's columns as
    // they are now and would put row 5's values under the wrong names and types, without an error.
    // Capture compares them with the names the event carries and stops.
    const shifted = await masterPos();
    await src.query(`INSERT INTO ${u} VALUES (5, '2024-01-05 00:00:00.000', 'five')`);
    await src.query(`ALTER TABLE ${u} ADD COLUMN x INT FIRST`);
    await src.query(`INSERT INTO ${u} VALUES (60, 6, '2024-01-06 00:00:00.000', 'six')`);
    await stopsOnce(
      skipping,
      shifted,
      `its tablemap event cannot be handled: the columns of ${db}\\.u changed after this event was written: it has \\(id, at, note\\), the table now \\(x, id, at\\)`,
    );
    assert.deepEqual(await ids(), [1, 3, 4], "row 5 not published with its values misplaced");
  } finally {
    for (const r of runs)
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await nc.close().catch(() => {});
    await src.end().catch(() => {});
    await stack.remove();
  }
});
