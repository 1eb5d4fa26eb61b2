// relmgr on real servers: the graph (discovered FOREIGN KEYs and declared relationships), the
// groups and the plan in NATS KV, a new plan after a schema change on the stream, and the control
// plane's Graph, Groups, LookupKey and Orphans.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { connectControl } from "@dfs/control";
import { connectNats, readPlan } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import mysql from "mysql2/promise";
import { startRelmgr } from "../../dist/index.js";

test("relmgr: graph, groups and plan; a new table with a foreign key joins its parent's group; key-map look-up", async () => {
  await ensureStack();
  const id = uniqueId("rel");
  const db = `${id}_src`;
  const src = await sourceConnection();
  const dst = await mysql.createConnection({ host: "127.0.0.1", port: 13307, user: "root" });
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  const token = "relmgr-test-token";
  const cfg = testConfig(id, db, {
    target: { url: urls.targetUrl },
    control: { token },
    relmgr: { http: { port: 0 }, grpc: { port: 0 } },
    pipeline: {
      relationships: [{ child: `${db}.items(order_id)`, parent: `${db}.orders(id)` }],
      mappings: [{ source: `${db}.customers`, target: `${db}_t.clients` }],
    },
  });
  const stops: (() => Promise<void>)[] = [];
  try {
    await src.query(`CREATE DATABASE ${db}`);
    await src.query(`CREATE TABLE ${db}.customers (id INT PRIMARY KEY)`);
    await src.query(
      `CREATE TABLE ${db}.orders (id INT PRIMARY KEY, customer_id INT NOT NULL, FOREIGN KEY (customer_id) REFERENCES ${db}.customers (id))`,
    );
    await src.query(`CREATE TABLE ${db}.items (id INT PRIMARY KEY, order_id INT NOT NULL)`);
    await src.query(`CREATE TABLE ${db}.lonely (id INT PRIMARY KEY)`);
    const capture = await startCapture(cfg);
    stops.push(() => capture.stop());
    const relmgr = await startRelmgr(cfg);
    stops.push(() => relmgr.stop());
    const ctl = connectControl("relmgr", `127.0.0.1:${relmgr.endpoints.grpc}`, { token });
    stops.push(async () => ctl.close());

    const graph = await ctl.graph();
    assert.deepEqual(graph.tables, [`${db}.customers`, `${db}.lonely`, `${db}.orders`, `${db}.items`]);
    assert.deepEqual(
      graph.relationships.map(
        (r) => `${r.child}(${r.columns}) -> ${r.parent}(${r.parentColumns})${r.declared ? " declared" : ""}`,
      ),
      [
        `${db}.orders(customer_id) -> ${db}.customers(id)`,
        `${db}.items(order_id) -> ${db}.orders(id) declared`,
      ],
    );
    const groups = await ctl.groups();
    assert.deepEqual(
      groups.groups.map((g) => [g.name, g.tables.join(",")]),
      [
        [`${db}_customers`, `${db}.customers,${db}.orders,${db}.items`],
        [`${db}_lonely`, `${db}.lonely`],
      ],
    );
    const kv = await readPlan(nc, id);
    assert.equal(BigInt(kv!.revision), groups.revision, "the plan in KV is the one served");

    // A schema change on the stream: the new table references customers and joins that group.
    await src.query(
      `CREATE TABLE ${db}.notes (id INT PRIMARY KEY, customer_id INT, FOREIGN KEY (customer_id) REFERENCES ${db}.customers (id))`,
    );
    await waitFor(async () => (await readPlan(nc, id))!.revision > kv!.revision, {
      timeoutMs: 20_000,
      what: "a new plan after CREATE TABLE notes",
    });
    const after = await ctl.groups();
    assert.deepEqual(after.groups[0]!.tables, [
      `${db}.customers`,
      `${db}.notes`,
      `${db}.orders`,
      `${db}.items`,
    ]);
    assert.equal((await ctl.status()).details.replans, "1");

    // Key-map look-up (the DPU writes these entries; one is written here by hand).
    await dst.query("CREATE DATABASE IF NOT EXISTS `_dfs`");
    await dst.query(
      "CREATE TABLE IF NOT EXISTS `_dfs`.`_dfs_keymap` (target_table VARBINARY(256) NOT NULL, source_table VARBINARY(256) NOT NULL, source_key VARBINARY(2048) NOT NULL, target_key VARBINARY(255) NOT NULL, PRIMARY KEY (target_table, source_table, source_key))",
    );
    await dst.query("INSERT INTO `_dfs`.`_dfs_keymap` VALUES (?, ?, ?, ?)", [
      `${db}_t.clients`,
      `${db}.customers`,
      '["18446744073709551615"]',
      "42",
    ]);
    stops.push(async () => {
      await dst.query("DELETE FROM `_dfs`.`_dfs_keymap` WHERE target_table = ?", [`${db}_t.clients`]);
    });
    assert.deepEqual(
      await ctl.lookupKey({
        targetTable: `${db}_t.clients`,
        sourceTable: `${db}.customers`,
        sourceKey: ["18446744073709551615"],
      }),
      { found: true, targetKey: "42" },
    );
    assert.deepEqual(
      await ctl.lookupKey({
        targetTable: `${db}_t.clients`,
        sourceTable: `${db}.customers`,
        sourceKey: ["7"],
      }),
      { found: false, targetKey: "" },
    );
    assert.deepEqual((await ctl.orphans(10)).orphans, []);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await src.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc.close();
    await src.end();
    await dst.end();
  }
});
