// The pipeline's updates of rows with target-generated keys: several rows of one level become one
// UPDATE joined with their new values; anything a UNION of literals could retype keeps one UPDATE
// per row.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { TargetPlan } from "@dfs/mapping";
import { type UpdateRun, updateStatements } from "../../dist/pipeline/batch.js";
import type { Change } from "../../dist/sink.js";

const plan = { target: { db: "shop", table: "sales" }, keyColumns: ["sale_id"] } as unknown as TargetPlan;
const change = (n: number) => ({ seq: n, rowIndex: 0 }) as unknown as Change;

function run(keys: string[], values: Record<string, unknown>[]): UpdateRun {
  const columns = Object.keys(values[0]!);
  return {
    plan,
    columns,
    keys,
    rows: values.map((v) => ({ values: v, columns, refs: [] }) as never),
    changes: keys.map((_, i) => change(i + 1)),
  };
}

test("several rows with integer keys: one UPDATE joined with a derived table of their values", () => {
  const u = run(
    ["7", "12", "-3"],
    [
      { amount: "10.50", note: "it's" },
      { amount: "99999999999999999999.99", note: null },
      { amount: 3n, note: "x" },
    ],
  );
  const out = updateStatements(u, 0, 3);
  assert.equal(out.length, 1);
  assert.equal(
    out[0]!.sql,
    "UPDATE `shop`.`sales` AS t JOIN (SELECT 7 AS k,'10.50' AS c0,'it\\'s' AS c1 UNION ALL SELECT 12,'99999999999999999999.99',NULL UNION ALL SELECT -3,3,'x') AS v ON t.`sale_id` = v.k SET t.`amount` = v.c0, t.`note` = v.c1",
  );
  assert.deepEqual(
    out[0]!.changes.map((c) => c.seq),
    [1, 2, 3],
  );
});

test("a chunk of a run takes only its rows", () => {
  const u = run(["1", "2", "3", "4"], [{ a: 1 }, { a: 2 }, { a: 3 }, { a: 4 }]);
  const out = updateStatements(u, 2, 4);
  assert.equal(out.length, 1);
  assert.match(out[0]!.sql, /SELECT 3 AS k,3 AS c0 UNION ALL SELECT 4,4\)/);
  assert.deepEqual(
    out[0]!.changes.map((c) => c.seq),
    [3, 4],
  );
});

test("one row, a key past BIGINT's plain range or not an integer, a float or bytes: one UPDATE per row", () => {
  const cases: [string, UpdateRun][] = [
    ["one row", run(["5"], [{ a: "x" }])],
    ["a 19-digit key", run(["5", "9223372036854775808"], [{ a: "x" }, { a: "y" }])],
    ["a text key", run(["5", "ab-12"], [{ a: "x" }, { a: "y" }])],
    ["a float", run(["5", "6"], [{ a: 1.5 }, { a: "y" }])],
    ["bytes", run(["5", "6"], [{ a: new Uint8Array([1, 2]) }, { a: "y" }])],
  ];
  for (const [what, u] of cases) {
    const out = updateStatements(u, 0, u.keys.length);
    assert.equal(out.length, u.keys.length, what);
    for (let i = 0; i < out.length; i++) {
      assert.match(out[i]!.sql, /^UPDATE `shop`\.`sales` SET `a` = .+ WHERE `sale_id` = '.+'$/, what);
      assert.ok(out[i]!.sql.endsWith(`= '${u.keys[i]}'`), what);
      assert.deepEqual(out[i]!.changes, [u.changes[i]], what);
    }
  }
});
