// writeUtf8 (the hot paths' string writer) against Buffer.from: the same bytes for ASCII, for text
// past the short-string loop, for characters of 2, 3 and 4 UTF-8 bytes and for lone surrogates
// (U+FFFD both ways), at any offset of a buffer. Seeded: DFS_TEST_SEED=<seed> repeats a run.
import assert from "node:assert/strict";
import { test } from "node:test";
import { seededRandom, testSeed } from "@dfs/common";
import { readUtf8, writeUtf8 } from "../../dist/utf8.js";

const SEED = testSeed();
const CHARS = [
  "a",
  "Z",
  "0",
  " ",
  "'",
  "\\",
  "\0",
  "\x7f",
  "é",
  "\u0080",
  "€",
  "\u07ff",
  "中",
  "😀",
  "\ud800",
  "\udfff",
];

function randomString(rnd: ReturnType<typeof seededRandom>, ascii: boolean): string {
  const n = rnd.int(140);
  let s = "";
  for (let i = 0; i < n; i++) s += ascii ? String.fromCharCode(rnd.int(128)) : CHARS[rnd.int(CHARS.length)]!;
  return s;
}

test("writeUtf8 writes what Buffer.from(s) holds, at any offset", () => {
  const rnd = seededRandom(SEED);
  const buf = Buffer.alloc(1024, 0xaa);
  for (let i = 0; i < 5_000; i++) {
    const s = randomString(rnd, rnd.chance(0.5));
    const at = rnd.int(200);
    buf.fill(0xaa);
    const n = writeUtf8(buf, s, at);
    const want = Buffer.from(s, "utf8");
    assert.equal(n, want.length, `seed ${SEED}: length of ${JSON.stringify(s)}`);
    assert.deepEqual(buf.subarray(at, at + n), want, `seed ${SEED}: bytes of ${JSON.stringify(s)}`);
    assert.equal(buf[at + n], 0xaa, `seed ${SEED}: nothing written past the string`);
  }
});

test("writeUtf8: non-ASCII after an ASCII prefix of a short string is written whole", () => {
  const buf = Buffer.alloc(64);
  const n = writeUtf8(buf, "abc€d", 1);
  assert.equal(buf.subarray(1, 1 + n).toString("utf8"), "abc€d");
  assert.equal(n, 7);
});

test("readUtf8 reads what Buffer#toString reads, invalid bytes included", () => {
  const rnd = seededRandom(SEED + 1);
  for (let i = 0; i < 2_000; i++) {
    const buf = rnd.chance(0.5) ? rnd.bytes(rnd.int(100)) : Buffer.from(randomString(rnd, false));
    const a = rnd.int(buf.length + 1);
    const b = a + rnd.int(buf.length - a + 1);
    assert.equal(
      readUtf8(buf, a, b),
      buf.toString("utf8", a, b),
      `seed ${SEED}: [${a}, ${b}) of ${buf.toString("hex")}`,
    );
  }
});
