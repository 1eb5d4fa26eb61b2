import assert from "node:assert/strict";
import { test } from "node:test";
import { derivePlan, type Graph, groupNameOf } from "../../dist/index.js";

const t = (q: string) => {
  const [db, table] = q.split(".");
  return { db: db!, table: table! };
};
const rel = (child: string, parent: string, declared = false) => ({
  child: t(child),
  columns: ["x"],
  parent: t(parent),
  parentColumns: ["id"],
  declared,
});

const graph: Graph = {
  tables: ["shop.customers", "shop.orders", "shop.items", "shop.logs", "crm.notes"].map(t),
  relationships: [rel("shop.orders", "shop.customers"), rel("shop.items", "shop.orders", true)],
};
const cfg = (groups: { name: string; tables: string[] }[] = [], split: string[] = []) => ({
  relmgr: { http: { port: 0 }, grpc: { port: 0 }, groups, split },
});

test("groups are the connected components, named after their first table", () => {
  const p = derivePlan(graph, cfg());
  assert.deepEqual(
    p.groups.map((g) => [g.name, g.tables.join(",")]),
    [
      ["shop_customers", "shop.customers,shop.orders,shop.items"],
      ["shop_logs", "shop.logs"],
      ["crm_notes", "crm.notes"],
    ],
  );
  assert.deepEqual(p.relationships, [
    "shop.orders(x) -> shop.customers(id)",
    "shop.items(x) -> shop.orders(id) [declared]",
  ]);
});

test("configured groups merge and name; split tables stand alone; names stay unique and valid", () => {
  const p = derivePlan(graph, cfg([{ name: "side", tables: ["shop.logs", "crm.notes"] }], ["shop.items"]));
  assert.deepEqual(
    p.groups.map((g) => [g.name, g.tables.join(",")]),
    [
      ["shop_customers", "shop.customers,shop.orders"],
      ["shop_items", "shop.items"],
      ["side", "shop.logs,crm.notes"],
    ],
  );
  assert.equal(groupNameOf({ db: "my.db", table: "t ä" }), "my_db_t__");
});
