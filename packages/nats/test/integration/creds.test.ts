// A creds file (a user JWT and its nkey seed) against a real nats-server in operator mode: the
// decentralized auth that NGS and operator-managed clusters use. The operator, account and user
// are made here (nkeys signed into JWTs); the server preloads the account (MEMORY resolver).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ConfigError, waitFor } from "@dfs/common";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { connectNats } from "../../dist/connect.js";

function natsServerBinary(): string {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"])) {
    const p = join(dir, "nats-server");
    if (dir && existsSync(p)) return p;
  }
  throw new Error("nats-server is not installed: apt-get install -y nats-server (.ci/run installs it)");
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "dfs-creds-"));
let server: ChildProcess | null = null;
let url = "";
let goodCreds = "";
let otherAccountCreds = "";
let expiredCreds = "";

before(async () => {
  const operator = createOperator();
  const account = createAccount();
  const stranger = createAccount(); // an account the server does not know
  const operatorJwt = await encodeOperator("dfs-test-operator", operator);
  // An account's limits default to nothing allowed: no connections, no subscriptions.
  const unlimited = {
    limits: {
      conn: -1,
      subs: -1,
      data: -1,
      payload: -1,
      leaf: -1,
      imports: -1,
      exports: -1,
      wildcards: true,
    },
  };
  const accountJwt = await encodeAccount("dfs-test-account", account, unlimited, { signer: operator });
  const user = createUser();
  const userJwt = await encodeUser("dfs-capture", user, account);
  goodCreds = join(dir, "capture.creds");
  writeFileSync(goodCreds, fmtCreds(userJwt, user), { mode: 0o600 });
  const straySigned = createUser();
  otherAccountCreds = join(dir, "stranger.creds");
  writeFileSync(otherAccountCreds, fmtCreds(await encodeUser("stray", straySigned, stranger), straySigned), {
    mode: 0o600,
  });
  const late = createUser();
  expiredCreds = join(dir, "expired.creds");
  const expiredJwt = await encodeUser("late", late, account, {}, { exp: Math.floor(Date.now() / 1000) - 60 });
  writeFileSync(expiredCreds, fmtCreds(expiredJwt, late), { mode: 0o600 });

  const port = await freePort();
  url = `nats://127.0.0.1:${port}`;
  const conf = join(dir, "server.conf");
  writeFileSync(
    conf,
    [
      `listen: "127.0.0.1:${port}"`,
      `operator: ${operatorJwt}`,
      "resolver: MEMORY",
      `resolver_preload: { ${account.getPublicKey()}: ${accountJwt} }`,
      "",
    ].join("\n"),
  );
  const proc = spawn(natsServerBinary(), ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  server = proc;
  let log = "";
  proc.stderr?.on("data", (b: Buffer) => {
    log += b.toString();
  });
  await waitFor(() => log.includes("Server is ready") || proc.exitCode !== null, {
    timeoutMs: 15_000,
    intervalMs: 50,
    what: "the operator-mode nats-server to start",
  });
  assert.equal(proc.exitCode, null, `nats-server exited: ${log}`);
});

after(() => {
  server?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

test("a creds file signs in to an operator-mode server: publish and subscribe work", async () => {
  const nc = await connectNats({ url, name: "creds-test", credsFile: goodCreds });
  try {
    const sub = nc.subscribe("dfs.creds.test", { max: 1 });
    const got = (async () => {
      for await (const m of sub) return m.string();
      return null;
    })();
    await nc.flush();
    nc.publish("dfs.creds.test", "hello");
    assert.equal(await got, "hello");
  } finally {
    await nc.close();
  }
});

test("creds of an account the server does not know, or an expired user JWT, are a config error naming NATS", async () => {
  for (const [what, file] of [
    ["unknown account", otherAccountCreds],
    ["expired user", expiredCreds],
  ] as const) {
    await assert.rejects(connectNats({ url, name: "creds-test", credsFile: file }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `${what}: ${String(err)}`);
      assert.match(err.message, /NATS at .*127\.0\.0\.1.* rejected the credentials/, what);
      return true;
    });
  }
});
