import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { DecodedChange, TableRef } from "@dfs/codec";
import { pipelineSchema } from "@dfs/config";
import type { ColumnInfo, ForeignKey, TableDescription } from "@dfs/mysql";
import { compileExpr, compileMappings, type Hook, mapChange, type Schemas } from "../../dist/index.js";

const kinds = (numeric: string[], other: string[]) => ({
  has: (c: string) => numeric.includes(c) || other.includes(c),
  numeric: (c: string) => numeric.includes(c),
});

describe("expressions", () => {
  const k = kinds(["a", "b", "big"], ["s", "d", "n"]);
  const run = (e: string, row: Record<string, unknown>) => {
    const v = compileExpr(e, k).run(row as never);
    return v === null ? null : typeof v === "object" && !(v instanceof Uint8Array) ? v.toFixed() : v;
  };

  test("arithmetic is exact for BIGINT UNSIGNED and DECIMAL values", () => {
    assert.equal(run("big + 1", { big: 18446744073709551615n }), "18446744073709551616");
    assert.equal(run("a * b", { a: "12345678901234567890.12", b: "3" }), "37037036703703703670.36");
    assert.equal(String(run("a / 3", { a: "1" })).slice(0, 12), "0.3333333333");
    assert.equal(run("round(a, 1)", { a: "2.25" }), "2.3");
    assert.equal(run("a - b", { a: 0.1, b: 0.3 }), "-0.2");
  });

  test("temporal values keep their microseconds; date parts are numbers", () => {
    assert.equal(run("d", { d: "2024-02-29 23:59:59.999999" }), "2024-02-29 23:59:59.999999");
    assert.equal(run("date(d)", { d: "2024-02-29 23:59:59.999999" }), "2024-02-29");
    assert.equal(run("month(d) + 1", { d: "2024-02-29 23:59:59.999999" }), "3");
  });

  test("NULL spreads as in SQL, and a NULL condition is not true", () => {
    assert.equal(run("a + 1", { a: null }), null);
    assert.equal(run("concat(s, n)", { s: "x", n: null }), null);
    assert.equal(run("a > 1 ? 'y' : 'n'", { a: null }), "n");
    assert.equal(run("coalesce(n, s, 'z')", { n: null, s: "x" }), "x");
    assert.equal(run("a / 0", { a: 5 }), null);
  });

  test("comparisons are numeric for numbers and by text otherwise; logic short-circuits", () => {
    assert.equal(run("a > 9", { a: "10.5" }), true);
    assert.equal(run("s < 'b'", { s: "abc" }), true);
    assert.equal(run("a == 2 && s != 'x'", { a: 2n, s: "y" }), true);
    assert.equal(run("!(a >= 3) || s == 'q'", { a: 3, s: "q" }), true);
  });

  test("unknown columns, functions and syntax are named when compiled", () => {
    assert.throws(() => compileExpr("nope + 1", k), /unknown source column "nope"/);
    assert.throws(() => compileExpr("frob(a)", k), /unknown function "frob"/);
    assert.throws(() => compileExpr("a +", k), /cannot parse/);
    assert.throws(() => compileExpr("a.b", k), /MemberExpression is not supported/);
    assert.throws(() => compileExpr("a = 1", k), /cannot parse|not supported/);
  });

  test("a value that does not fit an operator is an error naming the expression", () => {
    assert.throws(
      () => compileExpr("s * 2", k).run({ s: "abc" }),
      /"s \* 2": "\*" needs a number, got "abc"/,
    );
  });
});

// --- compile and map ---

function col(name: string, dataType: string, o: Partial<ColumnInfo> = {}): ColumnInfo {
  return {
    name,
    dataType,
    columnType: dataType,
    charset: null,
    nullable: true,
    generated: false,
    autoIncrement: false,
    optional: true,
    ...o,
  };
}

function table(
  db: string,
  name: string,
  columns: ColumnInfo[],
  pk: string[],
  unique: string[][] = [],
): TableDescription {
  return {
    ref: { db, table: name },
    columns,
    primaryKey: pk,
    uniqueKeys: unique.map((c, i) => ({ name: `u${i}`, columns: c })),
    identity: pk.length > 0 ? { kind: "primary", columns: pk } : { kind: "none", columns: [] },
    estimatedRows: 0,
  };
}

const SOURCE = [
  table(
    "s",
    "customers",
    [col("id", "int"), col("first", "varchar"), col("last", "varchar"), col("status", "varchar")],
    ["id"],
  ),
  table(
    "s",
    "orders",
    [col("id", "bigint"), col("customer_id", "int"), col("total", "decimal"), col("secret", "varchar")],
    ["id"],
  ),
  table(
    "s",
    "items",
    [col("id", "int"), col("order_id", "bigint"), col("qty", "int"), col("price", "decimal")],
    ["id"],
  ),
];
const TARGET = [
  table(
    "t",
    "clients",
    [
      col("cid", "bigint", { autoIncrement: true, nullable: false }),
      col("name", "varchar"),
      col("src", "varchar"),
    ],
    ["cid"],
  ),
  table(
    "t",
    "sales",
    [col("sid", "bigint", { autoIncrement: true }), col("client", "bigint"), col("total", "decimal")],
    ["sid"],
  ),
  table(
    "t",
    "lines",
    [col("id", "int", { optional: false }), col("sale", "bigint"), col("qty", "int"), col("sum", "decimal")],
    ["id"],
  ),
];
const FKS: ForeignKey[] = [
  {
    name: "fk",
    child: { db: "s", table: "orders" },
    columns: ["customer_id"],
    parent: { db: "s", table: "customers" },
    parentColumns: ["id"],
  },
];

function schemas(hooks: Map<string, Hook | Error> = new Map()): Schemas {
  const find = (list: TableDescription[]) => (r: TableRef) =>
    list.find((t) => t.ref.db === r.db && t.ref.table === r.table);
  return { source: find(SOURCE), target: find(TARGET), sourceForeignKeys: FKS, targetForeignKeys: [], hooks };
}

const GOOD = {
  relationships: [{ child: "s.items(order_id)", parent: "s.orders(id)" }],
  mappings: [
    {
      source: "s.customers",
      target: "t.clients",
      key: "generated",
      columns: { name: { expr: "concat(first, ' ', last)" }, src: { const: "shop" } },
      filter: "status != 'test'",
    },
    {
      source: "s.orders",
      target: "t.sales",
      key: "generated",
      columns: { client: "customer_id" },
      drop: ["secret"],
    },
    { source: "s.items", target: "t.lines", columns: { sale: "order_id", sum: { expr: "qty * price" } } },
  ],
};

function change(
  ref: TableRef,
  op: "c" | "u" | "d",
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
) {
  return { ref, op, before, after, rowIndex: 0 } as unknown as DecodedChange;
}

describe("mappings", () => {
  test("a valid pipeline compiles; foreign keys to generated-key parents are found, discovered and declared", () => {
    const r = compileMappings(pipelineSchema.parse(GOOD), schemas());
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    const sales = r.pipeline.plans[1]!;
    assert.equal(sales.columns.find((c) => c.target === "client")?.parent?.target.table, "clients");
    assert.deepEqual(sales.columns.map((c) => c.target).sort(), ["client", "total"]);
    const lines = r.pipeline.plans[2]!;
    assert.equal(lines.columns.find((c) => c.target === "sale")?.parent?.target.table, "sales");
    assert.equal(lines.columns.find((c) => c.target === "id")?.sourceColumn, "id");
  });

  test("every problem is reported at once, each with its config path", () => {
    const bad = pipelineSchema.parse({
      mappings: [
        { source: "s.nope", target: "t.clients" },
        {
          source: "s.customers",
          target: "t.clients",
          key: "generated",
          columns: { cid: "id", name: "missing", ghost: "first" },
          filter: "frob(1)",
        },
        { source: "s.items", target: "t.lines", key: "columns(qty)", columns: { sum: { expr: "qty *" } } },
        { source: "s.orders", target: "t.sales", key: "generated", hooks: "./h.js" },
      ],
    });
    const r = compileMappings(
      bad,
      schemas(
        new Map([["./h.js", new Error("hooks module ./h.js does not export a function map(row, context)")]]),
      ),
    );
    assert.ok(!r.ok);
    const got = r.problems.map((p) => `${p.path}: ${p.message}`);
    const expect = [
      /^pipeline\.mappings\[0\]\.source: table s\.nope does not exist on the source$/,
      /^pipeline\.mappings\[1\]\.columns\.cid: "cid" is the key the target generates/,
      /^pipeline\.mappings\[1\]\.columns\.name: source column "missing" does not exist/,
      /^pipeline\.mappings\[1\]\.columns\.ghost: target column "ghost" does not exist/,
      /^pipeline\.mappings\[1\]\.filter: unknown function "frob"/,
      /^pipeline\.mappings\[2\]\.key: \(qty\) is not a primary or unique key of t\.lines$/,
      /^pipeline\.mappings\[2\]\.columns\.sum: cannot parse/,
      /^pipeline\.mappings\[3\]\.hooks: hooks module \.\/h\.js does not export/,
    ];
    for (const e of expect)
      assert.ok(
        got.some((g) => e.test(g)),
        `${e} in\n${got.join("\n")}`,
      );
  });

  test("the config schema names a bad key form and a bad relationship", () => {
    const r = pipelineSchema.safeParse({
      mappings: [{ source: "nodot", target: "t.x", key: "uuid" }],
      relationships: [{ child: "s.items", parent: "s.orders(id)" }],
    });
    assert.ok(!r.success);
    const msgs = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
    assert.match(msgs, /mappings\.0\.source: must name a source table as "db\.table"/);
    assert.match(msgs, /mappings\.0\.key: must be "source", "generated" or "columns\(a, b, \.\.\.\)"/);
    assert.match(msgs, /relationships\.0\.child: must be "db\.table\(column, \.\.\.\)"/);
  });

  test("rows moving into and out of a filter become writes and removals; key changes become removal + write", () => {
    const r = compileMappings(pipelineSchema.parse(GOOD), schemas());
    assert.ok(r.ok);
    const cust = { db: "s", table: "customers" };
    const row = (status: string) => ({ id: 1, first: "A", last: "B", status });
    const kinds = (ops: ReturnType<typeof mapChange>) => ops.map((o) => o.kind).join(",");
    assert.equal(kinds(mapChange(r.pipeline, change(cust, "u", row("test"), row("ok")))), "write");
    assert.equal(kinds(mapChange(r.pipeline, change(cust, "u", row("ok"), row("test")))), "remove");
    assert.equal(kinds(mapChange(r.pipeline, change(cust, "u", row("test"), row("test")))), "");
    const w = mapChange(r.pipeline, change(cust, "c", null, row("ok")))[0]!;
    assert.deepEqual(w.row.values, { name: "A B", src: "shop" });
    const items = { db: "s", table: "items" };
    const it = (id: number) => ({ id, order_id: 18446744073709551615n, qty: 3, price: "2.50" });
    const moved = mapChange(r.pipeline, change(items, "u", it(1), it(2)));
    assert.equal(kinds(moved), "remove,write");
    assert.deepEqual(moved[1]!.row.values.sum, "7.5");
    assert.deepEqual(
      moved[1]!.row.refs.map((x) => [x.column, x.key]),
      [["sale", '["18446744073709551615"]']],
    );
    // A generated-key parent whose source key changes: one write that moves its key map.
    const orders = { db: "s", table: "orders" };
    const o = mapChange(
      r.pipeline,
      change(orders, "u", { id: 5, customer_id: 1, total: "1" }, { id: 6, customer_id: 1, total: "1" }),
    );
    assert.deepEqual(
      o.map((x) => [x.kind, x.key, x.kind === "write" ? x.previousKey : null]),
      [["write", '["6"]', '["5"]']],
    );
  });

  test("a hook may change or drop a row; one that throws names its module", () => {
    const hook: Hook = (row, ctx) => {
      if (ctx.sourceRow.status === "boom") throw new Error("bad row");
      if (ctx.sourceRow.status === "drop") return null;
      return { ...row, name: String(row.name).toUpperCase() };
    };
    const cfg = pipelineSchema.parse({ mappings: [{ ...GOOD.mappings[0]!, hooks: "./h.ts" }] });
    const r = compileMappings(cfg, schemas(new Map([["./h.ts", hook]])));
    assert.ok(r.ok);
    const cust = { db: "s", table: "customers" };
    const row = (status: string) => ({ id: 1, first: "a", last: "b", status });
    assert.equal(mapChange(r.pipeline, change(cust, "c", null, row("ok")))[0]!.row.values.name, "A B");
    assert.equal(mapChange(r.pipeline, change(cust, "c", null, row("drop"))).length, 0);
    assert.throws(
      () => mapChange(r.pipeline, change(cust, "c", null, row("boom"))),
      /hooks module \.\/h\.ts map\(\) threw for pipeline\.mappings\[0\]: bad row/,
    );
  });
});
