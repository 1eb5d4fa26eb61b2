// A fatal source error at run time (the login is refused after a reconnect) stops capture with
// the reason and a non-zero exit code, instead of being retried forever.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, tempDir, uniqueId, urls } from "@dfs/testkit";
import { REPO_ROOT, writeConfig } from "../support/failure.js";
import { rowCount, waitForRaw } from "../support/harness.js";

const DFS_BIN = join(REPO_ROOT, "packages", "cli", "bin", "dfs.js");

test("access denied on reconnect: dfs capture stops with DFS_SOURCE_ACCESS_DENIED and exit code 78 (EX_CONFIG), no retry loop", {
  timeout: 120_000,
}, async () => {
  await ensureStack();
  const id = uniqueId("denied");
  const db = `${id}_db`;
  const user = `cap_${id}`.slice(0, 32);
  const password = "First-Pw-1";
  const dir = tempDir("dfs-denied-");
  const conn = await sourceConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  let child: ReturnType<typeof spawn> | null = null;
  try {
    await conn.query(`CREATE DATABASE \`${db}\``);
    await conn.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY)`);
    for (const host of ["%", "localhost", "127.0.0.1"]) {
      await conn.query(`CREATE USER '${user}'@'${host}' IDENTIFIED BY '${password}'`);
      await conn.query(`GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO '${user}'@'${host}'`);
    }
    const cfgPath = writeConfig(dir, {
      source: {
        id,
        url: `mysql://${user}:${password}@127.0.0.1:13306`,
        serverId: 5000 + Math.floor(Math.random() * 50_000),
        include: { databases: [db] },
      },
      nats: { url: urls.natsUrl },
      capture: {
        journal: { path: join(dir, "journal.db") },
        http: { port: 0 },
        grpc: { port: 0 },
        reconnect: { initialMs: "100ms", maxMs: "500ms" },
      },
      log: { level: "warn" },
    });
    const c = spawn(process.execPath, [DFS_BIN, "capture", "-c", cfgPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = c;
    let stderr = "";
    let stdout = "";
    c.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    c.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => c.once("exit", (code) => resolve(code)));

    // Capture starts at the end of the binlog: write once it runs (its first heartbeat is out).
    await waitForRaw(nc, id, (ms) => ms.some((m) => m.kind === "heartbeat"), 30_000);
    await conn.query(`INSERT INTO \`${db}\`.t VALUES (1)`);
    await waitForRaw(nc, id, (ms) => rowCount(ms) === 1, 30_000);

    // The password changes and the binlog connection is cut: the reconnect is refused.
    for (const host of ["%", "localhost", "127.0.0.1"])
      await conn.query(`ALTER USER '${user}'@'${host}' IDENTIFIED BY 'Second-Pw-2'`);
    const [procs] = await conn.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?", [
      user,
    ]);
    for (const p of procs as { id: number }[]) await conn.query(`KILL ${p.id}`).catch(() => {});

    const code = await Promise.race([
      exited,
      new Promise<"hung">((r) => setTimeout(() => r("hung"), 60_000)),
    ]);
    assert.equal(code, 78, `dfs capture exits with 78 (stderr: ${stderr.slice(-2000)})`);
    assert.match(stderr, /DFS_SOURCE_ACCESS_DENIED/, "the code is named");
    assert.match(stderr, /Access denied for user/, "the server's reason is given");
    const reconnects = (stderr.match(/restarting from the checkpoint/g) ?? []).length;
    assert.ok(reconnects <= 1, `one reconnect at most, not a loop (${reconnects})`);
    assert.doesNotMatch(stderr + stdout, /First-Pw-1|Second-Pw-2/, "no password in any output");
    child = null;
  } finally {
    child?.kill("SIGKILL");
    for (const host of ["%", "localhost", "127.0.0.1"])
      await conn.query(`DROP USER IF EXISTS '${user}'@'${host}'`).catch(() => {});
    await conn.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await conn.end();
    await deleteStreams(nc, id).catch(() => {});
    await nc.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
