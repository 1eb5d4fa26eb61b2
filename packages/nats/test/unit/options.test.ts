import assert from "node:assert/strict";
import { test } from "node:test";
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
