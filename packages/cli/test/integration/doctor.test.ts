// `dfs doctor` against the project's stack: a good config passes (0); a source user without the
// replication privileges is named with the GRANT that fixes it (78); an unreachable NATS is 69.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ensureStack, sourceConnection, tempDir, uniqueId, urls } from "@dfs/testkit";

const run = promisify(execFile);
const DFS = fileURLToPath(new URL("../../bin/dfs.js", import.meta.url));

async function dfs(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  // Only the variables given: a DFS_* of the caller's environment must not change the config.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DFS_")));
  try {
    const r = await run(process.execPath, [DFS, ...args], { env: { ...clean, ...env }, timeout: 60_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

function config(dir: string, lines: string[]): string {
  const file = join(dir, `${uniqueId("cfg")}.yaml`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/** A TCP port nothing listens on (bound then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The table's row of a check: [check, status, rest of the line]. */
function row(out: string, check: string): string {
  const line = out.split("\n").find((l) => l.startsWith(`${check}  `));
  assert.ok(line, `a row for ${check} in:\n${out}`);
  return line;
}

test("dfs doctor: a good config is exit 0, with every check listed; without -c the environment is used", async () => {
  await ensureStack();
  const id = uniqueId("doc");
  const src = await sourceConnection();
  await src.query(`CREATE DATABASE \`${id}\``);
  const dir = tempDir();
  try {
    const file = config(dir, [
      `source: { id: ${id}, url: "${urls.sourceUrl}", include: { databases: [${id}] } }`,
      `target: { url: "${urls.targetUrl}" }`,
      `nats: { url: "${urls.natsUrl}" }`,
    ]);
    const r = await dfs(["doctor", "-c", file]);
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    for (const check of [
      "source: reachable",
      "source: log_bin",
      "source: binlog_format",
      "source: binlog_row_image",
      "source: binlog_row_metadata",
      "source: server_id",
      "source: GTID",
      "source: binlog retention",
      "source: REPLICATION SLAVE",
      "source: BINLOG MONITOR",
      "nats: reachable",
      "nats: JetStream",
      "target: reachable",
      "target: writable",
    ])
      assert.match(row(r.out, check), /\s(ok|warn)\s/, check);
    assert.match(row(r.out, "source: SELECT"), /\sok\s/);
    assert.match(row(r.out, "target: privileges"), new RegExp(`INSERT, UPDATE, DELETE, CREATE on \`${id}\``));
    assert.match(r.out, /\n\d+ checks: all ok/);

    const env = await dfs(["doctor"], {
      DFS_SOURCE_ID: id,
      DFS_SOURCE_URL: urls.sourceUrl,
      DFS_TARGET_URL: urls.targetUrl,
      DFS_NATS_URL: urls.natsUrl,
    });
    assert.equal(env.code, 0, `${env.out}\n${env.err}`);
    assert.match(row(env.out, "source: reachable"), /127\.0\.0\.1:13306/);
  } finally {
    await src.query(`DROP DATABASE IF EXISTS \`${id}\``);
    await src.end();
  }
});

test("dfs doctor: a source user with only SELECT is exit 78, naming the missing privileges and the GRANTs", async () => {
  await ensureStack();
  const user = uniqueId("doc");
  const password = `pw-${uniqueId("s")}`;
  const src = await sourceConnection();
  // The most specific host, so that no anonymous ''@'localhost' account takes the login instead.
  await src.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?", [user, password]);
  const dir = tempDir();
  try {
    await src.query("GRANT SELECT ON *.* TO ?@'127.0.0.1'", [user]);
    const file = config(dir, [
      `source: { id: ${user}, url: "mysql://${user}:${password}@127.0.0.1:13306" }`,
      `target: { url: "${urls.targetUrl}" }`,
      `nats: { url: "${urls.natsUrl}" }`,
    ]);
    const r = await dfs(["doctor", "-c", file]);
    assert.equal(r.code, 78, `${r.out}\n${r.err}`);
    const slave = row(r.out, "source: REPLICATION SLAVE");
    assert.match(slave, /\sFAIL\s/);
    assert.match(
      slave,
      new RegExp(
        `lacks REPLICATION SLAVE.*GRANT REPLICATION SLAVE ON \\*\\.\\* TO '${user}'@'127\\.0\\.0\\.1'`,
      ),
    );
    const monitor = row(r.out, "source: BINLOG MONITOR");
    assert.match(
      monitor,
      new RegExp(`\\sFAIL\\s.*GRANT BINLOG MONITOR ON \\*\\.\\* TO '${user}'@'127\\.0\\.0\\.1'`),
    );
    assert.match(row(r.out, "source: SELECT"), /\sok\s/);
    assert.match(row(r.out, "source: binlog_format"), /\sok\s/, "the settings themselves are fine");
    assert.match(r.out, /2 failed; exit code 78 \(config\)/);
    assert.ok(!`${r.out}${r.err}`.includes(password), "the password is never printed");

    // Granted what the table said, the same config passes.
    await src.query("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO ?@'127.0.0.1'", [user]);
    const fixed = await dfs(["doctor", "-c", file]);
    assert.equal(fixed.code, 0, `${fixed.out}\n${fixed.err}`);
  } finally {
    await src.query("DROP USER IF EXISTS ?@'127.0.0.1'", [user]);
    await src.end();
  }
});

test("dfs doctor: NATS unreachable is exit 69, the other servers still checked; a wrong password is 78", async () => {
  await ensureStack();
  const dir = tempDir();
  const port = await closedPort();
  const file = config(dir, [
    `source: { id: ${uniqueId("doc")}, url: "${urls.sourceUrl}" }`,
    `target: { url: "${urls.targetUrl}" }`,
    `nats: { url: "nats://127.0.0.1:${port}" }`,
  ]);
  const r = await dfs(["doctor", "-c", file]);
  assert.equal(r.code, 69, `${r.out}\n${r.err}`);
  const nats = row(r.out, "nats: reachable");
  assert.match(nats, new RegExp(`\\sFAIL\\s.*127\\.0\\.0\\.1:${port}.*start nats-server`));
  assert.match(row(r.out, "source: reachable"), /\sok\s/);
  assert.match(row(r.out, "target: reachable"), /\sok\s/);
  assert.match(r.out, /exit code 69 \(unavailable\)/);

  const denied = await dfs(["doctor"], {
    DFS_SOURCE_ID: "doc",
    DFS_SOURCE_URL: "mysql://root:not-the-password@127.0.0.1:13306",
    DFS_NATS_URL: urls.natsUrl,
  });
  assert.equal(denied.code, 78, `${denied.out}\n${denied.err}`);
  assert.match(
    row(denied.out, "source: reachable"),
    /\sFAIL\s.*Access denied.*fix the user name and password in source\.url/,
  );
  assert.ok(!`${denied.out}${denied.err}`.includes("not-the-password"));
});
