import assert from "node:assert/strict";
import { test } from "node:test";
import type { ColumnInfo, TableDescription } from "@dfs/mysql";
import { mappingPlan, syncPlan, textFormOf } from "../../dist/plan.js";
import { keyString } from "../../dist/read.js";
import { keyIn, keyRange, rowHash } from "../../dist/sql.js";

const col = (
  name: string,
  columnType: string,
  charset: string | null = null,
  extra: Partial<ColumnInfo> = {},
): ColumnInfo => ({
  name,
  dataType: columnType.replace(/\(.*$/, "").replace(/ .*$/, ""),
  columnType,
  charset,
  nullable: true,
  generated: false,
  autoIncrement: false,
  optional: true,
  ...extra,
});

const table = (db: string, t: string, columns: ColumnInfo[], key: string[]): TableDescription => ({
  ref: { db, table: t },
  columns,
  primaryKey: key,
  uniqueKeys: [],
  identity: key.length ? { kind: "primary", columns: key } : { kind: "none", columns: [] },
  estimatedRows: 0,
});

test("key ranges: tuple order for composite keys, inclusive upper bound, open ends", () => {
  assert.deepEqual(keyRange(["a"], [1], [9]), { sql: "`a` > ? AND (`a` < ? OR `a` = ?)", params: [1, 9, 9] });
  assert.deepEqual(keyRange(["a", "b"], ["x", 2], null), {
    sql: "(`a` > ? OR (`a` = ? AND `b` > ?))",
    params: ["x", "x", 2],
  });
  assert.equal(keyRange(["a"], null, null).sql, "1=1");
  const upper = keyRange(["a", "b"], null, [5, 6]);
  assert.equal(upper.sql, "(`a` < ? OR (`a` = ? AND `b` < ?) OR (`a` = ? AND `b` = ?))");
  assert.deepEqual(upper.params, [5, 5, 6, 5, 6]);
  assert.deepEqual(keyIn(["id"], [[1], [2]]), { sql: "`id` IN (?, ?)", params: [1, 2] });
  assert.deepEqual(keyIn(["a", "b"], [[1, 2]]), { sql: "(`a` = ? AND `b` = ?)", params: [1, 2] });
  assert.equal(keyIn(["a"], []).sql, "1=0");
});

test("the row hash tells NULL from '' and quotes names; strings as bytes (no collation mix)", () => {
  const h = rowHash([
    { name: "id", form: "plain" },
    { name: "we`ird", form: "binary" },
    { name: "n", form: "utf8" },
  ]);
  assert.equal(
    h,
    "CRC32(CONCAT_WS('#', `id`, CAST(`we``ird` AS BINARY), CAST(CONVERT(`n` USING utf8mb4) AS BINARY), CONCAT(ISNULL(`id`), ISNULL(`we``ird`), ISNULL(`n`))))",
  );
});

test("key strings never confuse text with bytes or NULL", () => {
  assert.notEqual(keyString(["ab"]), keyString([Buffer.from("ab")]));
  assert.notEqual(keyString([null]), keyString([""]));
  assert.notEqual(keyString(["a", "b"]), keyString(["a\u0000sb"]));
});

test("comparable columns: same type, integers of any width, strings across charsets; others named", () => {
  assert.equal(textFormOf(col("a", "int(11)"), col("b", "bigint(20)")), "plain");
  assert.equal(textFormOf(col("a", "varchar(10)", "latin1"), col("b", "text", "utf8mb4")), "utf8");
  assert.equal(textFormOf(col("a", "varchar(10)", "utf8mb4"), col("b", "varchar(10)", "utf8mb4")), "binary");
  assert.match(String(textFormOf(col("a", "decimal(10,2)"), col("b", "decimal(12,4)"))), /print differently/);
});

test("sync plans: key columns first, generated and missing columns left out, keyless refused", () => {
  const src = table(
    "s",
    "t",
    [col("v", "int"), col("id", "int"), col("g", "int", null, { generated: true }), col("gone", "int")],
    ["id"],
  );
  const tgt = table(
    "d",
    "t",
    [col("id", "int"), col("v", "int"), col("g", "int", null, { generated: true })],
    ["id"],
  );
  const p = syncPlan(src, tgt, tgt.ref);
  assert.ok(p.ok);
  assert.deepEqual(
    p.plan.source.columns.map((c) => c.name),
    ["id", "v"],
  );
  const keyless = syncPlan(table("s", "k", [col("v", "int")], []), null, { db: "d", table: "k" });
  assert.ok(!keyless.ok);
  assert.match(keyless.reason, /no primary key/);
  const missing = syncPlan(src, null, tgt.ref);
  assert.ok(!missing.ok && missing.reason === "missing");
});

test("mapping plans: renames verified; generated keys, expressions, casts, filters and non-key targets refused", () => {
  const src = table("s", "c", [col("id", "int"), col("name", "varchar(9)", "utf8mb4")], ["id"]);
  const tgt = table("d", "k", [col("no", "int"), col("full", "varchar(9)", "utf8mb4")], ["no"]);
  const base = {
    path: "pipeline.mappings[0]",
    index: 0,
    source: src.ref,
    target: tgt.ref,
    key: "source" as const,
    keyColumns: ["no"],
    sourceKey: ["id"],
    uniqueKeys: [],
    columns: [
      { target: "no", value: () => null, sourceColumn: "id" },
      { target: "full", value: () => null, sourceColumn: "name" },
    ],
  };
  const ok = mappingPlan(base, src, tgt);
  assert.ok(ok.ok);
  assert.deepEqual(ok.plan.target.key, ["no"]);
  const why = (m: object) => {
    const r = mappingPlan({ ...base, ...m }, src, tgt);
    assert.ok(!r.ok);
    return r.reason;
  };
  assert.match(
    why({ key: "generated" }),
    /^pipeline\.mappings\[0\] cannot be verified: the target generates its keys/,
  );
  assert.match(
    why({ columns: [base.columns[0], { target: "full", value: () => null }] }),
    /column full is a constant or an expression/,
  );
  assert.match(
    why({
      columns: [base.columns[0], { target: "full", value: () => null, sourceColumn: "name", cast: "string" }],
    }),
    /is cast \(string\)/,
  );
  assert.match(why({ filter: {} }), /has a filter/);
  assert.match(why({ keyColumns: ["full"] }), /target key \(full\) is not the source key \(id\) renamed/);
});
