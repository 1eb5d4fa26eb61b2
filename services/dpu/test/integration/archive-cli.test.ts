// The backup use through the `dfs` command line, beside archive.test.ts (which kills the DPU under
// load): `dfs run -c` with examples/backup.yaml itself (only its names and paths made unique);
// `dfs archive query` by time and by position, JSON and table; flashback of a range that is not
// the archive's tail (refused when later changes touched its rows, --force, applied to a copy);
// DDL in the archive (query, replay into an empty database, flashback's warning and refusal).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, tempDir, uniqueId, urls } from "@dfs/testkit";
import type { Connection } from "mysql2/promise";
import { parse, stringify } from "yaml";
import {
  type Archiving,
  archived,
  binlogPosition,
  DFS,
  dfs,
  openArchiving,
  queryEventEnd,
  queryJson,
  queryTable,
  ROOT,
  rowsOf,
  sourceNow,
  splitPos,
  untilSecond,
  waitArchived,
} from "../support/archive-cli.js";
import { q } from "../support/archive-load.js";
import { tableDump, targetConnection } from "../support/pipeline.js";

type Json = Record<string, unknown>;
/** A change as `table op key v`, a DDL as `DDL statement`: what the assertions compare. */
const sig = (e: Json): string =>
  e.kind === "ddl"
    ? `DDL ${e.statement}`
    : `${e.table} ${e.op} ${JSON.stringify(e.key)} ${(e.after as Json | null)?.v ?? "-"}`;

test("dfs run -c examples/backup.yaml: the snapshot and later changes reach the archive; SIGTERM exits 0", {
  timeout: 120_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("bkrun");
  const db = `${id}_src`;
  const tmp = tempDir("dfs-backup-run-");
  const original = parse(readFileSync(join(ROOT, "examples/backup.yaml"), "utf8")) as Json & {
    source: Json;
    capture: Json & { journal: Json };
    archive: Json;
  };
  const cfg = structuredClone(original);
  cfg.source.id = id;
  cfg.source.serverId = 5000 + Math.floor(Math.random() * 50_000);
  cfg.capture.journal.path = join(tmp, "journal.db");
  cfg.archive.dir = join(tmp, "archive");
  // Only those four differ from the example; every other key (start.snapshot, retention, ...) is its own.
  assert.deepEqual(
    {
      ...cfg,
      source: { ...cfg.source, id: 0, serverId: 0 },
      capture: { ...cfg.capture, journal: { ...cfg.capture.journal, path: 0 } },
      archive: { ...cfg.archive, dir: 0 },
    },
    {
      ...original,
      source: { ...original.source, id: 0, serverId: 0 },
      capture: { ...original.capture, journal: { ...original.capture.journal, path: 0 } },
      archive: { ...original.archive, dir: 0 },
    },
  );
  assert.equal(cfg.target, undefined, "the backup example has no target");
  const file = join(tmp, "backup.yaml");
  writeFileSync(file, stringify(cfg));
  const ref = { db, table: "t" };
  const dir = cfg.archive.dir as string;

  const src = await sourceConnection();
  let child: ReturnType<typeof spawn> | null = null;
  let exited: Promise<number | string> | null = null;
  let out = "";
  try {
    await src.query(`CREATE DATABASE ${q(db)}`);
    await src.query(`CREATE TABLE ${q(db)}.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)`);
    await src.query(`INSERT INTO ${q(db)}.t VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
    // The example's ports as any free ones (other tests may run services meanwhile); the file is as given.
    const env = { ...process.env, DFS_MONITOR_PORT: "0" } as NodeJS.ProcessEnv;
    for (const s of ["CAPTURE", "DPU"]) for (const p of ["HTTP", "GRPC"]) env[`DFS_${s}_${p}_PORT`] = "0";
    child = spawn(process.execPath, [DFS, "run", "-c", file], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const c = child;
    exited = new Promise((resolve) => c.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
    const keep = (chunk: string) => {
      out = (out + chunk).slice(-20_000);
    };
    child.stdout!.setEncoding("utf8").on("data", keep);
    child.stderr!.setEncoding("utf8").on("data", keep);
    const running = async (what: string, check: () => boolean) =>
      waitFor(() => child!.exitCode !== null || check(), { timeoutMs: 60_000, intervalMs: 100, what }).then(
        () => assert.equal(child!.exitCode, null, `dfs run exited: ${out}`),
      );
    // The snapshot (start.snapshot: true) of the rows there before the start, as reads.
    await running(
      "the snapshot in the archive",
      () =>
        archived(dir, { tables: [ref] }).filter((e) => e.kind === "change" && e.change.op === "r").length ===
        3,
    );
    await src.query(`INSERT INTO ${q(db)}.t VALUES (4, 'four')`);
    await src.query(`UPDATE ${q(db)}.t SET v = 'TWO' WHERE id = 2`);
    await src.query(`DELETE FROM ${q(db)}.t WHERE id = 3`);
    await src.query(`INSERT INTO ${q(db)}.t VALUES (5, 'five')`);
    await running("the changes in the archive", () =>
      archived(dir, { tables: [ref], key: '["5"]' }).some((e) => e.kind === "change"),
    );

    const entries = await queryJson(["-c", file, "--table", `${db}.t`]);
    // With --table the DDL that names the table comes too: first the snapshot's CREATE TABLE.
    assert.match(
      String(entries[0]?.statement),
      /^CREATE TABLE (IF NOT EXISTS )?`t`/,
      JSON.stringify(entries[0]),
    );
    assert.deepEqual(
      entries.slice(1).map(sig),
      [
        `${db}.t r ["1"] one`,
        `${db}.t r ["2"] two`,
        `${db}.t r ["3"] three`,
        `${db}.t c ["4"] four`,
        `${db}.t u ["2"] TWO`,
        `${db}.t d ["3"] -`,
        `${db}.t c ["5"] five`,
      ],
      "the snapshot of the rows there before, then each change once, in order",
    );
    assert.deepEqual(entries[6]!.before, { id: 3, v: "three" }, "a delete keeps its before image");

    child.kill("SIGTERM");
    const code = await Promise.race([
      exited,
      new Promise((r) => setTimeout(() => r("still running"), 30_000).unref()),
    ]);
    assert.equal(code, 0, `dfs run after SIGTERM: ${out}`);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    await deleteStreams(nc, id).catch(() => {});
    await nc.close().catch(() => {});
    await src.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
    await src.end().catch(() => {});
  }
});

// The tests below share one archiving pipeline (capture and DPU in this process), each its own tables.
let a: Archiving;
let dst: Connection;
before(async () => {
  a = await openArchiving("arcli");
  dst = await targetConnection();
});
after(async () => {
  await a?.close();
  if (a) {
    for (const d of [a.db, `${a.id}_replay`, `${a.id}_before`, `${a.id}_late`, `${a.id}_late2`])
      await dst?.query(`DROP DATABASE IF EXISTS ${q(d)}`).catch(() => {});
    await dst
      ?.query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer LIKE ?", [`${a.id}:%`])
      .catch(() => {});
  }
  await dst?.end().catch(() => {});
});

test("dfs archive query by time and by position: each window's changes exactly, JSON and table", {
  timeout: 60_000,
}, async () => {
  const { src, db, dir, config } = a;
  const t = `${q(db)}.t_win`;
  await src.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20) NULL)`);
  // Window 1 starts with a new second of the source's clock, so nothing before shares it.
  await untilSecond(src, (await sourceNow(src)) + 1);
  const from1 = await sourceNow(src);
  const p0 = await binlogPosition(src);
  await src.query(`INSERT INTO ${t} VALUES (1, 'a'), (2, 'b')`);
  await src.query(`UPDATE ${t} SET v = 'A' WHERE id = 1`);
  const p1 = await binlogPosition(src);
  // Window 2 starts when window 1's last second has passed.
  const from2 = (await sourceNow(src)) + 1;
  await untilSecond(src, from2);
  await src.query(`INSERT INTO ${t} VALUES (3, 'c')`);
  await src.query(`DELETE FROM ${t} WHERE id = 2`);
  await src.query(`UPDATE ${t} SET v = 'C' WHERE id = 3`);
  const p2 = await binlogPosition(src);
  const until2 = (await sourceNow(src)) + 1;
  await untilSecond(src, until2);
  await src.query(`INSERT INTO ${t} VALUES (9, 'after')`);
  await waitArchived(dir, { db, table: "t_win" }, '["9"]', "c");

  const w = `${db}.t_win`;
  const window1 = [`${w} c ["1"] a`, `${w} c ["2"] b`, `${w} u ["1"] A`];
  const window2 = [`${w} c ["3"] c`, `${w} d ["2"] -`, `${w} u ["3"] C`];
  const iso = (s: number) => new Date(s * 1000).toISOString();
  // By time: ISO 8601 for the first window, epoch seconds for the second; the end is excluded.
  const byTime1 = await queryJson(["-c", config, "--since", iso(from1), "--until", iso(from2)]);
  assert.deepEqual(byTime1.map(sig), window1, "window 1 by time (JSON)");
  for (const e of byTime1) {
    const s = Date.parse(e.commitTime as string) / 1000;
    assert.ok(s >= from1 && s < from2, `commit time ${e.commitTime} in [${from1}, ${from2})`);
  }
  const byTime2 = await queryJson(["-c", config, "--since", String(from2), "--until", String(until2)]);
  assert.deepEqual(byTime2.map(sig), window2, "window 2 by time (JSON)");
  // By position.
  const byPos1 = await queryJson(["-c", config, "--from-pos", p0, "--to-pos", p1]);
  assert.deepEqual(byPos1.map(sig), window1, "window 1 by position (JSON)");
  const byPos2 = await queryJson(["-c", config, "--from-pos", p1, "--to-pos", p2]);
  assert.deepEqual(byPos2.map(sig), window2, "window 2 by position (JSON)");
  assert.deepEqual(
    byPos2.map((e) => e.position),
    byTime2.map((e) => e.position),
    "the same transactions either way",
  );
  // A position the archive printed: the start includes its transaction, the end excludes it.
  const printedPos = byPos2[0]!.position as string;
  assert.deepEqual(
    (await queryJson(["-c", config, "--from-pos", p0, "--to-pos", printedPos])).map(sig),
    window1,
  );
  assert.deepEqual(
    (await queryJson(["-c", config, "--from-pos", printedPos, "--to-pos", p2])).map(sig),
    window2,
  );
  // The table: commit time, position, GTID, table, op, key, before, after.
  const row = (cols: string[]) => {
    const after = JSON.parse(cols[7]!) as Json | null;
    return `${cols[3]} ${cols[4]} ${cols[5]} ${after?.v ?? "-"}`;
  };
  const table1 = await queryTable(["--dir", dir, "--since", String(from1), "--until", String(from2)]);
  assert.deepEqual(table1.map(row), window1, "window 1 by time (table)");
  assert.deepEqual(
    table1.map((c) => c[1]),
    byTime1.map((e) => e.position),
    "the table's positions",
  );
  const table2 = await queryTable(["--dir", dir, "--from-pos", p1, "--to-pos", p2]);
  assert.deepEqual(table2.map(row), window2, "window 2 by position (table)");
  assert.deepEqual(JSON.parse(table2[1]![6]!), { id: 2, v: "b" }, "a delete's before image in the table");
});

test("dfs archive flashback of a range that is not the tail: refused for later-changed rows, --force, applied to a copy", {
  timeout: 60_000,
}, async () => {
  const { src, db, dir, config } = a;
  const t = `${q(db)}.t_fb`;
  await src.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20) NULL)`);
  await src.query(
    `INSERT INTO ${t} VALUES ${[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `(${n}, 'init${n}')`).join(",")}`,
  );
  // Range A: rows 1..3.
  const a0 = await binlogPosition(src);
  await src.query(`UPDATE ${t} SET v = CONCAT('a', id) WHERE id IN (1, 2, 3)`);
  await src.query(`UPDATE ${t} SET v = 'a3b' WHERE id = 3`);
  const a1 = await binlogPosition(src);
  // Range C: rows 4, 5, 6 and a new 9.
  const c0 = await binlogPosition(src);
  const atC0 = await rowsOf(src, db, "t_fb");
  await src.query("BEGIN");
  await src.query(`UPDATE ${t} SET v = 'c4' WHERE id = 4`);
  await src.query(`DELETE FROM ${t} WHERE id = 5`);
  await src.query("COMMIT");
  await src.query(`INSERT INTO ${t} VALUES (9, 'c9')`);
  await src.query(`UPDATE ${t} SET v = 'c6' WHERE id = 6`);
  const c1 = await binlogPosition(src);
  // Later: row 2 of range A, and row 8 of neither.
  await src.query(`UPDATE ${t} SET v = 'later2' WHERE id = 2`);
  await src.query(`UPDATE ${t} SET v = 'later8' WHERE id = 8`);
  await waitArchived(dir, { db, table: "t_fb" }, '["8"]', "u");

  const refused = await dfs(["archive", "flashback", "-c", config, "--from-pos", a0, "--to-pos", a1]);
  assert.equal(refused.code, 65, `refused with exit 65: ${refused.stderr}`);
  assert.match(refused.stderr, /flashback refused: 1 row\(s\)/);
  assert.ok(refused.stderr.includes(`${db}.t_fb ["2"] (update at `), `names row 2: ${refused.stderr}`);
  assert.ok(!/\["[13]"\]/.test(refused.stderr), `names only row 2: ${refused.stderr}`);
  assert.equal(refused.stdout, "", "no SQL when refused");

  const forced = await dfs([
    "archive",
    "flashback",
    "-c",
    config,
    "--from-pos",
    a0,
    "--to-pos",
    a1,
    "--force",
  ]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /^warning \(--force\): 1 row\(s\) were changed again after the range/m);
  assert.match(forced.stdout, /^BEGIN;$/m);
  assert.match(forced.stdout, /^COMMIT;$/m);
  // Newest first: row 3 back to 'a3', then rows 1..3 back to their first images.
  const updates = forced.stdout.split("\n").filter((l) => l.startsWith("UPDATE "));
  assert.equal(updates.length, 4, forced.stdout);
  assert.match(updates[0]!, /'a3'/);
  for (const n of [1, 2, 3])
    assert.ok(
      updates.some((u) => u.includes(`'init${n}'`)),
      `row ${n} undone`,
    );

  // Range C: its rows were not changed after it (row 2 and 8 were): accepted.
  const printed = await dfs(["archive", "flashback", "-c", config, "--from-pos", c0, "--to-pos", c1]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.doesNotMatch(printed.stderr, /refused|warning/);
  // Applied to a copy of today's table on the target server (the same database name).
  await dst.query(`CREATE DATABASE ${q(db)}`);
  await dst.query(`CREATE TABLE ${q(db)}.t_fb (id INT PRIMARY KEY, v VARCHAR(20) NULL)`);
  const now = await rowsOf(src, db, "t_fb");
  await dst.query(`INSERT INTO ${q(db)}.t_fb VALUES ?`, [now.map((r) => r.split("="))]);
  assert.deepEqual(await rowsOf(dst, db, "t_fb"), now, "the copy");
  const applied = await dfs([
    "archive",
    "flashback",
    "-c",
    config,
    "--from-pos",
    c0,
    "--to-pos",
    c1,
    "--apply",
    "--url",
    urls.targetUrl,
  ]);
  assert.equal(applied.code, 0, applied.stderr);
  // The range's rows as at its start; the rest as now.
  const inRange = (r: string) => ["4", "5", "6", "9"].includes(r.split("=")[0]!);
  const expected = [...now.filter((r) => !inRange(r)), ...atC0.filter(inRange)].sort(
    (x, y) => Number(x.split("=")[0]) - Number(y.split("=")[0]),
  );
  assert.deepEqual(await rowsOf(dst, db, "t_fb"), expected, "range C undone in the copy");
  assert.equal(await tableDump(dst, db, "t_fb"), await expectedDump(dst, expected), "the same bytes");
});

/** The dump (tableDump's form) of a t_fb with `rows`: a scratch table on `c`, dropped again. */
async function expectedDump(c: Connection, rows: string[]): Promise<string> {
  const scratch = `${a.id}_expect`;
  await c.query(`CREATE DATABASE ${q(scratch)}`);
  try {
    await c.query(`CREATE TABLE ${q(scratch)}.t_fb (id INT PRIMARY KEY, v VARCHAR(20) NULL)`);
    await c.query(`INSERT INTO ${q(scratch)}.t_fb VALUES ?`, [rows.map((r) => r.split("="))]);
    return await tableDump(c, scratch, "t_fb");
  } finally {
    await c.query(`DROP DATABASE IF EXISTS ${q(scratch)}`);
  }
}

test("DDL in the archive: query in order with each row's columns, replay equals the source, flashback warns and --apply refuses", {
  timeout: 90_000,
}, async () => {
  const { src, db, dir, config } = a;
  const t = `${q(db)}.t_ddl`;
  await src.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20) NULL)`);
  await src.query(`INSERT INTO ${t} VALUES (1, 'a'), (2, 'b')`);
  const d0 = await binlogPosition(src);
  const alter = `ALTER TABLE ${t} ADD COLUMN w INT NULL DEFAULT 7`;
  await src.query(alter);
  const afterAlter = await binlogPosition(src);
  await src.query(`INSERT INTO ${t} VALUES (3, 'c', 3)`);
  await src.query(`UPDATE ${t} SET w = 10 WHERE id = 1`);
  const create = `CREATE TABLE ${q(db)}.t_new (id INT PRIMARY KEY, x VARCHAR(20) NOT NULL)`;
  await src.query(create);
  await src.query(`INSERT INTO ${q(db)}.t_new VALUES (1, 'x1')`);
  const d1 = await binlogPosition(src);
  // After the range: a row the range did not touch.
  await src.query(`UPDATE ${t} SET v = 'B' WHERE id = 2`);
  await src.query(`INSERT INTO ${q(db)}.t_new VALUES (2, 'x2')`);
  await waitArchived(dir, { db, table: "t_new" }, '["2"]', "c");

  const d = `${db}.t_ddl`;
  const n = `${db}.t_new`;
  const range = await queryJson(["-c", config, "--from-pos", d0]);
  assert.deepEqual(
    range.map(sig),
    [
      `DDL ${alter}`,
      `${d} c ["3"] c`,
      `${d} u ["1"] a`,
      `DDL ${create}`,
      `${n} c ["1"] -`,
      `${d} u ["2"] B`,
      `${n} c ["2"] -`,
    ],
    "DDL in its place among the row changes",
  );
  // The DDL's position is where it starts (as for rows), before the end of its event: a range that
  // ends where SHOW MASTER STATUS stood right after it holds it, one that starts there does not.
  const [file, pos] = splitPos(range[0]!.position as string);
  const [d0File, d0Pos] = splitPos(d0);
  const [endFile, endPos] = splitPos(await queryEventEnd(src, d0, "ADD COLUMN w"));
  assert.ok(
    file === d0File && file === endFile && pos >= d0Pos && pos < endPos,
    `the ALTER at ${range[0]!.position}: from ${d0}, ending at ${endFile}:${endPos}`,
  );
  assert.deepEqual((await queryJson(["-c", config, "--from-pos", d0, "--to-pos", afterAlter])).map(sig), [
    `DDL ${alter}`,
  ]);
  assert.equal((await queryJson(["-c", config, "--from-pos", afterAlter])).map(sig)[0], `${d} c ["3"] c`);
  assert.deepEqual(range[2]!.before, { id: 1, v: "a", w: 7 }, "after the ALTER: the new column, its default");
  assert.deepEqual(range[2]!.after, { id: 1, v: "a", w: 10 });
  assert.deepEqual(range[4]!.after, { id: 1, x: "x1" });
  const rows = await queryJson(["-c", config, "--table", d]);
  assert.deepEqual(
    rows.filter((e) => e.kind === "ddl").map(sig),
    [`DDL CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20) NULL)`, `DDL ${alter}`],
    "with --table, the table's DDL comes with its rows",
  );
  assert.deepEqual(
    rows.filter((e) => e.kind !== "ddl").map((e) => Object.keys(e.after as Json).join(",")),
    ["id,v", "id,v", "id,v,w", "id,v,w", "id,v,w"],
    "rows before the ALTER keep their columns, those after have the new one",
  );
  const table = await queryTable(["-c", config, "--from-pos", d0, "--to-pos", d1]);
  assert.deepEqual(
    table.map((c) => c[4]),
    ["DDL", "c", "u", "DDL", "c"],
    "the table lists the DDL in order",
  );
  assert.equal(table[0]![6], alter);

  // Replay of the whole archive (every table of this file's tests) into an empty database.
  const replayDb = `${a.id}_replay`;
  const replayed = await dfs([
    "archive",
    "replay",
    "-c",
    config,
    "--url",
    urls.targetUrl,
    "--database",
    replayDb,
  ]);
  assert.equal(replayed.code, 0, replayed.stderr);
  const [tables] = await src.query(
    "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
    [db],
  );
  const names = (tables as { t: string }[]).map((r) => r.t).sort();
  assert.ok(names.includes("t_ddl") && names.includes("t_new"), names.join(","));
  for (const name of names)
    assert.equal(
      await tableDump(dst, replayDb, name),
      await tableDump(src, db, name),
      `replayed ${name} equals the source`,
    );

  // Replay up to the ALTER: the table as it was then, without the later column.
  const beforeDb = `${a.id}_before`;
  const early = await dfs([
    "archive",
    "replay",
    "-c",
    config,
    "--url",
    urls.targetUrl,
    "--database",
    beforeDb,
    "--to-pos",
    d0,
  ]);
  assert.equal(early.code, 0, early.stderr);
  const [earlyRows] = await dst.query(`SELECT * FROM ${q(beforeDb)}.t_ddl ORDER BY id`);
  assert.deepEqual(
    earlyRows,
    [
      { id: 1, v: "a" },
      { id: 2, v: "b" },
    ],
    "t_ddl as at the range's start",
  );

  // Flashback of the range with the DDL: printed with a warning per DDL; --apply refuses it.
  const printed = await dfs(["archive", "flashback", "-c", config, "--from-pos", d0, "--to-pos", d1]);
  assert.equal(printed.code, 0, printed.stderr);
  const warnings = printed.stderr.split("\n").filter((l) => l.startsWith("warning: DDL at "));
  assert.equal(warnings.length, 2, printed.stderr);
  assert.ok(warnings[0]!.includes("is not undone") && warnings[0]!.includes("ADD COLUMN w"), warnings[0]);
  assert.ok(warnings[1]!.includes("CREATE TABLE"), warnings[1]);
  assert.equal(printed.stdout.match(/^-- not undone: DDL at /gm)?.length, 2, printed.stdout);
  assert.match(printed.stdout, /^DELETE FROM .*t_new.* LIMIT 1;$/m);
  const applied = await dfs([
    "archive",
    "flashback",
    "-c",
    config,
    "--from-pos",
    d0,
    "--to-pos",
    d1,
    "--apply",
    "--url",
    urls.targetUrl,
  ]);
  assert.equal(applied.code, 64, `--apply refuses a range with DDL: ${applied.stderr}`);
  assert.match(applied.stderr, /the range holds DDL, which flashback cannot undo/);
});

test("replay into an empty database when the archive defined the table after later DDL: refused, naming both column lists", {
  timeout: 60_000,
}, async () => {
  const { src, db, dir, config, dpu } = a;
  const t = `${q(db)}.t_late`;
  // The archiving DPU meets the table only after its ALTER: the definition it keeps (SHOW CREATE
  // TABLE, asked then) has the later column, while the first rows do not.
  dpu.pause();
  await src.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20) NULL)`);
  const afterCreate = await binlogPosition(src);
  await src.query(`INSERT INTO ${t} VALUES (1, 'a')`);
  await src.query(`ALTER TABLE ${t} ADD COLUMN w INT NULL`);
  await src.query(`INSERT INTO ${t} VALUES (2, 'b', 2)`);
  dpu.resume();
  await waitArchived(dir, { db, table: "t_late" }, '["2"]', "c");

  const lateDb = `${a.id}_late`;
  const args = ["archive", "replay", "-c", config, "--url", urls.targetUrl, "--table", `${db}.t_late`];
  const refused = await dfs([...args, "--database", lateDb, "--from-pos", afterCreate]);
  assert.equal(refused.code, 65, `${refused.stdout}${refused.stderr}`);
  assert.match(
    refused.stderr,
    /definition of .*t_late \(columns id, v, w\) is not the table its rows at the range's start had \(columns id, v\)/,
  );
  const [left] = await dst.query(
    "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't_late'",
    [lateDb],
  );
  assert.equal(
    Number((left as { n: number }[])[0]!.n),
    0,
    "the table made from the definition is dropped again",
  );

  // From before its CREATE TABLE, the archive's own DDL (which comes with --table) makes the table
  // and adds the column: the replay equals the source.
  const wholeDb = `${a.id}_late2`;
  const whole = await dfs([...args, "--database", wholeDb]);
  assert.equal(whole.code, 0, whole.stderr);
  assert.equal(await tableDump(dst, wholeDb, "t_late"), await tableDump(src, db, "t_late"));
});
