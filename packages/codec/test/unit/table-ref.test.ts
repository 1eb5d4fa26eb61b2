import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "@dfs/common";
import {
  formatTableRef,
  fromTableKey,
  parseTableRef,
  sameTable,
  splitQualified,
  tableKey,
} from "../../dist/table-ref.js";

const ODD = [
  { db: "shop", table: "orders" },
  { db: "my.db", table: "t" },
  { db: "a`b", table: "c.d`e" },
  { db: "dfs.ü`x", table: "Größe.t" },
  { db: "with space", table: "日本" },
  { db: "x", table: "``" },
];

test("formatTableRef and parseTableRef are inverse for names with dots, backticks and any letters", () => {
  for (const ref of ODD) {
    const text = formatTableRef(ref);
    assert.deepEqual(parseTableRef(text), ref, text);
  }
  assert.equal(formatTableRef({ db: "shop", table: "orders" }), "shop.orders");
  assert.equal(formatTableRef({ db: "my.db", table: "t" }), "`my.db`.t");
  assert.equal(formatTableRef({ db: "a`b", table: "c" }), "`a``b`.c");
});

test("table keys tell every pair apart, where db.table strings collide", () => {
  const a = { db: "a.b", table: "c" };
  const b = { db: "a", table: "b.c" };
  assert.equal(`${a.db}.${a.table}`, `${b.db}.${b.table}`, "the string form is ambiguous");
  assert.notEqual(tableKey(a), tableKey(b));
  assert.deepEqual(fromTableKey(tableKey(a)), a);
  assert.ok(sameTable(a, { db: "a.b", table: "c" }));
  assert.ok(!sameTable(a, b));
});

test("parseTableRef names what is wrong", () => {
  for (const bad of ["orders", "a.b.c", "`a.b", ".t", "db.", "a`b.c"]) {
    assert.throws(
      () => parseTableRef(bad),
      (e: unknown) => e instanceof ConfigError && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
});

test("splitQualified splits only outside backticks", () => {
  assert.deepEqual(splitQualified("a.b.c"), ["a", "b", "c"]);
  assert.deepEqual(splitQualified("`a.b`.c"), ["a.b", "c"]);
  assert.deepEqual(splitQualified("`a``b`"), ["a`b"]);
  assert.equal(splitQualified("`a"), null);
  assert.equal(splitQualified("a..b"), null);
});
