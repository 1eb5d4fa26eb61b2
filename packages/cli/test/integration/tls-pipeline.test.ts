// `dfs run` over TLS end to end: source (binlog and queries) and target MariaDB TLS-only, NATS with
// TLS, a client certificate and a password, the control plane with mutual TLS and the monitor on
// HTTPS. The secrets come from *_FILE variables; none may appear in any output or monitor page,
// while host names and ports do.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import { deleteStreams, tempDir, uniqueId } from "@dfs/testkit";
import WebSocket from "ws";
import { ensureTlsStack, freePort, httpsGet, TLS_PORTS, tlsRoot } from "../support/tls.js";

const DFS = fileURLToPath(new URL("../../bin/dfs.js", import.meta.url));
const run = promisify(execFile);

/** Every message the monitor's WebSocket sends after a login, until a state arrives (or 15 s). */
function monitorSocket(url: string, ca: Buffer, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca });
    let text = "";
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no state from ${url} within 15 s: ${text}`));
    }, 15_000);
    ws.once("error", reject);
    ws.once("open", () => ws.send(JSON.stringify({ type: "login", token })));
    ws.on("message", (data) => {
      text += `${String(data)}\n`;
      if (String(data).startsWith('{"type":"state"')) {
        clearTimeout(timer);
        ws.close();
        resolve(text);
      }
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 15_000).unref();
  });
}

test("dfs run replicates over TLS everywhere and never prints a secret", async () => {
  const { files, urls } = await ensureTlsStack();
  const id = uniqueId("tls");
  const dir = tempDir("dfs-tls-");
  const secrets = {
    source: `SrcPw-${uniqueId()}`,
    target: `TgtPw-${uniqueId()}`,
    nats: readFileSync(files.natsPasswordFile, "utf8").trim(),
    token: `CtlTok-${uniqueId()}`,
  };
  const srcUser = `s${id}`;
  const tgtUser = `w${id}`;
  const src = await tlsRoot(files, TLS_PORTS.source);
  const tgt = await tlsRoot(files, TLS_PORTS.target);
  const schema = `CREATE DATABASE \`${id}\`; CREATE TABLE \`${id}\`.t (id INT PRIMARY KEY, v VARCHAR(40))`;
  await src.query(schema);
  await tgt.query(schema);
  await src.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ? REQUIRE SSL", [srcUser, secrets.source]);
  await src.query("GRANT ALL PRIVILEGES ON *.* TO ?@'127.0.0.1'", [srcUser]);
  await tgt.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ? REQUIRE SSL", [tgtUser, secrets.target]);
  await tgt.query("GRANT ALL PRIVILEGES ON *.* TO ?@'127.0.0.1'", [tgtUser]);

  // Secrets in files: the source password alone, the whole target URL (password inside), NATS, token.
  const secretFile = (name: string, value: string) => {
    const f = join(dir, name);
    writeFileSync(f, `${value}\n`, { mode: 0o600 });
    return f;
  };
  const ports = { ch: await freePort(), cg: await freePort(), dh: await freePort(), dg: await freePort() };
  const monitorPort = await freePort();
  const q = JSON.stringify;
  const config = [
    "source:",
    `  id: ${id}`,
    `  url: ${q(`mysql://${srcUser}@127.0.0.1:${TLS_PORTS.source}?ssl-mode=VERIFY_IDENTITY&ssl-ca=${encodeURIComponent(files.ca)}`)}`,
    `  serverId: ${5000 + Math.floor(Math.random() * 50_000)}`,
    `  include: { databases: [${id}] }`,
    "target:",
    `  tls: { mode: VERIFY_IDENTITY, ca: ${q(files.ca)} }`,
    "nats:",
    `  url: ${q(urls.natsUrl)}`,
    "  user: dfs",
    `  tls: { ca: ${q(files.ca)}, cert: ${q(files.clientCert)}, key: ${q(files.clientKey)} }`,
    "capture:",
    `  journal: { path: ${q(join(dir, "journal.db"))} }`,
    "  heartbeatIntervalMs: 500",
    `  http: { port: ${ports.ch} }`,
    `  grpc: { port: ${ports.cg} }`,
    `dpu: { http: { port: ${ports.dh} }, grpc: { port: ${ports.dg} } }`,
    "control:",
    `  tls: { cert: ${q(files.serverCert)}, key: ${q(files.serverKey)}, ca: ${q(files.ca)}, requireClientCert: true }`,
    `  client: { cert: ${q(files.clientCert)}, key: ${q(files.clientKey)} }`,
    "monitor:",
    "  pollIntervalMs: 200",
    `  http: { port: ${monitorPort}, host: 127.0.0.1, tls: { cert: ${q(files.serverCert)}, key: ${q(files.serverKey)} } }`,
    "log: { level: debug }",
    "",
  ].join("\n");
  const cfgFile = join(dir, "dfs.yaml");
  writeFileSync(cfgFile, config);
  const env = {
    ...process.env,
    DFS_LOG_LEVEL: "debug",
    DFS_SOURCE_PASSWORD_FILE: secretFile("source-password", secrets.source),
    DFS_TARGET_URL_FILE: secretFile(
      "target-url",
      `mysql://${tgtUser}:${secrets.target}@127.0.0.1:${TLS_PORTS.target}`,
    ),
    DFS_NATS_PASSWORD_FILE: files.natsPasswordFile,
    DFS_CONTROL_TOKEN_FILE: secretFile("control-token", secrets.token),
  };

  let out = "";
  const child = spawn(process.execPath, [DFS, "run", "-c", cfgFile], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.setEncoding("utf8").on("data", (c: string) => {
    out += c;
  });
  child.stderr!.setEncoding("utf8").on("data", (c: string) => {
    out += c;
  });
  const ca = readFileSync(files.ca);
  const monitorUrl = `https://127.0.0.1:${monitorPort}`;
  const pages: string[] = [];
  try {
    await waitFor(() => out.includes("monitor serving") || child.exitCode !== null, {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: "dfs run to serve the monitor",
    });
    assert.equal(child.exitCode, null, `dfs run exited: ${out}`);

    await src.query(`INSERT INTO \`${id}\`.t VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
    await src.query(`UPDATE \`${id}\`.t SET v = 'TWO' WHERE id = 2`);
    await src.query(`DELETE FROM \`${id}\`.t WHERE id = 3`);
    await waitFor(
      async () => {
        const [rows] = await tgt.query(`SELECT id, v FROM \`${id}\`.t ORDER BY id`);
        return (
          JSON.stringify(rows) ===
          JSON.stringify([
            { id: 1, v: "one" },
            { id: 2, v: "TWO" },
          ])
        );
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "the target to follow the source over TLS" },
    );

    // dfs ctl reaches the mutual-TLS control plane with the config's client certificate.
    const ctlEnv = { ...env, DFS_LOG_LEVEL: "warn" };
    const address = `127.0.0.1:${ports.cg}`;
    const status = await run(
      process.execPath,
      [DFS, "ctl", "capture", "status", "-c", cfgFile, "--address", address],
      {
        env: ctlEnv,
      },
    );
    out += status.stdout + status.stderr;
    assert.equal((JSON.parse(status.stdout) as { state: string }).state, "running");
    // Plaintext, or TLS without a client certificate, is refused.
    for (const flags of [[], ["--tls-ca", files.ca]]) {
      const r = await run(
        process.execPath,
        [DFS, "ctl", "capture", "status", "--address", address, ...flags],
        {
          env: { ...ctlEnv, DFS_CONTROL_TOKEN: secrets.token, DFS_CONTROL_TOKEN_FILE: "" },
        },
      ).then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      assert.ok(r, `dfs ctl ${flags.join(" ")} got through without a client certificate`);
      assert.equal(r.code, 69, "unavailable (sysexits 69)");
      assert.match(r.stderr, /UNAVAILABLE/);
      out += r.stderr;
    }

    // The monitor: HTTPS only; its page, scripts, metrics and WebSocket state.
    await assert.rejects(fetch(`http://127.0.0.1:${monitorPort}/`), "plain HTTP to the monitor");
    for (const path of [
      "/",
      "/app.js",
      "/pipeline.js",
      "/format.js",
      "/chart.js",
      "/style.css",
      "/metrics",
      "/healthz",
    ]) {
      const r = await httpsGet(`${monitorUrl}${path}`, ca);
      assert.equal(r.status, 200, `${path}: ${r.body.slice(0, 200)}`);
      pages.push(r.body);
    }
    const state = await monitorSocket(`wss://127.0.0.1:${monitorPort}/ws`, ca, secrets.token);
    pages.push(state);
    assert.match(state, /"type":"login","ok":true/);
    assert.ok(state.includes(`127.0.0.1:${ports.cg}`), "the monitor shows the services' addresses");
  } finally {
    await stop(child);
    await src.query(`DROP DATABASE IF EXISTS \`${id}\``).catch(() => {});
    await tgt.query(`DROP DATABASE IF EXISTS \`${id}\``).catch(() => {});
    await src.query("DROP USER IF EXISTS ?@'127.0.0.1'", [srcUser]).catch(() => {});
    await tgt.query("DROP USER IF EXISTS ?@'127.0.0.1'", [tgtUser]).catch(() => {});
    await src.end();
    await tgt.end();
    const nc = await connectNats({
      url: urls.natsUrl,
      name: "t-cleanup",
      user: "dfs",
      password: secrets.nats,
      tls: { ca: files.ca, cert: files.clientCert, key: files.clientKey },
    });
    await deleteStreams(nc, id).catch(() => {});
    await nc.close();
  }

  if (process.env.DFS_TEST_DUMP) writeFileSync(process.env.DFS_TEST_DUMP, [out, ...pages].join("\n"));
  // Every byte printed, and every page served, is free of the secrets; hosts and ports are shown.
  const everything = [out, ...pages].join("\n");
  for (const [name, value] of Object.entries(secrets)) {
    assert.ok(!everything.includes(value), `the ${name} secret appears in the output or a monitor page`);
  }
  assert.ok(
    out.includes(`${srcUser}@127.0.0.1:${TLS_PORTS.source}`),
    "the source's user, host and port are logged",
  );
  assert.ok(out.includes(`${tgtUser}:***@127.0.0.1:${TLS_PORTS.target}`), "the target URL is logged masked");
  assert.ok(out.includes(`tls://127.0.0.1:${TLS_PORTS.nats}`), "the NATS URL is logged");
  assert.ok(out.includes("[redacted]"), "secrets are logged as [redacted]");
});
