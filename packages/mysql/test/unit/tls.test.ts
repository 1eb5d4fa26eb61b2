import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ConfigError } from "@dfs/common";
import { connectionOptions, mysqlUrlProblem, parseMysqlUrl } from "../../dist/index.js";
import { mysqlSslOption, resolveMysqlTls } from "../../dist/tls.js";

const dir = mkdtempSync(join(tmpdir(), "dfs-mysql-tls-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const pem = (name: string) => {
  const f = join(dir, name);
  writeFileSync(f, `-----BEGIN ${name}-----\n`);
  return f;
};
const CA = pem("ca");
const CERT = pem("cert");
const KEY = pem("key");
const url = (params: string) => `mysql://repl:pw@db.example:3306/app?${params}`;

test("ssl-* URL parameters become the endpoint's TLS, with MySQL's client defaults", () => {
  const ca = encodeURIComponent(CA);
  assert.deepEqual(parseMysqlUrl(url(`ssl-mode=VERIFY_IDENTITY&ssl-ca=${ca}`)).tls, {
    mode: "VERIFY_IDENTITY",
    ca: CA,
  });
  assert.deepEqual(parseMysqlUrl(url("ssl-mode=required")).tls, { mode: "REQUIRED" }, "modes in any case");
  assert.deepEqual(
    parseMysqlUrl(url(`ssl-ca=${ca}`)).tls,
    { mode: "VERIFY_CA", ca: CA },
    "a CA means VERIFY_CA",
  );
  assert.deepEqual(parseMysqlUrl(url(`ssl-cert=${CERT}&ssl-key=${KEY}`)).tls, {
    mode: "REQUIRED",
    cert: CERT,
    key: KEY,
  });
  assert.equal(parseMysqlUrl(url("ssl-mode=DISABLED")).tls, undefined);
  assert.equal(parseMysqlUrl("mysql://repl@db").tls, undefined, "no parameters: plaintext as before");
  const e = parseMysqlUrl(url("ssl-mode=REQUIRED"));
  assert.deepEqual(
    [e.host, e.port, e.user, e.password, e.database],
    ["db.example", 3306, "repl", "pw", "app"],
  );
});

test("bad parameters are named, and the password never shown", () => {
  const cases: [string, RegExp][] = [
    ["ssl=1", /unknown query parameter "ssl" \(allowed: ssl-mode, ssl-ca, ssl-cert, ssl-key/],
    ["sslmode=require", /unknown query parameter "sslmode"/],
    [
      "ssl-mode=PREFERRED",
      /ssl-mode must be one of DISABLED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY \(got "PREFERRED"\)/,
    ],
    ["ssl-mode=REQUIRED&ssl-mode=DISABLED", /ssl-mode twice/],
    [`ssl-cert=${CERT}`, /ssl-cert and ssl-key go together/],
    [`ssl-mode=DISABLED&ssl-ca=${CA}`, /DISABLED but TLS files are given/],
    ["ssl-ca=", /ssl-ca is empty/],
  ];
  for (const [params, re] of cases) {
    const problem = mysqlUrlProblem(url(params));
    assert.ok(problem, params);
    assert.match(problem, re);
    assert.ok(!problem.includes("pw@"), problem);
    assert.throws(
      () => parseMysqlUrl(url(params)),
      (err: Error) => err instanceof ConfigError && !err.message.includes(":pw@"),
    );
  }
});

test("resolveMysqlTls names config keys when asked", () => {
  const r = resolveMysqlTls({ cert: CERT }, { mode: "mode", ca: "ca", cert: "cert", key: "key" });
  assert.deepEqual(r, {
    ok: false,
    problem: "cert and key go together (a client certificate needs its key)",
  });
});

test("mysql2's ssl option per mode: what is checked, and the files' contents", () => {
  assert.deepEqual(mysqlSslOption({ mode: "REQUIRED" }), {
    rejectUnauthorized: false,
    verifyIdentity: false,
  });
  const ca = mysqlSslOption({ mode: "VERIFY_CA", ca: CA });
  assert.deepEqual(
    [ca.rejectUnauthorized, ca.verifyIdentity, String(ca.ca)],
    [true, false, "-----BEGIN ca-----\n"],
  );
  const id = mysqlSslOption({ mode: "VERIFY_IDENTITY", cert: CERT, key: KEY });
  assert.deepEqual(
    [id.rejectUnauthorized, id.verifyIdentity, String(id.cert), String(id.key)],
    [true, true, "-----BEGIN cert-----\n", "-----BEGIN key-----\n"],
  );
  assert.throws(
    () => mysqlSslOption({ mode: "VERIFY_CA", ca: join(dir, "missing.pem") }),
    (err: Error) =>
      err instanceof ConfigError && /MySQL TLS CA file .*missing\.pem \(ENOENT\)/.test(err.message),
  );
});

test("connectionOptions carries ssl for every connection of a TLS endpoint (zongji's too)", () => {
  const plain = connectionOptions(parseMysqlUrl("mysql://u:p@h:1"));
  assert.equal("ssl" in plain, false);
  const tls = connectionOptions(parseMysqlUrl(`mysql://u:p@h:1?ssl-mode=VERIFY_IDENTITY&ssl-ca=${CA}`));
  assert.equal(tls.ssl?.verifyIdentity, true);
  assert.equal(String(tls.ssl?.ca), "-----BEGIN ca-----\n");
});
