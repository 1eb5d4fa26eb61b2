import assert from "node:assert/strict";
import { test } from "node:test";
import { quoteId, quoteTable } from "../../dist/quote.js";

test("identifiers are quoted with backticks, a backtick inside doubled", () => {
  assert.equal(quoteId("orders"), "`orders`");
  assert.equal(quoteId("a`b"), "`a``b`");
  assert.equal(quoteId("``"), "``````");
  assert.equal(quoteId("my.db"), "`my.db`");
  assert.equal(quoteTable({ db: "dfs.ü`x", table: "t" }), "`dfs.ü``x`.`t`");
});

test("sqlLiteral makes the same text as mysql2's escaping of a parameter", async () => {
  const mysql2 = await import("mysql2");
  const { sqlLiteral } = await import("../../dist/quote.js");
  const special = ["\0", "\b", "\t", "\n", "\r", "\x1a", '"', "'", "\\", "a", "ü", "😀", "%", "_", "?", "`"];
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const values: unknown[] = [null, 0, -1, 1.5, 1e21, 2n ** 64n - 1n, -(2n ** 63n), "", "plain text"];
  for (let i = 0; i < 500; i++) {
    let s = "";
    for (let k = rand(12); k > 0; k--) s += special[rand(special.length)];
    values.push(s);
  }
  values.push(Buffer.from([0, 1, 0xfe, 0xff]), Buffer.alloc(0));
  for (const v of values)
    assert.equal(sqlLiteral(v), mysql2.escape(v as string), `value ${JSON.stringify(String(v))}`);
  // A Uint8Array that is not a Buffer (a view into a larger message) is bytes too.
  const view = new Uint8Array([9, 0xab, 0xcd, 9]).subarray(1, 3);
  assert.equal(sqlLiteral(view), "X'abcd'");
  assert.throws(() => sqlLiteral({}), /not a column value/);
});
