// The TLS stack's places, ports, URLs and nats-server config (no server started).
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveStackPaths, stackUrls } from "../../dist/paths.js";
import { natsConfig, tlsFiles } from "../../dist/tls.js";

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

test("the TLS stack has its own data dir and ports beside the plain one", () => {
  const unset = {
    DFS_STACK_DIR: undefined,
    DFS_STACK_TLS_SOURCE_PORT: undefined,
    DFS_STACK_TLS_NATS_PORT: undefined,
  };
  withEnv(unset, () => {
    const plain = resolveStackPaths({ root: "/r" });
    const tls = resolveStackPaths({ root: "/r", tls: true });
    assert.equal(plain.dir, "/r/.stack");
    assert.equal(tls.dir, "/r/.stack-tls");
    assert.equal(plain.components.source.tls, undefined);
    assert.equal(tls.components.nats.tls?.ca, "/r/.stack-tls/tls/ca.pem");
    assert.deepEqual(
      [tls.components.source.port, tls.components.target.port, tls.components.nats.port],
      [13316, 13317, 14232],
    );
    assert.equal(plain.components.source.port, 13306);
  });
  withEnv({ DFS_STACK_DIR: "/data/st", DFS_STACK_TLS_SOURCE_PORT: "23316" }, () => {
    const tls = resolveStackPaths({ tls: true });
    assert.equal(tls.dir, "/data/st-tls");
    assert.equal(tls.components.source.port, 23316);
    const urls = stackUrls({ tls: true });
    assert.equal(
      urls.sourceUrl,
      "mysql://root@127.0.0.1:23316?ssl-mode=VERIFY_IDENTITY&ssl-ca=%2Fdata%2Fst-tls%2Ftls%2Fca.pem",
    );
    assert.equal(urls.natsUrl, "tls://127.0.0.1:14232");
    assert.equal(stackUrls().natsUrl, "nats://127.0.0.1:14222");
  });
});

test("nats-server's config requires TLS with client certificates and names both users", () => {
  const files = tlsFiles("/s");
  const conf = natsConfig(files, {
    host: "127.0.0.1",
    port: 14232,
    storeDir: "/s/nats",
    password: 'p"w',
    nkey: "UABC",
  });
  assert.match(conf, /^listen: "127\.0\.0\.1:14232"$/m);
  assert.match(conf, /^jetstream \{ store_dir: "\/s\/nats" \}$/m);
  assert.match(conf, /cert_file: "\/s\/tls\/server\.pem"/);
  assert.match(conf, /ca_file: "\/s\/tls\/ca\.pem"/);
  assert.match(conf, /verify: true/);
  assert.match(conf, /\{ user: "dfs", password: "p\\"w" \}/, "values are quoted");
  assert.match(conf, /\{ nkey: "UABC" \}/);
});
