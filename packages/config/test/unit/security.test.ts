// TLS and authentication keys, secrets from files (*_FILE, { file: }), bind addresses, redaction.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ConfigError } from "@dfs/common";
import { describeConfig, envSecret, parseConfig } from "../../dist/index.js";

const dir = mkdtempSync(join(tmpdir(), "dfs-config-tls-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text = "-----BEGIN PEM-----\n") => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const CA = file("ca.pem");
const CERT = file("cert.pem");
const KEY = file("key.pem");
const SECRET = "S3cr3t-pw_1";
const base = { source: { id: "s", url: "mysql://repl@db.internal:3306" } };
const SEED = `SU${"A".repeat(56)}`;

function problems(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(raw, env, "f.yaml");
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.ok(!err.message.includes(SECRET), err.message);
    return err.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("MySQL TLS", () => {
  test("source.tls and target.tls resolve into the endpoints; a password key wins over the URL's", () => {
    const cfg = parseConfig({
      source: { ...base.source, password: SECRET, tls: { mode: "verify_identity", ca: CA } },
      target: { url: "mysql://w:old@t:3306", password: SECRET, tls: { cert: CERT, key: KEY } },
    });
    assert.deepEqual(cfg.source.endpoint.tls, { mode: "VERIFY_IDENTITY", ca: CA });
    assert.equal(cfg.source.endpoint.password, SECRET);
    assert.deepEqual(cfg.target?.endpoint.tls, { mode: "REQUIRED", cert: CERT, key: KEY });
    assert.equal(cfg.target?.endpoint.password, SECRET);
  });

  test("URL parameters work; bad ones, conflicts and unreadable files name the key", () => {
    const ok = parseConfig({ source: { id: "s", url: `mysql://r@h?ssl-ca=${encodeURIComponent(CA)}` } });
    assert.deepEqual(ok.source.endpoint.tls, { mode: "VERIFY_CA", ca: CA });
    const p = problems({
      source: { id: "s", url: `mysql://r:${SECRET}@h?ssl-ca=${CA}`, tls: { mode: "REQUIRED" } },
      target: { url: `mysql://w:${SECRET}@h?ssl=true` },
    });
    assert.ok(
      p.includes(
        "f.yaml: source.tls: TLS is set both here and in the URL's ssl-* parameters; use one of them",
      ),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => /^f\.yaml: target\.url: has an unknown query parameter "ssl"/.test(x)),
      p.join("\n"),
    );
    const missing = join(dir, "nope.pem");
    const q = problems({
      source: { id: "s", url: `mysql://r@h?ssl-ca=${missing}` },
      target: { url: "mysql://w@h", tls: { mode: "SOMETIMES", cert: missing } },
    });
    assert.ok(q.includes(`f.yaml: source.url: ssl-ca: cannot read ${missing} (no such file)`), q.join("\n"));
    assert.ok(q.includes(`f.yaml: target.tls.cert: cannot read ${missing} (no such file)`), q.join("\n"));
    assert.ok(
      q.some((x) => x.startsWith("f.yaml: target.tls: mode must be one of")),
      q.join("\n"),
    );
  });
});

describe("secrets from files", () => {
  test("X_FILE reads the secret without its trailing newline and names the variable in errors", () => {
    const pw = file("pw", `${SECRET}\n`);
    const url = file("url", `mysql://w:${SECRET}@t.internal:3307\r\n`);
    const cfg = parseConfig(base, {
      DFS_SOURCE_PASSWORD_FILE: pw,
      DFS_TARGET_URL_FILE: url,
      DFS_CONTROL_TOKEN_FILE: pw,
    });
    assert.equal(cfg.source.endpoint.password, SECRET);
    assert.equal(cfg.target?.endpoint.password, SECRET);
    assert.equal(cfg.target?.endpoint.host, "t.internal");
    assert.equal(cfg.control.token, SECRET);
    const missing = join(dir, "missing");
    const p = problems(base, {
      DFS_NATS_PASSWORD_FILE: missing,
      DFS_CONTROL_TOKEN: "x",
      DFS_CONTROL_TOKEN_FILE: pw,
    });
    assert.ok(
      p.includes(`DFS_NATS_PASSWORD_FILE: cannot read ${missing} (no such file) (nats.password)`),
      p.join("\n"),
    );
    assert.ok(
      p.includes("DFS_CONTROL_TOKEN and DFS_CONTROL_TOKEN_FILE are both set; set one (control.token)"),
      p.join("\n"),
    );
    // A value read from a file is reported under the _FILE variable's name.
    const bad = file("badurl", `pg://u:${SECRET}@h\n`);
    const r = problems(base, { DFS_TARGET_URL_FILE: bad });
    assert.ok(
      r.some((x) => x.startsWith("DFS_TARGET_URL_FILE (target.url): must start with mysql://")),
      r.join("\n"),
    );
  });

  test("envSecret: plain, file, neither; an unreadable file", () => {
    const pw = file("pw2", `${SECRET}\n\n`);
    assert.equal(envSecret({ X: ` ${SECRET} ` }, "X"), SECRET);
    assert.equal(envSecret({ X_FILE: pw }, "X"), `${SECRET}\n`, "only the last newline goes");
    assert.equal(envSecret({}, "X"), undefined);
    assert.equal(envSecret({ X: "", X_FILE: "" }, "X"), undefined);
    const locked = file("locked", "x");
    chmodSync(locked, 0o000);
    if (process.getuid?.() !== 0)
      assert.throws(() => envSecret({ X_FILE: locked }, "X"), /X_FILE: cannot read .*permission denied/);
    assert.throws(() => envSecret({ X_FILE: dir }, "X"), /X_FILE: cannot read .* \(is a directory\)/);
  });

  test("a secret key in YAML may be { file: path }", () => {
    const pw = file("pw3", `${SECRET}\n`);
    const cfg = parseConfig({
      ...base,
      nats: { user: "u", password: { file: pw } },
      control: { token: { file: pw } },
    });
    assert.equal(cfg.nats.password, SECRET);
    assert.equal(cfg.control.token, SECRET);
    const p = problems({
      ...base,
      nats: { token: { file: join(dir, "none") } },
      control: { token: { file: file("empty", "\n") } },
    });
    assert.ok(
      p.some((x) => /nats\.token: cannot read .*none \(no such file\)/.test(x)),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => /control\.token: the file .*empty is empty/.test(x)),
      p.join("\n"),
    );
  });
});

describe("NATS authentication and TLS", () => {
  test("one method at a time; a password needs its user; a seed must look like one", () => {
    const p = problems({
      ...base,
      nats: { token: SECRET, user: "u", nkeySeed: "not-a-seed", password: SECRET },
    });
    assert.ok(
      p.some((x) => x.startsWith("f.yaml: nats.user: only one of nats.token")),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("f.yaml: nats.nkeySeed: must be a user nkey seed")),
      p.join("\n"),
    );
    const q = problems({ ...base, nats: { password: SECRET, tls: { cert: CERT } } });
    assert.ok(q.includes("f.yaml: nats.user: is required with nats.password"), q.join("\n"));
    assert.ok(
      q.some((x) => x.startsWith("f.yaml: nats.tls.key: is required with a client certificate")),
      q.join("\n"),
    );
    const cfg = parseConfig({ ...base, nats: { url: "tls://n:4222", nkeySeed: SEED, tls: { ca: CA } } });
    assert.equal(cfg.nats.nkeySeed, SEED);
    assert.deepEqual(cfg.nats.tls, { ca: CA });
  });
});

describe("servers: bind address and TLS", () => {
  test("loopback without TLS, every address with it, unless the config names one", () => {
    const plain = parseConfig(base);
    assert.equal(plain.control.host, "127.0.0.1");
    assert.equal(plain.monitor.http.host, "127.0.0.1");
    assert.equal(plain.control.clientTls, undefined);
    const tls = { cert: CERT, key: KEY };
    const secured = parseConfig({ ...base, control: { tls }, monitor: { http: { tls } } });
    assert.equal(secured.control.host, "0.0.0.0");
    assert.equal(secured.monitor.http.host, "0.0.0.0");
    assert.deepEqual(secured.control.tls, { ...tls, requireClientCert: false });
    assert.deepEqual(secured.control.clientTls, {}, "clients use TLS with the system's CAs");
    const named = parseConfig(base, { DFS_CONTROL_HOST: "0.0.0.0", DFS_MONITOR_HOST: "10.1.2.3" });
    assert.deepEqual([named.control.host, named.monitor.http.host], ["0.0.0.0", "10.1.2.3"]);
    const mtls = parseConfig({
      ...base,
      control: {
        tls: { ...tls, ca: CA, requireClientCert: true },
        client: { cert: CERT, key: KEY, serverName: "dfs" },
      },
    });
    assert.deepEqual(mtls.control.clientTls, { ca: CA, cert: CERT, key: KEY, serverName: "dfs" });
    const p = problems({
      ...base,
      control: { host: "a b", tls: { cert: CERT } },
      monitor: { http: { tls: { ...tls, requireClientCert: true } } },
    });
    assert.ok(
      p.some((x) => x.startsWith("f.yaml: control.host: must be a host name or IP address")),
      p.join("\n"),
    );
    assert.ok(p.includes("f.yaml: control.tls.key: is required"), p.join("\n"));
    assert.ok(
      p.includes("f.yaml: monitor.http.tls.ca: is required when requireClientCert is true"),
      p.join("\n"),
    );
  });
});

test("describeConfig keeps hosts and ports and hides every secret", () => {
  const cfg = parseConfig({
    source: { id: "s", url: `mysql://repl:${SECRET}@db.internal:3306?ssl-mode=REQUIRED` },
    target: { url: "mysql://w@t.internal:3307", password: SECRET },
    nats: { url: "tls://n1.internal:4222", user: "dfs", password: SECRET },
    control: { token: SECRET },
  });
  const text = JSON.stringify(describeConfig(cfg));
  assert.ok(!text.includes(SECRET), text);
  assert.match(text, /"url":"mysql:\/\/repl:\*\*\*@db\.internal:3306\?ssl-mode=REQUIRED"/);
  assert.match(text, /t\.internal:3307/);
  assert.match(text, /"url":"tls:\/\/n1\.internal:4222"/);
  const seeded = parseConfig({ ...base, nats: { nkeySeed: SEED } });
  assert.ok(!JSON.stringify(describeConfig(seeded)).includes(SEED));
});
