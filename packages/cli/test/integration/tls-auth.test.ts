// The TLS stack refuses plaintext; dfs's MySQL, NATS and control-plane clients authenticate over TLS
// with every supported method (REQUIRE SSL / X509 users, NATS password, nkey, client certificates).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { describe, test } from "node:test";
import { ConfigError, createLogger, TransientError } from "@dfs/common";
import { connectControl, serveControl } from "@dfs/control";
import { MysqlSession, parseMysqlUrl } from "@dfs/mysql";
import { connectNats } from "@dfs/nats";
import { uniqueId } from "@dfs/testkit";
import mysql from "mysql2/promise";
import { ensureTlsStack, TLS_PORTS, tlsRoot } from "../support/tls.js";

const { files, urls } = await ensureTlsStack();
const secret = (f: string) => readFileSync(f, "utf8").trim();

/**
 * A plaintext client on a raw socket: the server's INFO line, then what it answers to CONNECT and
 * PING, and whether it closed the connection (within 5 s).
 */
function plaintextNats(port: number): Promise<{ info: string; answer: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    let info = "";
    let answer = "";
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ info, answer, closed });
    };
    const timer = setTimeout(() => done(false), 5000);
    socket.once("error", reject);
    socket.once("close", () => done(true));
    socket.on("data", (chunk) => {
      if (info.includes("\r\n")) {
        answer += chunk.toString("utf8");
        return;
      }
      info += chunk.toString("utf8");
      if (info.includes("\r\n"))
        socket.write('CONNECT {"verbose":false,"user":"dfs","pass":"x"}\r\nPING\r\n');
    });
  });
}

describe("the TLS stack refuses plaintext", () => {
  test("MariaDB source and target refuse a plaintext login", async () => {
    for (const port of [TLS_PORTS.source, TLS_PORTS.target]) {
      const err = await mysql
        .createConnection({ host: "127.0.0.1", port, user: "root", connectTimeout: 5000 })
        .then(
          (c) => {
            c.destroy();
            return null;
          },
          (e: { errno?: number; message: string }) => e,
        );
      assert.ok(err, `a plaintext connection to ${port} was accepted`);
      // MariaDB answers require_secure_transport with "Access denied" (1045); MySQL 8 with 3159.
      assert.ok(err.errno === 1045 || err.errno === 3159, `${port}: ${err.message}`);
    }
  });

  test("NATS requires TLS before any command", async () => {
    const r = await plaintextNats(TLS_PORTS.nats);
    const info = JSON.parse(r.info.slice(5, r.info.indexOf("\r\n"))) as { tls_required?: boolean };
    assert.equal(info.tls_required, true);
    // The server takes the plaintext for a failed TLS handshake and hangs up, never answering PING.
    assert.equal(r.closed, true, "the server kept a plaintext client connected");
    assert.ok(!r.answer.includes("PONG"), r.answer);
  });

  test("a NATS client without the CA or without a client certificate gets no connection", async () => {
    const noCa = await connectNats({ url: urls.natsUrl, name: "t-noca", user: "dfs", password: "x" }).then(
      (nc) => nc.close().then(() => null),
      (e: Error) => e,
    );
    assert.ok(noCa instanceof TransientError, String(noCa));
    assert.match(noCa.message, /not reachable.*certificate/);
    const noCert = await connectNats({
      url: urls.natsUrl,
      name: "t-nocert",
      user: "dfs",
      password: secret(files.natsPasswordFile),
      tls: { ca: files.ca },
    }).then(
      (nc) => nc.close().then(() => null),
      (e: Error) => e,
    );
    assert.ok(noCert, "the server let a client without a certificate in");
  });
});

describe("authenticating over TLS", () => {
  test("users created REQUIRE SSL and REQUIRE X509 log in with the URL's ssl-* parameters", async () => {
    const root = await tlsRoot(files, TLS_PORTS.source);
    const ssl = uniqueId("ussl");
    const x509 = uniqueId("ux509");
    const pw = `pw-${uniqueId()}`;
    await root.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ? REQUIRE SSL", [ssl, pw]);
    await root.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ? REQUIRE X509", [x509, pw]);
    const ca = encodeURIComponent(files.ca);
    const base = (user: string) => `mysql://${user}:${pw}@127.0.0.1:${TLS_PORTS.source}`;
    const cipher = async (url: string) => {
      const s = await MysqlSession.open(parseMysqlUrl(url), { role: "source" });
      try {
        const rows = await s.query<{ Value: string }[]>("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
        return rows[0]?.Value ?? "";
      } finally {
        await s.close();
      }
    };
    try {
      assert.notEqual(await cipher(`${base(ssl)}?ssl-mode=VERIFY_IDENTITY&ssl-ca=${ca}`), "");
      assert.notEqual(await cipher(`${base(ssl)}?ssl-ca=${ca}`), "", "a CA alone means VERIFY_CA");
      assert.notEqual(await cipher(`${base(ssl)}?ssl-mode=REQUIRED`), "", "REQUIRED checks no certificate");
      // VERIFY_CA without a CA checks against the system's CAs, which do not know the stack's.
      await assert.rejects(cipher(`${base(ssl)}?ssl-mode=VERIFY_CA`), /certificate/);
      // X509 needs the client certificate: refused without it, accepted with it.
      await assert.rejects(cipher(`${base(x509)}?ssl-ca=${ca}`), /Access denied/);
      const withCert = `${base(x509)}?ssl-ca=${ca}&ssl-cert=${encodeURIComponent(files.clientCert)}&ssl-key=${encodeURIComponent(files.clientKey)}`;
      assert.notEqual(await cipher(withCert), "");
    } finally {
      await root.query("DROP USER IF EXISTS ?@'127.0.0.1', ?@'127.0.0.1'", [ssl, x509]);
      await root.end();
    }
  });

  test("NATS: password user and nkey user over mutual TLS; a wrong password is a config error", async () => {
    const tls = { ca: files.ca, cert: files.clientCert, key: files.clientKey };
    const ping = async (o: Parameters<typeof connectNats>[0]) => {
      const nc = await connectNats(o);
      try {
        await nc.flush();
        return nc.info?.tls_required;
      } finally {
        await nc.close();
      }
    };
    const password = secret(files.natsPasswordFile);
    assert.equal(await ping({ url: urls.natsUrl, name: "t-pw", user: "dfs", password, tls }), true);
    const nkeySeed = secret(files.nkeySeedFile);
    assert.equal(await ping({ url: urls.natsUrl, name: "t-nkey", nkeySeed, tls }), true);
    // nats:// plus the tls section works too: TLS is required by the setting, not the scheme.
    const plainScheme = `nats://127.0.0.1:${TLS_PORTS.nats}`;
    assert.equal(await ping({ url: plainScheme, name: "t-scheme", nkeySeed, tls }), true);
    const wrong = await ping({ url: urls.natsUrl, name: "t-bad", user: "dfs", password: "not-it", tls }).then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(wrong instanceof ConfigError, String(wrong));
    assert.match(wrong.message, /rejected the credentials/);
    assert.ok(!wrong.message.includes("not-it"));
  });

  test("the control plane over mutual TLS refuses plaintext and clients without a certificate", async () => {
    const log = createLogger({ level: "silent" });
    const server = await serveControl({
      kind: "capture",
      port: 0,
      token: "t",
      log,
      tls: { cert: files.serverCert, key: files.serverKey, ca: files.ca, requireClientCert: true },
      handlers: { health: () => ({ live: true, ready: true, detail: "ok" }), status: () => ({}) as never },
    });
    const address = `127.0.0.1:${server.port}`;
    const health = async (options: Parameters<typeof connectControl>[2]) => {
      const c = connectControl("capture", address, { timeoutMs: 3000, ...options });
      try {
        return await c.health();
      } finally {
        c.close();
      }
    };
    try {
      assert.equal(
        (await health({ tls: { ca: files.ca, cert: files.clientCert, key: files.clientKey } })).live,
        true,
      );
      await assert.rejects(health({}), /UNAVAILABLE/);
      await assert.rejects(health({ tls: { ca: files.ca } }), /UNAVAILABLE/);
      // The certificate names localhost and 127.0.0.1; another name is refused unless overridden.
      const other = { ca: files.ca, cert: files.clientCert, key: files.clientKey, serverName: "elsewhere" };
      await assert.rejects(health({ tls: other }), /UNAVAILABLE/);
    } finally {
      await server.close();
    }
  });
});
