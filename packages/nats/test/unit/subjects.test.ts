import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, DataError } from "@dfs/common";
import { decodeToken, encodeToken, subjects } from "../../dist/subjects.js";

const ODD = [
  "a.b",
  "we ird*",
  "%",
  "ünï",
  ">",
  "_ddl",
  "tab\tle",
  "a%2Eb",
  "日本語",
  "x y.z*>",
  "\u00a0",
  "😀",
  "$x-y_z",
];

/** What a subject token must not contain for NATS (and what would split or widen it). */
function assertValidToken(token: string): void {
  assert.notEqual(token, "", "empty token");
  assert.doesNotMatch(token, /[.*>\s]/u, `token ${JSON.stringify(token)} holds '.', '*', '>' or whitespace`);
  assert.doesNotMatch(token, /\p{Cc}/u, `token ${JSON.stringify(token)} holds a control character`);
}

test("encodeToken keeps safe characters and escapes the rest", () => {
  assert.equal(encodeToken("orders_2024$x-y"), "orders_2024$x-y");
  assert.equal(encodeToken("a.b"), "a%2Eb");
  assert.equal(encodeToken("we ird*"), "we%20ird%2A");
  assert.equal(encodeToken("%"), "%25");
  assert.equal(encodeToken(">"), "%3E");
  assert.equal(encodeToken("ünï"), "ünï");
  assert.equal(encodeToken("\u00a0"), "%C2%A0"); // no-break space is not a letter
  assert.equal(encodeToken("😀"), "%F0%9F%98%80");
});

test("decodeToken inverts encodeToken for odd names", () => {
  for (const name of ODD) {
    const token = encodeToken(name);
    assertValidToken(token);
    assert.equal(decodeToken(token), name);
  }
});

test("round trip over random unicode strings (property style)", () => {
  // Weighted towards the troublesome ranges: ASCII punctuation, controls, Latin-1, surrogates
  // (also lone ones), astral code points and Unicode whitespace.
  const ranges: Array<[number, number]> = [
    [0x00, 0x7f],
    [0x80, 0x2ff],
    [0x2000, 0x206f],
    [0x3000, 0x30ff],
    [0xd800, 0xdfff],
    [0xfff0, 0xffff],
    [0x1f300, 0x1faff],
    [0x20000, 0x2a6df],
  ];
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let run = 0; run < 5000; run++) {
    let s = "";
    const len = 1 + rand(12);
    for (let i = 0; i < len; i++) {
      const [lo, hi] = ranges[rand(ranges.length)]!;
      const cp = lo + rand(hi - lo + 1);
      s += cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
    }
    const token = encodeToken(s);
    assertValidToken(token);
    assert.equal(decodeToken(token), s, `round trip of ${JSON.stringify(s)}`);
  }
});

test("decodeToken rejects what encodeToken never produces", () => {
  for (const bad of [
    "a.b",
    "a b",
    "%2e",
    "%61",
    "%",
    "%2",
    "%C3",
    "%C3%28",
    "%C0%AE",
    "%ED%A0%BD%ED%B8%80",
    "*",
  ]) {
    assert.throws(() => decodeToken(bad), Error, bad);
  }
  assert.equal(decodeToken(""), "");
});

test("subjects for odd names are valid NATS subjects with the right shape", () => {
  for (const db of ODD) {
    for (const table of ["t", ...ODD]) {
      const data = subjects.data("src-1", db, table);
      const tokens = data.split(".");
      assert.equal(tokens.length, 4, data);
      assert.deepEqual(tokens.slice(0, 2), ["dfs", "src-1"]);
      for (const t of tokens) assertValidToken(t);
      assert.deepEqual(subjects.parseData(data), { source: "src-1", db, table });
      const dlq = subjects.dlq("src-1", db, table).split(".");
      assert.equal(dlq.length, 5);
      assert.equal(dlq[2], "_dlq");
      for (const t of dlq) assertValidToken(t);
      const chunks = subjects.dlqChunks("src-1", db, table, `dlq:src-1:dpu-${db}:7:3`).split(".");
      assert.equal(chunks.length, 6, "one token more than a dead letter's subject");
      assert.deepEqual(chunks.slice(0, 5), dlq);
      for (const t of chunks) assertValidToken(t);
    }
  }
});

test("fixed subjects, stream names and parseData", () => {
  assert.equal(subjects.ddl("s1"), "dfs.s1._ddl");
  assert.equal(subjects.heartbeat("s1"), "dfs.s1._heartbeat");
  assert.equal(subjects.data("s1", "shop", "orders"), "dfs.s1.shop.orders");
  assert.equal(subjects.dlq("s1", "shop", "orders"), "dfs.s1._dlq.shop.orders");
  assert.equal(subjects.streamName("my-src"), "DFS_MY_SRC");
  assert.equal(subjects.dlqStreamName("my-src"), "DFS_MY_SRC_DLQ");
  // A database literally named _ddl is still a 4-token data subject.
  assert.deepEqual(subjects.parseData(subjects.data("s1", "_ddl", "x")), {
    source: "s1",
    db: "_ddl",
    table: "x",
  });
  assert.equal(subjects.parseData("dfs.s1._ddl"), null);
  assert.equal(subjects.parseData("dfs.s1._heartbeat"), null);
  assert.equal(subjects.parseData("dfs.s1._dlq.a.b"), null);
  assert.equal(subjects.parseData("other.s1.a.b"), null);
  assert.equal(subjects.parseData("dfs.s1.a%2e.b"), null);
});

test("bad source ids and empty identifiers are refused", () => {
  for (const bad of ["", "a.b", "a b", "a*", "x_dlq", "X-DLQ"]) {
    assert.throws(() => subjects.streamName(bad), ConfigError, bad);
  }
  assert.throws(() => subjects.data("s1", "", "t"), DataError);
  assert.throws(() => subjects.data("s1", "d", ""), DataError);
});
