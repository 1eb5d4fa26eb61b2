// DATETIME and DATE text as zongji's dateStrings mode makes it, after the project's patch of its
// formatting (patches/: two-digit parts from a table, a four-digit year as it is): the same text as
// the unpatched formatting (zeroPad over a 32-zero prefix) for every part in and out of the usual
// ranges, zero dates, five-digit years and fractions of every precision. Seeded.
import assert from "node:assert/strict";
import { test } from "node:test";
import { seededRandom, testSeed } from "@dfs/common";

// zongji's internals are not among its package's exports: its file in the workspace's node_modules.
const { getDateTime, getDateString } = (await import(
  new URL("../../../../node_modules/@vlasky/zongji/lib/datetime_decode.js", import.meta.url).href
)) as {
  getDateTime: (dateStrings: boolean, ...parts: unknown[]) => string;
  getDateString: (year: number, month: number, date: number) => string;
};

const SEED = testSeed();

/** zongji's formatting before the patch, as its source had it. */
function zeroPad(num: number, size: number): string {
  const s = `00000000000000000000000000000000${num}`;
  return s.substr(s.length - size);
}
function expected(
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
  f: Fraction | false,
): string {
  const date = `${zeroPad(y, 4)}-${zeroPad(mo, 2)}-${zeroPad(d, 2)}`;
  return `${date} ${zeroPad(h, 2)}:${zeroPad(mi, 2)}:${zeroPad(s, 2)}${f ? `.${zeroPad(f.value, f.precision)}` : ""}`;
}
interface Fraction {
  value: number;
  precision: number;
  milliseconds: number;
}

test(`DATETIME text is what unpatched zongji made (seed ${SEED})`, () => {
  const r = seededRandom(SEED);
  const part = (max: number) => (r.chance(0.05) ? [0, max - 1, max, max + 37][r.int(4)]! : r.int(max));
  for (let i = 0; i < 20_000; i++) {
    const year = r.chance(0.1) ? [0, 1, 999, 1000, 9999, 10_000, 10_082][r.int(7)]! : 1000 + r.int(9000);
    const [mo, d, h, mi, s] = [part(13), part(32), part(24), part(60), part(60)];
    const precision = r.int(7);
    const f: Fraction | false = precision > 0 && {
      value: r.int(10 ** precision),
      precision,
      milliseconds: 0,
    };
    assert.equal(
      getDateTime(true, year, mo, d, h, mi, s, f, "Z"),
      expected(year, mo, d, h, mi, s, f),
      `seed ${SEED}: ${[year, mo, d, h, mi, s].join(",")} fraction ${JSON.stringify(f)}`,
    );
    assert.equal(getDateString(year, mo, d), expected(year, mo, d, 0, 0, 0, false).slice(0, -9));
  }
});
