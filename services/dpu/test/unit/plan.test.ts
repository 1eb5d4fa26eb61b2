// The statement generator alone: changes in, SQL out with every value escaped by sqlLiteral (no servers).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { planLane, planStatements } from "../../dist/plan.js";
import { change, targetTable } from "../support/changes.js";

const t = targetTable("shop", "orders", ["id", "qty", "note"], ["id"]);

describe("planStatements", () => {
  test("consecutive inserts of one table share one multi-row upsert; values stay exact", () => {
    const big = 18446744073709551615n;
    const st = planStatements(
      [
        change(t, "c", null, { id: 1n, qty: big, note: "a" }),
        change(t, "r", null, { id: 2n, qty: 0n, note: null }),
      ],
      1000,
    );
    assert.equal(st.length, 1);
    assert.equal(
      st[0]!.sql,
      "INSERT INTO `shop`.`orders` (`id`,`qty`,`note`) VALUES (1,18446744073709551615,'a'),(2,0,NULL) ON DUPLICATE KEY UPDATE `qty`=VALUES(`qty`),`note`=VALUES(`note`)",
    );
    assert.equal(st[0]!.changes.length, 2);
    assert.equal(
      st[0]!.text,
      "INSERT INTO `shop`.`orders` (`id`,`qty`,`note`) VALUES (?,?,?) ×2 ON DUPLICATE KEY UPDATE `qty`=VALUES(`qty`),`note`=VALUES(`note`)",
      "the activity log's form has no values",
    );
  });

  test("an update that keeps its key is an upsert; one that changes it is delete + upsert, in order", () => {
    const st = planStatements(
      [
        change(t, "u", { id: 1n, qty: 1n, note: "x" }, { id: 1n, qty: 2n, note: "x" }),
        change(t, "u", { id: 1n, qty: 2n, note: "x" }, { id: 5n, qty: 2n, note: "x" }),
      ],
      1000,
    );
    assert.deepEqual(
      st.map((s) => s.sql.split(" (")[0]),
      [
        "INSERT INTO `shop`.`orders`",
        "DELETE FROM `shop`.`orders` WHERE `id` IN",
        "INSERT INTO `shop`.`orders`",
      ],
    );
    assert.equal(st[1]!.sql, "DELETE FROM `shop`.`orders` WHERE `id` IN (1)");
    assert.match(st[2]!.sql, / VALUES \(5,2,'x'\) ON DUPLICATE/);
  });

  test("deletes by key: IN for one column, row tuples for a composite key", () => {
    const single = planStatements(
      [
        change(t, "d", { id: 1n, qty: 1n, note: "" }, null),
        change(t, "d", { id: 2n, qty: 1n, note: "" }, null),
      ],
      1000,
    );
    assert.equal(single[0]!.sql, "DELETE FROM `shop`.`orders` WHERE `id` IN (1,2)");
    const c = targetTable("shop", "lines", ["order_id", "line", "sku"], ["order_id", "line"]);
    const comp = planStatements(
      [
        change(c, "d", { order_id: 1n, line: 1n, sku: "a" }, null),
        change(c, "d", { order_id: 1n, line: 2n, sku: "b" }, null),
      ],
      1000,
    );
    assert.equal(comp[0]!.sql, "DELETE FROM `shop`.`lines` WHERE (`order_id`,`line`) IN ((1,1),(1,2))");
    assert.equal(comp[0]!.text, "DELETE FROM `shop`.`lines` WHERE (`order_id`,`line`) IN ((?,?)) ×2");
    assert.equal(single[0]!.text, "DELETE FROM `shop`.`orders` WHERE `id` IN (?) ×2");
  });

  test("statementRows splits a long run; a change of table or kind starts a new statement", () => {
    const other = targetTable("shop", "other", ["id"], ["id"]);
    const changes = [1n, 2n, 3n].map((id) => change(t, "c", null, { id, qty: 1n, note: "" }));
    changes.push(change(other, "c", null, { id: 9n }));
    changes.push(change(t, "d", { id: 1n, qty: 1n, note: "" }, null));
    const st = planStatements(changes, 2);
    assert.deepEqual(
      st.map((s) => [s.sql.slice(0, 6), s.changes.length]),
      [
        ["INSERT", 2],
        ["INSERT", 1],
        ["INSERT", 1],
        ["DELETE", 1],
      ],
    );
  });

  test("columns the target lacks are not written", () => {
    const narrow = targetTable("shop", "orders", ["id", "qty"], ["id"]);
    const st = planStatements([change(narrow, "c", null, { id: 1n, qty: 2n, dropped: "x" })], 10);
    assert.match(st[0]!.sql, /^INSERT INTO `shop`.`orders` \(`id`,`qty`\) VALUES \(1,2\)/);
  });

  test("a table without a key: insert, delete of one row equal to the image (NULL-safe), update = both", () => {
    const k = targetTable("shop", "log", ["a", "b"], []);
    const st = planStatements(
      [
        change(k, "c", null, { a: 1n, b: null }),
        change(k, "d", { a: 1n, b: null }, null),
        change(k, "u", { a: 2n, b: "x" }, { a: 3n, b: "x" }),
      ],
      100,
    );
    assert.deepEqual(
      st.map((s) => s.sql),
      [
        "INSERT INTO `shop`.`log` (`a`,`b`) VALUES (1,NULL)",
        "DELETE FROM `shop`.`log` WHERE `a` <=> 1 AND `b` <=> NULL LIMIT 1",
        "DELETE FROM `shop`.`log` WHERE `a` <=> 2 AND `b` <=> 'x' LIMIT 1",
        "INSERT INTO `shop`.`log` (`a`,`b`) VALUES (3,'x')",
      ],
    );
  });

  test("names with dots, backticks and any letters are quoted, never pasted", () => {
    const odd = targetTable("dfs.ü`x", "t.ä`b", ["i`d", "wert"], ["i`d"]);
    const st = planStatements([change(odd, "c", null, { "i`d": 1n, wert: "v" })], 10);
    assert.equal(
      st[0]!.sql,
      "INSERT INTO `dfs.ü``x`.`t.ä``b` (`i``d`,`wert`) VALUES (1,'v') ON DUPLICATE KEY UPDATE `wert`=VALUES(`wert`)",
    );
  });
});

describe("planLane", () => {
  const t1 = targetTable("shop", "t1", ["id", "v"], ["id"]);
  const t2 = targetTable("shop", "t2", ["id", "v"], ["id"]);
  const u1 = targetTable("shop", "u1", ["id", "email"], ["id"], "primary", [["email"]]);
  /** An OLTP transaction: an update of t1, a delete and an insert in t2. */
  const txn = (i: number) => [
    change(t1, "u", { id: BigInt(i), v: "a" }, { id: BigInt(i), v: "b" }, i),
    change(t2, "d", { id: BigInt(i), v: "x" }, null, i),
    change(t2, "c", null, { id: BigInt(1000 + i), v: "y" }, i),
  ];
  /** The unquoted integers of a statement's values, in order (the tables' ids). */
  const ints = (sql: string) =>
    [...sql.replace(/'[^']*'/g, "").matchAll(/(?:[(,]|<=> )(\d+)(?=[,) ]|$)/g)].map((m) => BigInt(m[1]!));
  const shape = (st: { sql: string }[]) =>
    st.map((s) => [s.sql.slice(0, 6), s.sql.match(/`shop`\.`(\w+)`/)![1], ints(s.sql)]);

  test("independent transactions of the same shape share statements: one per table and kind", () => {
    const st = planLane([1, 2, 3, 4, 5].flatMap(txn), 1000);
    assert.deepEqual(
      st.map((s) => [s.sql.slice(0, 29), s.changes.length]),
      [
        ["INSERT INTO `shop`.`t1` (`id`", 5],
        ["DELETE FROM `shop`.`t2` WHERE", 5],
        ["INSERT INTO `shop`.`t2` (`id`", 5],
      ],
    );
    assert.equal(st[1]!.sql, "DELETE FROM `shop`.`t2` WHERE `id` IN (1,2,3,4,5)");
  });

  test("changes of one key keep their order; others join the earliest statement they can", () => {
    const st = planLane(
      [
        change(t1, "c", null, { id: 1n, v: "a" }, 1),
        change(t1, "c", null, { id: 11n, v: "b" }, 2),
        change(t1, "d", { id: 1n, v: "a" }, null, 3),
        change(t1, "c", null, { id: 12n, v: "b" }, 4),
        change(t1, "c", null, { id: 1n, v: "again" }, 5),
        change(t1, "d", { id: 13n, v: "b" }, null, 6),
      ],
      1000,
    );
    assert.deepEqual(shape(st), [
      ["INSERT", "t1", [1n, 11n, 12n]],
      ["DELETE", "t1", [13n]],
      ["DELETE", "t1", [1n]],
      ["INSERT", "t1", [1n]],
    ]);
  });

  test("two changes of one key in a row of the same kind share a statement, in order", () => {
    const st = planLane(
      [
        change(t1, "u", { id: 1n, v: "a" }, { id: 1n, v: "b" }, 1),
        change(t1, "u", { id: 1n, v: "b" }, { id: 1n, v: "c" }, 2),
      ],
      1000,
    );
    assert.equal(st.length, 1);
    assert.match(
      st[0]!.sql,
      / VALUES \(1,'b'\),\(1,'c'\) /,
      "the later image last: the server applies rows in order",
    );
  });

  test("a unique key orders changes of different rows: the email moves only after it was freed", () => {
    const st = planLane(
      [
        change(u1, "c", null, { id: 3n, email: "q@x" }, 1),
        change(u1, "d", { id: 1n, email: "a@x" }, null, 2),
        change(u1, "c", null, { id: 2n, email: "A@X" }, 3),
        change(t1, "c", null, { id: 5n, v: "free" }, 4),
      ],
      1000,
    );
    assert.deepEqual(shape(st), [
      ["INSERT", "u1", [3n]],
      ["DELETE", "u1", [1n]],
      ["INSERT", "t1", [5n]],
      ["INSERT", "u1", [2n]],
    ]);
  });

  test("an update of the key is a delete and then an upsert, never reordered", () => {
    const st = planLane(
      [
        change(t1, "u", { id: 1n, v: "a" }, { id: 2n, v: "a" }, 1),
        change(t1, "u", { id: 2n, v: "a" }, { id: 1n, v: "a" }, 2),
      ],
      1000,
    );
    assert.deepEqual(shape(st), [
      ["DELETE", "t1", [1n]],
      ["INSERT", "t1", [2n]],
      ["DELETE", "t1", [2n]],
      ["INSERT", "t1", [1n]],
    ]);
  });

  test("statementRows still bounds every statement; keyless deletes stay one per statement, in order", () => {
    const many = Array.from({ length: 7 }, (_, i) => change(t1, "c", null, { id: BigInt(i), v: "x" }, i));
    assert.deepEqual(
      planLane(many, 3).map((s) => s.changes.map((c) => c.after!.id)),
      [[0n, 1n, 2n], [3n, 4n, 5n], [6n]],
      "each statement carries exactly the changes of its rows",
    );
    const k = targetTable("shop", "log", ["a"], []);
    const st = planLane(
      [
        change(k, "c", null, { a: 1n }),
        change(k, "c", null, { a: 2n }),
        change(k, "d", { a: 1n }, null),
        change(k, "d", { a: 2n }, null),
        change(k, "c", null, { a: 3n }),
        change(t1, "c", null, { id: 9n, v: "z" }),
      ],
      100,
    );
    assert.deepEqual(
      st.map((s) => [s.sql.slice(0, 6), ints(s.sql)]),
      [
        ["INSERT", [1n, 2n]],
        ["INSERT", [9n]],
        ["DELETE", [1n]],
        ["DELETE", [2n]],
        ["INSERT", [3n]],
      ],
      "a keyless table's changes in order; the keyed insert joins the first level",
    );
    assert.deepEqual(
      st.filter((s) => s.sql.startsWith("DELETE")).map((s) => s.changes.map((c) => c.before!.a)),
      [[1n], [2n]],
      "each keyless delete carries its own change (a dead letter names the right row)",
    );
  });
});

describe("large values", () => {
  test("a row with a large value is alone in its statement, the value a binary parameter; the rest stays text", () => {
    const blob = Buffer.alloc(300 * 1024, 7);
    const text = "é".repeat(300 * 1024);
    const changes = [
      change(t, "c", null, { id: 1n, qty: 1n, note: "a" }),
      change(t, "c", null, { id: 2n, qty: 2n, note: blob }),
      change(t, "c", null, { id: 3n, qty: 3n, note: "b" }),
      change(t, "c", null, { id: 4n, qty: 4n, note: text }),
    ];
    for (const st of [planLane(changes, 1000), planStatements(changes, 1000)]) {
      assert.deepEqual(
        st.map((s) => [s.changes.map((c) => c.after!.id), s.execute ?? false]),
        [
          [[1n], false],
          [[2n], true],
          [[3n], false],
          [[4n], true],
        ],
      );
      assert.equal(
        st[1]!.sql,
        "INSERT INTO `shop`.`orders` (`id`,`qty`,`note`) VALUES (2,2,?) ON DUPLICATE KEY UPDATE `qty`=VALUES(`qty`),`note`=VALUES(`note`)",
      );
      assert.equal(st[1]!.params![0], blob, "the value itself, not a copy or its text");
      assert.equal(st[3]!.params![0], text);
    }
  });

  test("a keyless delete matches a large before image through a parameter", () => {
    const k = targetTable("shop", "log", ["a", "b"], []);
    const blob = Buffer.alloc(300 * 1024, 1);
    const [st] = planLane([change(k, "d", { a: 1n, b: blob }, null)], 1000);
    assert.equal(st!.sql, "DELETE FROM `shop`.`log` WHERE `a` <=> 1 AND `b` <=> ? LIMIT 1");
    assert.equal(st!.execute, true);
    assert.equal(st!.params![0], blob);
  });
});
