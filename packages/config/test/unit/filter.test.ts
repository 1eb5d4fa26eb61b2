// TableFilter: include/exclude rules of databases, tables and columns (no servers).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type FilterRules, TableFilter } from "../../dist/filter.js";

describe("TableFilter", () => {
  const filter = (rules: {
    include?: Partial<FilterRules["include"]>;
    exclude?: Partial<FilterRules["exclude"]>;
  }) =>
    new TableFilter({
      include: { databases: [], tables: [], ...rules.include },
      exclude: { databases: [], tables: [], columns: [], ...rules.exclude },
    });

  test("globs: * any run, ? one character, everything else literal", () => {
    const f = filter({
      include: { databases: ["app_*", "shop?"], tables: ["d.t+x", "x.`a.b`", "`my.db`.t?"] },
    });
    assert.ok(f.includesDatabase("app_1") && f.includesDatabase("app_") && !f.includesDatabase("app"));
    assert.ok(f.includesDatabase("shop1") && !f.includesDatabase("shop12") && !f.includesDatabase("shop"));
    assert.ok(f.includesTable("app_9", "anything") && !f.includesTable("apps", "t"));
    assert.ok(f.includesTable("d", "t+x") && !f.includesTable("d", "ttx"), "+ is literal");
    assert.ok(f.includesTable("x", "a.b") && !f.includesTable("x", "aXb"), ". is literal");
    assert.ok(!f.includesTable("x.a", "b"), "a quoted part is one name: x.`a.b` is not `x.a`.b");
    assert.ok(f.includesTable("my.db", "t1") && f.includesDatabase("my.db") && !f.includesDatabase("my"));
  });

  test("no include rules: every database and table except the system ones", () => {
    const f = filter({});
    assert.ok(f.includesDatabase("anything") && f.includesTable("any", "table"));
    for (const db of ["mysql", "information_schema", "performance_schema", "sys", "MySQL"]) {
      assert.ok(!f.includesDatabase(db) && !f.includesTable(db, "user"), db);
    }
  });

  test("system databases stay excluded even when included by name or glob", () => {
    const f = filter({ include: { databases: ["mysql", "*"], tables: ["sys.*"] } });
    assert.ok(
      !f.includesDatabase("mysql") && !f.includesTable("mysql", "user") && !f.includesTable("sys", "x"),
    );
    assert.ok(f.includesTable("shop", "orders"));
  });

  test("exclude wins over include", () => {
    const f = filter({
      include: { databases: ["shop", "hr"], tables: ["crm.customers"] },
      exclude: { databases: ["hr"], tables: ["shop.secret*", "crm.customers"] },
    });
    assert.ok(
      f.includesTable("shop", "orders") &&
        !f.includesTable("shop", "secret_x") &&
        !f.includesTable("shop", "secret"),
    );
    assert.ok(!f.includesDatabase("hr") && !f.includesTable("hr", "people"));
    assert.ok(!f.includesTable("crm", "customers"));
  });

  test("include.tables makes its databases included, and only those tables", () => {
    const f = filter({ include: { tables: ["shop.orders*"] } });
    assert.ok(f.includesDatabase("shop") && !f.includesDatabase("other"));
    assert.ok(f.includesTable("shop", "orders_2024") && !f.includesTable("shop", "users"));
  });

  test("column exclusion matches db.table.column globs", () => {
    const f = filter({ exclude: { columns: ["*.users.password", "shop.cards.c?v"] } });
    assert.ok(f.excludesColumn("a", "users", "password") && !f.excludesColumn("a", "users", "name"));
    assert.ok(f.excludesColumn("shop", "cards", "cvv") && !f.excludesColumn("shop", "cards", "pan"));
    assert.ok(!filter({}).excludesColumn("a", "users", "password"));
  });
});
