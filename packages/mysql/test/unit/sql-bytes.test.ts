// SqlBytes (the DPU's statements written as bytes) against sqlLiteral, which the quote test holds to
// mysql2's own escaping: the same text for random values of every kind (strings with escapes, non-
// ASCII, surrogates; integers, doubles, -0, BigInts, bytes, NULL), statements that cross a chunk,
// and a grown chunk left to its statement. And runScript sends bytes as bytes, joined in order.
// Seeded: DFS_TEST_SEED=<seed> repeats a run.
import assert from "node:assert/strict";
import { test } from "node:test";
import { seededRandom, testSeed } from "@dfs/common";
import { sqlLiteral } from "../../dist/quote.js";
import { runScript } from "../../dist/script.js";
import type { MysqlSession } from "../../dist/session.js";
import { SqlBytes } from "../../dist/sql-bytes.js";

const SEED = testSeed();
const CHARS = [
  "a",
  "Z",
  "9",
  " ",
  "'",
  '"',
  "\\",
  "\0",
  "\b",
  "\t",
  "\n",
  "\r",
  "\x1a",
  "é",
  "€",
  "中",
  "😀",
  "\ud800",
];

function randomValue(rnd: ReturnType<typeof seededRandom>): unknown {
  switch (rnd.int(8)) {
    case 0: {
      let s = "";
      const n = rnd.int(rnd.chance(0.1) ? 3000 : 60);
      for (let i = 0; i < n; i++)
        s += rnd.chance(0.7) ? "abcxyz019 ,.-"[rnd.int(13)] : CHARS[rnd.int(CHARS.length)];
      return s;
    }
    case 1:
      return (rnd.chance(0.5) ? -1 : 1) * rnd.int(2 ** 31) * (rnd.chance(0.3) ? 2 ** 21 : 1);
    case 2:
      return [0, -0, 9007199254740991, -9007199254740991, 2 ** 53, 1e21, 1.5e-7, 0.1, -2.5][rnd.int(9)];
    case 3:
      return (rnd.next() - 0.5) * 10 ** rnd.int(30);
    case 4:
      return BigInt(rnd.int(2 ** 31)) * 2n ** 33n * (rnd.chance(0.5) ? -1n : 1n);
    case 5:
      return rnd.bytes(rnd.int(40));
    case 6:
      return null;
    default:
      return rnd.chance(0.5);
  }
}

test("SqlBytes writes every value as sqlLiteral does", () => {
  const rnd = seededRandom(SEED);
  const w = new SqlBytes();
  for (let i = 0; i < 20_000; i++) {
    const v = randomValue(rnd);
    const bytes = w.begin().literal(v).end();
    // As bytes: what mysql2 would send of the string (a lone surrogate is U+FFFD both ways).
    assert.deepEqual(bytes, Buffer.from(sqlLiteral(v)), `seed ${SEED}: value ${String(v)}`);
  }
  assert.throws(() => w.begin().literal({}), /not a column value/);
});

test("statements stay whole across chunks; each keeps its bytes after later ones are written", () => {
  const rnd = seededRandom(SEED + 1);
  const w = new SqlBytes();
  const made: { bytes: Buffer; want: string }[] = [];
  for (let s = 0; s < 300; s++) {
    const values = Array.from({ length: 1 + rnd.int(400) }, () => randomValue(rnd));
    w.begin().raw("INSERT INTO `t` VALUES (");
    values.forEach((v, i) => {
      if (i > 0) w.char(0x2c);
      w.literal(v);
    });
    w.char(0x29);
    made.push({ bytes: w.end(), want: `INSERT INTO \`t\` VALUES (${values.map(sqlLiteral).join(",")})` });
  }
  // One statement larger than a chunk, then small ones again.
  const big = "x".repeat(3 * 1024 * 1024);
  made.push({ bytes: w.begin().literal(big).end(), want: `'${big}'` });
  made.push({ bytes: w.begin().raw("COMMIT").end(), want: "COMMIT" });
  for (const [i, m] of made.entries())
    assert.deepEqual(m.bytes, Buffer.from(m.want), `seed ${SEED}: statement ${i}`);
});

test("begin() drops a statement left unfinished (a value that is not a column value)", () => {
  const w = new SqlBytes();
  w.begin().raw("INSERT ");
  assert.throws(() => w.literal(Symbol("x")));
  assert.equal(w.begin().raw("DELETE").end().toString(), "DELETE");
});

test("runScript sends statements given as bytes as one run of bytes, in order, strings among them", async () => {
  const sent: string[] = [];
  const session = {
    query: async (sql: string) => sent.push(`text ${sql}`) && [],
    queryBytes: async (sql: Uint8Array) => sent.push(`bytes ${Buffer.from(sql).toString("utf8")}`) && [],
    format: (sql: string) => sql,
  } as unknown as MysqlSession;
  const w = new SqlBytes();
  const insert = w.begin().raw("INSERT ").literal("é'").end();
  await runScript(session, [{ sql: "BEGIN" }, { sql: "", bytes: insert }, { sql: "COMMIT" }], 1 << 20);
  await runScript(session, [{ sql: "BEGIN" }, { sql: "COMMIT" }], 1 << 20);
  assert.deepEqual(sent, ["bytes BEGIN;\nINSERT 'é\\'';\nCOMMIT", "text BEGIN;\nCOMMIT"]);
});
