import assert from "node:assert/strict";
import { test } from "node:test";
import { ChangeBatch, Op, type RowChange } from "@dfs/proto";
import { encodeBatch } from "../../dist/batch.js";
import { encodeBatchWithRows, RowsWriter } from "../../dist/rows-writer.js";
import { toValue, ValueKind } from "../../dist/values.js";

/** Values of every kind, including the edges of each encoding. */
const SAMPLES: Record<ValueKind, unknown[]> = {
  [ValueKind.Int]: [
    0,
    1,
    -1,
    127,
    -128,
    2 ** 31,
    -(2 ** 31),
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    "9223372036854775807",
    "-9223372036854775808",
    null,
  ],
  [ValueKind.Uint]: [
    0,
    127,
    128,
    16383,
    16384,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    "18446744073709551615",
    "9007199254740993",
    null,
  ],
  [ValueKind.Float64]: [0, -0, 1.5, Math.PI, 1.7976931348623157e308, 5e-324, -2.5e-300, null],
  [ValueKind.Float32]: [
    0,
    1.5,
    Math.fround(3.4028234663852886e38),
    Math.fround(1.1754943508222875e-38),
    Math.fround(-0.1),
    null,
  ],
  [ValueKind.Decimal]: ["0.00", "-12.5", `${"9".repeat(35)}.${"1".repeat(30)}`, null],
  [ValueKind.Text]: [
    "",
    "a",
    "é ÿ",
    "😀 emoji",
    "x".repeat(41),
    "x".repeat(42),
    "ü".repeat(300),
    "日本".repeat(5000),
    Buffer.from([0, 255]),
    null,
  ],
  [ValueKind.Bytes]: [Buffer.alloc(0), Buffer.from([0, 0, 255, 0]), Buffer.alloc(70000, 7), null],
  [ValueKind.Temporal]: ["2024-01-02 03:04:05.123456", "-838:59:59.000000", "0000-00-00", null],
  [ValueKind.Json]: ['{"a":[1,2,{"b":"q\\"uote"}]}', { parsed: true }, null],
};

function rowOf(kinds: ValueKind[], pick: (k: ValueKind, i: number) => unknown): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  kinds.forEach((k, i) => {
    row[`c${i}`] = pick(k, i);
  });
  return row;
}

test("RowsWriter bytes equal the ts-proto encoding of the same rows, for every kind and edge", () => {
  const kinds = Object.keys(SAMPLES).map(Number) as ValueKind[];
  const keys = kinds.map((_, i) => `c${i}`);
  const longest = Math.max(...kinds.map((k) => SAMPLES[k].length));
  const header = {
    sourceId: "s",
    serverUuid: "u",
    db: "d",
    table: "t",
    schemaVersion: 7,
    columns: keys.map((name) => ({ name, type: "x", charset: "" })),
    primaryKey: ["c0"],
    position: undefined,
    scn: 42n,
    txnOrdinal: 3n,
    chunk: 1,
    txnLast: true,
    commitTime: 1700000000n,
    captureTimeMs: 1700000000123n,
    sourceTxns: [],
  };
  const writer = new RowsWriter(16); // tiny start: growth is exercised too
  const expected: RowChange[] = [];
  for (let r = 0; r < longest; r++) {
    const pick = (k: ValueKind) => SAMPLES[k][r % SAMPLES[k].length];
    const before = rowOf(kinds, (k) => pick(k));
    const after = rowOf(kinds, (k) => SAMPLES[k][(r + 1) % SAMPLES[k].length]);
    const op = [Op.OP_CREATE, Op.OP_UPDATE, Op.OP_DELETE][r % 3]!;
    const b = op === Op.OP_CREATE ? null : before;
    const a = op === Op.OP_DELETE ? null : after;
    const sourceTxn = r % 4 === 0 ? 0 : r * 37; // 0 (left out), small and multi-byte varints
    writer.writeRow(op, r, kinds, keys, b, a, sourceTxn);
    expected.push({
      op,
      rowIndex: r,
      before: b ? keys.map((key, i) => toValue(kinds[i]!, b[key])) : [],
      after: a ? keys.map((key, i) => toValue(kinds[i]!, a[key])) : [],
      sourceTxn,
    });
  }
  const rows = writer.finish();
  const fast = encodeBatchWithRows(header, rows);
  const reference = encodeBatch({ ...header, rows: expected });
  assert.deepEqual(ChangeBatch.decode(fast), ChangeBatch.decode(reference));
  assert.equal(Buffer.from(fast).toString("hex"), Buffer.from(reference).toString("hex"));
  // With source transactions in the header (written before the rows, still the same message).
  const sourceTxns = [
    { gtid: "0-1-5", startFile: "mysql-bin.000001", startPos: 4n, commitTime: 1n, firstRow: 0 },
    { gtid: "0-1-6", startFile: "mysql-bin.000001", startPos: 900n, commitTime: 2n, firstRow: 3 },
  ];
  assert.deepEqual(
    ChangeBatch.decode(encodeBatchWithRows({ ...header, sourceTxns }, rows)),
    ChangeBatch.decode(encodeBatch({ ...header, sourceTxns, rows: expected })),
  );
});

test("RowsWriter reset starts a new batch", () => {
  const w = new RowsWriter();
  w.writeRow(Op.OP_CREATE, 0, [ValueKind.Int], ["id"], null, { id: 1 });
  assert.ok(w.length > 0);
  w.reset();
  assert.equal(w.length, 0);
  w.writeRow(Op.OP_CREATE, 5, [ValueKind.Text], ["n"], null, { n: "x" });
  const decoded = ChangeBatch.decode(w.finish());
  assert.equal(decoded.rows.length, 1);
  assert.equal(decoded.rows[0]!.rowIndex, 5);
});
