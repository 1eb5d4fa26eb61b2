import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ConfigError } from "@dfs/common";
import { natsConnectionOptions } from "../../dist/connect.js";

const SEED = "SUAITH3ZE4IAGWKAFIONCOUAXTG5IVGJ5IBCZM7LM42Q4NDMPNV2SEVE5I";

test("one authenticator per method, TLS from the tls section or a tls:// URL", () => {
  const plain = natsConnectionOptions({ url: "nats://a:4222, b:4223", name: "n" });
  assert.deepEqual(plain.servers, ["nats://a:4222", "b:4223"]);
  assert.equal(plain.authenticator, undefined);
  assert.equal(plain.tls, undefined);
  const tlsUrl = natsConnectionOptions({ url: "tls://a:4222", name: "n", token: "t" });
  assert.deepEqual(tlsUrl.tls, {}, "tls:// requires TLS, checked against the system's CAs");
  assert.equal(typeof tlsUrl.authenticator, "function");
  const files = natsConnectionOptions({
    url: "a:4222",
    name: "n",
    user: "u",
    password: "p",
    tls: { ca: "/ca", cert: "/c", key: "/k" },
  });
  assert.deepEqual(files.tls, { caFile: "/ca", certFile: "/c", keyFile: "/k" });
  const auth = (o: Partial<Parameters<typeof natsConnectionOptions>[0]>) =>
    (natsConnectionOptions({ url: "a", name: "n", ...o }).authenticator as (nonce?: string) => unknown)(
      "nonce",
    );
  assert.deepEqual(auth({ user: "u", password: "p" }), { user: "u", pass: "p" });
  assert.deepEqual(auth({ token: "t" }), { auth_token: "t" });
  const nkey = auth({ nkeySeed: SEED }) as { nkey: string; sig: string };
  assert.match(nkey.nkey, /^U[A-Z2-7]{55}$/);
  assert.ok(nkey.sig.length > 0, "the nonce is signed with the seed");
  assert.throws(() => natsConnectionOptions({ url: "http://a", name: "n" }), ConfigError);
});

test("a creds file is read when authenticating, so a renewed one is used", () => {
  const dir = mkdtempSync(join(tmpdir(), "dfs-creds-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "user.creds");
  const creds = (jwt: string) =>
    `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${SEED}\n------END USER NKEY SEED------\n`;
  writeFileSync(file, creds("eyJhbGciOiJlZDI1NTE5In0.first.sig"));
  const auth = natsConnectionOptions({ url: "a", name: "n", credsFile: file }).authenticator as (
    n?: string,
  ) => {
    jwt: string;
    nkey: string;
    sig: string;
  };
  assert.equal(auth("nonce").jwt, "eyJhbGciOiJlZDI1NTE5In0.first.sig");
  writeFileSync(file, creds("eyJhbGciOiJlZDI1NTE5In0.second.sig"));
  assert.equal(auth("nonce").jwt, "eyJhbGciOiJlZDI1NTE5In0.second.sig");
});
