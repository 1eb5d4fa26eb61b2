// DECIMAL values as the binlog stores them (MySQL's packed format: 9 digits per 4 bytes, the
// leftover digits of each side in 1-4 bytes, the first bit the sign, a negative number with every
// bit flipped), encoded here from random digit strings and decoded by zongji's readMysqlValue as
// capture reads them (the project patches zongji's decimal decoder for speed: patches/).
import assert from "node:assert/strict";
import { test } from "node:test";
import { seededRandom, testSeed } from "@dfs/common";

// zongji's internals are not among its package's exports: its file in the workspace's node_modules.
const { readMysqlValue } = (await import(
  new URL("../../../../node_modules/@vlasky/zongji/lib/common.js", import.meta.url).href
)) as { readMysqlValue: (...args: unknown[]) => string };

const NEWDECIMAL = 246;
const GROUP_BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const SEED = testSeed();

/** The binlog's bytes for `sign intDigits.fracDigits` in DECIMAL(precision, scale). */
function encode(
  precision: number,
  scale: number,
  intDigits: string,
  fracDigits: string,
  negative: boolean,
): Buffer {
  const integral = precision - scale;
  const bytes: number[] = [];
  const put = (digits: string, n: number) => {
    let v = Number(digits || "0");
    const out = new Array<number>(n);
    for (let i = n - 1; i >= 0; i--) {
      out[i] = v % 256;
      v = Math.floor(v / 256);
    }
    bytes.push(...out);
  };
  const ints = intDigits.padStart(integral, "0");
  const lead = integral % 9;
  put(ints.slice(0, lead), GROUP_BYTES[lead]!);
  for (let at = lead; at < integral; at += 9) put(ints.slice(at, at + 9), 4);
  const fracs = fracDigits.padEnd(scale, "0");
  const whole = scale - (scale % 9);
  for (let at = 0; at < whole; at += 9) put(fracs.slice(at, at + 9), 4);
  put(fracs.slice(whole), GROUP_BYTES[scale % 9]!);
  const buf = Buffer.from(bytes);
  if (negative) for (let i = 0; i < buf.length; i++) buf[i]! ^= 0xff;
  buf[0]! ^= 0x80;
  return buf;
}

function decode(precision: number, scale: number, value: Buffer): { text: string; read: number } {
  // The value between other bytes, as in a row: the decoder must read exactly its own.
  const parser = { _buffer: Buffer.concat([Buffer.from([0xaa]), value, Buffer.from([0x55])]), _offset: 1 };
  const text = readMysqlValue(
    parser,
    { type: NEWDECIMAL, metadata: { precision, decimals: scale } },
    {},
    {},
    null,
  );
  return { text, read: parser._offset - 1 };
}

test(`DECIMAL values of every precision and scale decode exactly (seed ${SEED})`, () => {
  const r = seededRandom(SEED);
  const digits = (n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) s += String(r.int(10));
    return s;
  };
  for (let i = 0; i < 20_000; i++) {
    const precision = 1 + r.int(65);
    const scale = Math.min(precision, r.int(31));
    const integral = precision - scale;
    // Often a short integer part (leading zero groups), sometimes zero, sometimes full.
    const intLen = r.int(4) === 0 ? 0 : r.int(integral + 1);
    const intDigits = digits(intLen);
    const fracDigits = digits(scale);
    const negative = r.int(2) === 0;
    const value = encode(precision, scale, intDigits, fracDigits, negative);
    const ints = intDigits.replace(/^0+(?=\d)/, "") || "0";
    const expected = (negative ? "-" : "") + ints + (scale > 0 ? `.${fracDigits}` : "");
    const got = decode(precision, scale, value);
    const what = `seed ${SEED}: DECIMAL(${precision},${scale}) ${expected} (${value.toString("hex")})`;
    assert.equal(got.text, expected, what);
    assert.equal(got.read, value.length, `${what}: bytes read`);
  }
});

test("DECIMAL edge values: zero, the largest of a precision, 9-digit group boundaries", () => {
  const cases: [number, number, string, string, boolean, string][] = [
    [10, 0, "0", "", false, "0"],
    [10, 2, "0", "00", false, "0.00"],
    [65, 30, "9".repeat(35), "9".repeat(30), true, `-${"9".repeat(35)}.${"9".repeat(30)}`],
    [18, 9, "000000001", "000000001", false, "1.000000001"],
    [19, 0, "1000000000000000000", "", true, "-1000000000000000000"],
    [12, 2, "1234567890", "05", false, "1234567890.05"],
  ];
  for (const [p, s, i, f, neg, expected] of cases) {
    assert.equal(decode(p, s, encode(p, s, i, f, neg)).text, expected, `DECIMAL(${p},${s}) ${expected}`);
  }
});
