// Fuzz: bytes that are not what the decoders expect. Random bytes, every truncation and random bit
// flips of valid envelopes, and length fields that claim gigabytes go into every decoder a consumer
// uses on stream bytes; each returns a value or throws the project's DataError with a reason, never
// another error, never a hang, never an allocation the size a length field claims. Seeded: the seed
// is in every failure message, and DFS_TEST_SEED=<seed> repeats a run exactly.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DataError, type Random, seededRandom, testSeed } from "@dfs/common";
import { ChangeBatch, Op } from "@dfs/proto";
import {
  decodeBatch,
  decodeChanges,
  decodeDdl,
  decodeHeartbeat,
  encodeBatch,
  encodeDdl,
  encodeHeartbeat,
} from "../../dist/batch.js";
import { decodeBatchChanges, decodeRowField, splitBatch } from "../../dist/batch-reader.js";
import { toValue, ValueKind } from "../../dist/values.js";

const SEED = testSeed();
/** Inputs per kind of mutation; the whole file stays within TIME_BUDGET_MS. */
const CASES = 2_000;
const TIME_BUDGET_MS = 20_000;
/** No single decode of a small input may take this long (a loop that does not advance would). */
// A hang or a blow-up (a length field read as a size to allocate), not a speed measurement.
const SLOW_MS = 5_000;

/** Every decoder a consumer runs on bytes from the stream, by name. */
const DECODERS: Record<string, (b: Uint8Array) => unknown> = {
  decodeBatchChanges: (b) => decodeBatchChanges(b),
  splitBatch: (b) => {
    const { header, rows } = splitBatch(b);
    const names = header.columns.map((c) => c.name);
    return rows.map((r) => decodeRowField(header, { db: header.db, table: header.table }, names, r));
  },
  "decodeChanges(decodeBatch)": (b) => decodeChanges(decodeBatch(b)),
  decodeDdl: (b) => decodeDdl(b),
  decodeHeartbeat: (b) => decodeHeartbeat(b),
};

function validBatch(r: Random, rows: number): Uint8Array {
  const kinds: [string, ValueKind, () => unknown][] = [
    ["id", ValueKind.Int, () => r.int(1e9) - 5e8],
    ["u", ValueKind.Uint, () => "18446744073709551615"],
    ["f", ValueKind.Float64, () => r.next()],
    ["g", ValueKind.Float32, () => Math.fround(r.next())],
    ["d", ValueKind.Decimal, () => "-12.500000"],
    ["t", ValueKind.Text, () => "é 😀".repeat(r.int(20))],
    ["b", ValueKind.Bytes, () => r.bytes(r.int(40))],
    ["ts", ValueKind.Temporal, () => "2024-02-29 23:59:59.999999"],
    ["j", ValueKind.Json, () => '{"a":[1,2]}'],
    ["n", ValueKind.Text, () => null],
  ];
  const image = () => kinds.map(([, k, v]) => toValue(k, v()));
  return encodeBatch(
    ChangeBatch.fromPartial({
      sourceId: "src",
      serverUuid: "mariadb:1",
      db: "shop",
      table: "orders",
      columns: kinds.map(([name]) => ({ name, type: "x", charset: "" })),
      primaryKey: ["id"],
      position: {
        gtid: "0-1-9",
        file: "mysql-bin.000001",
        pos: 99n,
        startFile: "",
        startPos: 0n,
        sortable: "",
      },
      scn: 7n,
      txnOrdinal: 3n,
      txnLast: true,
      captureTimeMs: 1_700_000_000_000n,
      sourceTxns: [
        { gtid: "0-1-9", startFile: "mysql-bin.000001", startPos: 4n, commitTime: 1n, firstRow: 0 },
      ],
      rows: Array.from({ length: rows }, (_, i) => ({
        op: [Op.OP_CREATE, Op.OP_UPDATE, Op.OP_DELETE][i % 3]!,
        rowIndex: i,
        before: i % 3 === 0 ? [] : image(),
        after: i % 3 === 2 ? [] : image(),
        sourceTxn: 0,
      })),
    }),
  );
}

const VALID_DDL = encodeDdl({
  sourceId: "src",
  serverUuid: "mariadb:1",
  db: "shop",
  statement: "ALTER TABLE orders ADD COLUMN z INT",
  position: { gtid: "", file: "mysql-bin.000001", pos: 120n, startFile: "", startPos: 0n, sortable: "" },
  scn: 8n,
  commitTime: 1n,
  captureTimeMs: 2n,
  tables: [{ db: "shop", table: "orders" }],
});
const VALID_HEARTBEAT = encodeHeartbeat({
  sourceId: "src",
  position: undefined,
  scn: 9n,
  sourceTimeMs: 5n,
  captureTimeMs: 6n,
});

let spentMs = 0;

/**
 * Runs every decoder on `input`: each returns, or throws DataError with a reason. Anything else
 * fails the test naming the seed, the decoder, the case and the input.
 */
function feed(what: string, input: Uint8Array, outcomes: Map<string, number>): void {
  for (const [name, decode] of Object.entries(DECODERS)) {
    const started = performance.now();
    let outcome = "decoded";
    try {
      decode(input);
    } catch (err) {
      if (!(err instanceof DataError) || err.message.length < 10)
        assert.fail(
          `seed ${SEED}: ${name} on ${what} threw ${String(err)} (${(err as Error)?.constructor?.name}), not a DataError with a reason; input ${Buffer.from(input).toString("hex").slice(0, 400)}`,
        );
      outcome = "DataError";
    }
    const ms = performance.now() - started;
    spentMs += ms;
    assert.ok(ms < SLOW_MS, `seed ${SEED}: ${name} on ${what} took ${ms.toFixed(0)} ms`);
    const key = `${name}: ${outcome}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
}

function withinBudget(): boolean {
  return spentMs < TIME_BUDGET_MS;
}

test(`fuzz (seed ${SEED}): random bytes into every decoder`, () => {
  const r = seededRandom(SEED);
  const outcomes = new Map<string, number>();
  for (let i = 0; i < CASES && withinBudget(); i++) feed(`random bytes #${i}`, r.bytes(r.int(600)), outcomes);
  // Random bytes are hardly ever a ChangeBatch with a usable header: the hot path refuses nearly all.
  assert.ok(
    (outcomes.get("decodeBatchChanges: DataError") ?? 0) > CASES * 0.9,
    `seed ${SEED}: ${JSON.stringify([...outcomes])}`,
  );
});

test(`fuzz (seed ${SEED}): every truncation of valid envelopes`, () => {
  const r = seededRandom(SEED + 1);
  const outcomes = new Map<string, number>();
  for (const valid of [validBatch(r, 3), VALID_DDL, VALID_HEARTBEAT]) {
    for (let n = 0; n < valid.length && withinBudget(); n++)
      feed(`a valid envelope cut to ${n} of ${valid.length} bytes`, valid.subarray(0, n), outcomes);
  }
  // A cut inside a row is always refused by the hot path: it never yields a shorter row.
  const full = Buffer.from(validBatch(r, 4));
  const spans = splitBatch(full).rows.map((row) => {
    const start = (row as Buffer).byteOffset - full.byteOffset;
    return [start, start + row.byteLength] as const;
  });
  assert.equal(spans.length, 4);
  for (const [start, end] of spans)
    for (let n = start + 1; n < end; n++)
      assert.throws(
        () => decodeBatchChanges(full.subarray(0, n)),
        DataError,
        `seed ${SEED}: a cut at ${n}, inside the row at [${start}, ${end}), must be refused`,
      );
});

test(`fuzz (seed ${SEED}): bit flips and byte changes of valid envelopes`, () => {
  const r = seededRandom(SEED + 2);
  const outcomes = new Map<string, number>();
  const originals = [validBatch(r, 2), validBatch(r, 1), VALID_DDL, VALID_HEARTBEAT];
  for (let i = 0; i < CASES && withinBudget(); i++) {
    const b = Buffer.from(r.pick(originals));
    const flips = 1 + r.int(4);
    for (let f = 0; f < flips; f++) {
      const at = r.int(b.length);
      if (r.chance(0.5)) b[at] = b[at]! ^ (1 << r.int(8));
      else b[at] = r.pick([0x00, 0x7f, 0x80, 0xff, r.int(256)]);
    }
    feed(`mutation #${i} (${flips} bytes changed)`, b, outcomes);
  }
});

/** A varint as bytes. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

test(`fuzz (seed ${SEED}): length fields that claim up to 4 GB allocate nothing of that size`, () => {
  const huge = [0xffff_ffff, 0x7fff_ffff, 2 ** 31, 1 << 30, 64 * 1024 * 1024];
  const valid = Buffer.from(validBatch(seededRandom(SEED + 3), 1));
  const header = Buffer.from(
    encodeBatch(
      ChangeBatch.fromPartial({
        db: "shop",
        table: "orders",
        columns: [{ name: "id", type: "int", charset: "" }],
      }),
    ),
  );
  const cases: [string, Buffer][] = [];
  for (const n of huge) {
    // A row field (15), a db string (3), a column (6), a value inside a row, a bytes value.
    cases.push([
      `row field of ${n} bytes`,
      Buffer.concat([header, Buffer.from([(15 << 3) | 2, ...varint(n), 8, 1])]),
    ]);
    cases.push([`db of ${n} bytes`, Buffer.from([(3 << 3) | 2, ...varint(n), 0x61, 0x62])]);
    cases.push([`column of ${n} bytes`, Buffer.from([(6 << 3) | 2, ...varint(n), 0x0a, 0x01, 0x61])]);
    const row = [8, 1, (4 << 3) | 2, ...varint(n), 0x10, 0x02];
    cases.push([
      `value of ${n} bytes`,
      Buffer.concat([header, Buffer.from([(15 << 3) | 2, row.length, ...row])]),
    ]);
    const value = [(8 << 3) | 2, ...varint(n), 1, 2, 3];
    const row2 = [8, 1, (4 << 3) | 2, value.length, ...value];
    cases.push([
      `bytes value of ${n} bytes`,
      Buffer.concat([header, Buffer.from([(15 << 3) | 2, row2.length, ...row2])]),
    ]);
    cases.push([`ddl statement of ${n} bytes`, Buffer.from([(4 << 3) | 2, ...varint(n), 0x41])]);
    cases.push([
      `a valid batch followed by a field of ${n} bytes`,
      Buffer.concat([valid, Buffer.from([(16 << 3) | 2, ...varint(n)])]),
    ]);
  }
  globalThis.gc?.();
  const before = process.memoryUsage();
  for (const [what, input] of cases) {
    for (const [name, decode] of Object.entries(DECODERS)) {
      try {
        decode(input);
      } catch (err) {
        assert.ok(err instanceof DataError, `seed ${SEED}: ${name} on ${what}: ${String(err)}`);
        continue;
      }
      // A decoder that never reads the field (a heartbeat skips a batch's row whole) may succeed;
      // the change decoders read every field of a batch and must refuse.
      assert.ok(
        name === "decodeDdl" || name === "decodeHeartbeat" || what.startsWith("ddl"),
        `seed ${SEED}: ${name} decoded ${what} from ${input.length} bytes`,
      );
    }
  }
  const after = process.memoryUsage();
  const grown = after.arrayBuffers - before.arrayBuffers + (after.heapUsed - before.heapUsed);
  assert.ok(grown < 64 * 1024 * 1024, `memory grew by ${(grown / 1024 / 1024).toFixed(0)} MB`);
});

test("fuzz: valid envelopes still decode, the same by both decoders", () => {
  const r = seededRandom(SEED + 4);
  for (let i = 0; i < 50; i++) {
    const bytes = validBatch(r, 1 + r.int(5));
    const fast = decodeBatchChanges(bytes).changes;
    const slow = decodeChanges(decodeBatch(bytes));
    assert.equal(fast.length, slow.length);
    for (let k = 0; k < fast.length; k++) {
      assert.equal(fast[k]!.op, slow[k]!.op);
      assert.equal(fast[k]!.rowIndex, slow[k]!.rowIndex);
      assert.deepEqual(Object.keys(fast[k]!.after ?? {}), Object.keys(slow[k]!.after ?? {}));
    }
  }
  assert.equal(decodeDdl(VALID_DDL).statement, "ALTER TABLE orders ADD COLUMN z INT");
  assert.equal(decodeHeartbeat(VALID_HEARTBEAT).scn, 9n);
});
