// The hot-path decoder against the generic one: every kind and edge gives the same value (integers
// as numbers where a double holds them exactly), the same ops, row indexes and re-encodable rows.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DataError } from "@dfs/common";
import { ChangeBatch, Op, type RowChange } from "@dfs/proto";
import { decodeChanges, encodeBatch } from "../../dist/batch.js";
import { decodeBatchChanges, splitBatch } from "../../dist/batch-reader.js";
import { encodeBatchWithRows } from "../../dist/rows-writer.js";
import { toValue, ValueKind } from "../../dist/values.js";

const SAMPLES: [ValueKind, unknown][] = [
  [ValueKind.Int, 0],
  [ValueKind.Int, -1],
  [ValueKind.Int, 2 ** 31],
  [ValueKind.Int, -(2 ** 31) - 1],
  [ValueKind.Int, Number.MAX_SAFE_INTEGER],
  [ValueKind.Int, -Number.MAX_SAFE_INTEGER],
  [ValueKind.Int, "9223372036854775807"],
  [ValueKind.Int, "-9223372036854775808"],
  [ValueKind.Int, "9007199254740993"],
  [ValueKind.Uint, 0],
  [ValueKind.Uint, 2 ** 32],
  [ValueKind.Uint, "18446744073709551615"],
  [ValueKind.Uint, "9007199254740992"],
  [ValueKind.Float64, -0],
  [ValueKind.Float64, Math.PI],
  [ValueKind.Float64, 5e-324],
  [ValueKind.Float32, Math.fround(-0.1)],
  [ValueKind.Decimal, "-12.500000"],
  [ValueKind.Text, ""],
  [ValueKind.Text, "é 😀 日本".repeat(50)],
  [ValueKind.Bytes, Buffer.from([0, 255, 0])],
  [ValueKind.Bytes, Buffer.alloc(0)],
  [ValueKind.Temporal, "-838:59:59.000000"],
  [ValueKind.Json, '{"a":[1,2]}'],
  [ValueKind.Text, null],
];

type Row = Omit<RowChange, "sourceTxn"> & { sourceTxn?: number };

function batch(rows: Row[]): ChangeBatch {
  return ChangeBatch.fromPartial({
    sourceId: "s",
    db: "my.db",
    table: "t",
    columns: SAMPLES.map((_, i) => ({ name: `c${i}`, type: "x", charset: "" })),
    primaryKey: ["c0"],
    txnOrdinal: 12n,
    txnLast: true,
    position: {
      gtid: "0-1-2",
      file: "mysql-bin.000001",
      pos: 99n,
      startFile: "",
      startPos: 0n,
      sortable: "",
    },
    rows,
  });
}

const image = (_variant: number) => SAMPLES.map(([k, v]) => toValue(k, v));

test("the hot-path decoder gives the generic decoder's values for every kind and edge", () => {
  const rows: Row[] = [
    { op: Op.OP_CREATE, rowIndex: 0, before: [], after: image(0) },
    { op: Op.OP_UPDATE, rowIndex: 1, before: image(3), after: image(7), sourceTxn: 1 },
    { op: Op.OP_DELETE, rowIndex: 300, before: image(11), after: [], sourceTxn: 2 },
    { op: Op.OP_READ, rowIndex: 2 ** 20, before: [], after: image(0), sourceTxn: 300 },
  ];
  const bytes = encodeBatch(batch(rows));
  const generic = decodeChanges(ChangeBatch.decode(bytes));
  const { header, changes } = decodeBatchChanges(bytes);
  assert.equal(header.rows.length, 0, "the header leaves the rows out");
  assert.equal(header.txnOrdinal, 12n);
  assert.equal(header.position?.pos, 99n);
  assert.equal(changes.length, generic.length);
  const same = (a: unknown, b: unknown) =>
    typeof a === "number" && typeof b === "bigint"
      ? BigInt(a) === b
      : Object.is(a, b) || assert.deepEqual(a, b) === undefined;
  for (const [i, c] of changes.entries()) {
    const g = generic[i]!;
    assert.deepEqual([c.op, c.rowIndex, c.ref, c.sourceTxn], [g.op, g.rowIndex, g.ref, g.sourceTxn]);
    assert.equal(c.sourceTxn, rows[i]!.sourceTxn ?? 0);
    for (const [mine, theirs] of [
      [c.before, g.before],
      [c.after, g.after],
    ] as const) {
      assert.equal(mine === null, theirs === null);
      if (!mine || !theirs) continue;
      for (const k of Object.keys(theirs))
        assert.ok(same(mine[k], theirs[k]), `${k}: ${String(mine[k])} vs ${String(theirs[k])}`);
    }
    assert.deepEqual(Buffer.from(c.raw), Buffer.from(g.raw), "the raw row is the encoded row");
  }
  // Integers beyond 2^53 stay exact.
  const after = changes[0]!.after!;
  assert.equal(after.c6, 9223372036854775807n);
  assert.equal(after.c7, -9223372036854775808n);
  assert.equal(after.c8, 9007199254740993n);
  assert.equal(after.c11, 18446744073709551615n);
  assert.equal(after.c4, Number.MAX_SAFE_INTEGER);
  assert.ok(Object.is(after.c13, -0));
});

test("a batch re-encoded from its header and one raw row decodes to that row (dead letters)", () => {
  const bytes = encodeBatch(batch([{ op: Op.OP_CREATE, rowIndex: 5, before: [], after: image(2) }]));
  const { header, rows } = splitBatch(bytes);
  const again = ChangeBatch.decode(encodeBatchWithRows(header, rows[0]!));
  assert.deepEqual(again, ChangeBatch.decode(bytes));
});

test("an unknown op and a truncated message are DataErrors", () => {
  const bad = encodeBatch(batch([{ op: 9 as Op, rowIndex: 0, before: [], after: image(0) }]));
  assert.throws(
    () => decodeBatchChanges(bad),
    (e: unknown) => e instanceof DataError && /unknown op 9/.test(e.message),
  );
  const whole = encodeBatch(batch([{ op: Op.OP_CREATE, rowIndex: 0, before: [], after: image(0) }]));
  assert.throws(() => decodeBatchChanges(whole.subarray(0, whole.length - 5)), DataError);
});

test("column names are data: quotes, backslashes, newlines and __proto__ become plain properties", () => {
  for (const names of [
    ['a"b', "c\\d", "e\nf", "constructor", "x`y", "$" + "{z}"],
    ["id", "__proto__", "toString"],
  ]) {
    const bytes = encodeBatch(
      ChangeBatch.fromPartial({
        ...batch([]),
        columns: names.map((name) => ({ name, type: "int", charset: "" })),
        rows: [
          {
            op: Op.OP_CREATE,
            rowIndex: 0,
            before: [],
            after: names.map((_, i) => toValue(ValueKind.Int, i)),
          },
        ],
      }),
    );
    const after = decodeBatchChanges(bytes).changes[0]!.after!;
    assert.deepEqual(Object.keys(after), names);
    for (const [i, n] of names.entries()) assert.equal(Object.getOwnPropertyDescriptor(after, n)?.value, i);
    assert.equal(Object.getPrototypeOf(after), Object.prototype, "no name set the prototype");
  }
});

test("a decoded row's raw field is cut from its message when asked for", () => {
  const bytes = encodeBatch(batch([{ op: Op.OP_CREATE, rowIndex: 7, before: [], after: image(0) }]));
  const { changes } = decodeBatchChanges(bytes);
  const { rows } = splitBatch(bytes);
  assert.deepEqual(Buffer.from(changes[0]!.raw), Buffer.from(rows[0]!));
});
