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
