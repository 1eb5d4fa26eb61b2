import assert from "node:assert/strict";
import { test } from "node:test";
import { parentsFirst, tableGroups } from "../../dist/index.js";

const t = (table: string) => ({ db: "s", table });
const names = (xs: { table: string }[]) => xs.map((x) => x.table).join(",");

test("parentsFirst puts every parent before its children and keeps the given order otherwise", () => {
  const tables = ["a_items", "b_other", "customers", "orders"].map(t);
  const edges = [
    { child: t("orders"), parent: t("customers") },
    { child: t("a_items"), parent: t("orders") },
    { child: t("a_items"), parent: t("a_items") }, // a self-reference is no constraint
  ];
  assert.equal(names(parentsFirst(tables, edges)), "b_other,customers,orders,a_items");
  // A cycle keeps its members in the given order (after the tables that are free) rather than looping.
  const cycle = [
    { child: t("x"), parent: t("y") },
    { child: t("y"), parent: t("x") },
  ];
  assert.equal(names(parentsFirst(["x", "y", "z"].map(t), cycle)), "z,x,y");
});

test("tableGroups are the connected components, with merge and split", () => {
  const tables = ["customers", "orders", "items", "logs", "audit"].map(t);
  const edges = [
    { child: t("orders"), parent: t("customers") },
    { child: t("items"), parent: t("orders") },
  ];
  const show = (gs: { table: string }[][]) => gs.map(names).join(" | ");
  assert.equal(show(tableGroups(tables, edges)), "customers,orders,items | logs | audit");
  assert.equal(
    show(tableGroups(tables, edges, { merge: [[t("logs"), t("audit")]] })),
    "customers,orders,items | logs,audit",
  );
  assert.equal(
    show(tableGroups(tables, edges, { split: [t("items")] })),
    "customers,orders | items | logs | audit",
  );
});
