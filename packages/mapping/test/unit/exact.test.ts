import assert from "node:assert/strict";
import { test } from "node:test";
import { compileExpr, toSql } from "../../dist/index.js";

const kinds = {
  has: (c: string) => ["a", "b", "c", "s"].includes(c),
  numeric: (c: string) => c !== "s",
};

/** A value a source could send for a numeric column: integers, bigints, decimal text, doubles, NULL. */
function value(rnd: () => number): unknown {
  const r = rnd();
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join("");
  if (r < 0.08) return null;
  if (r < 0.3) return Math.floor(rnd() * 2_000_000) - 1_000_000;
  if (r < 0.4) return BigInt(`${rnd() < 0.5 ? "-" : ""}${digits(1 + Math.floor(rnd() * 30))}`);
  if (r < 0.85)
    return `${rnd() < 0.3 ? "-" : ""}${digits(1 + Math.floor(rnd() * 40))}.${digits(Math.floor(rnd() * 30))}`;
  if (r < 0.95) return (rnd() - 0.5) * 1e6; // a DOUBLE: the general path
  return "1e5"; // exponent text: the general path
}

test("the exact fast path gives the general evaluator's results, value for value", () => {
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const exprs = [
    "a * b",
    "a + b - c",
    "-a * 2.50 + 0.001",
    "a * b * c",
    "a - -b",
    "a * b > c",
    "a <= b",
    "a == b",
  ];
  let fast = 0;
  for (const e of exprs) {
    const quick = compileExpr(e, kinds);
    const general = compileExpr(e, kinds, { exact: false });
    for (let i = 0; i < 3000; i++) {
      const row = { a: value(rnd), b: value(rnd), c: value(rnd) } as never;
      if (i % 10 === 0) (row as Record<string, unknown>).b = (row as Record<string, unknown>).a; // equal values
      const want = toSql(general.run(row));
      const t = quick.text?.(row);
      if (t !== undefined) fast++;
      assert.deepEqual(
        t !== undefined ? t : toSql(quick.run(row)),
        want,
        `${e} over ${JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}`,
      );
    }
  }
  assert.ok(fast > 5000, `the fast path answered ${fast} times`);
});

test("the fast path formats as the general one does and leaves text columns to it", () => {
  const e = compileExpr("a * b", kinds);
  assert.equal(e.text?.({ a: 3, b: "2.50" } as never), "7.5");
  assert.equal(e.text?.({ a: -1, b: "0.00" } as never), "0");
  assert.equal(e.text?.({ a: "-0.05", b: 1 } as never), "-0.05");
  assert.equal(e.text?.({ a: null, b: 1 } as never), null);
  assert.equal(e.text?.({ a: 1.5, b: 1 } as never), undefined);
  assert.equal(compileExpr("s * 2", kinds).text, undefined);
  assert.equal(compileExpr("a", kinds).text, undefined);
});
