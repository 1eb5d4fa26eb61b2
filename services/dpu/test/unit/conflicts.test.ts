// Write sets and lanes: transactions that share a key stay together and in order, others spread.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { splitLanes, writeSet } from "../../dist/conflicts.js";
import { change, targetTable } from "../support/changes.js";

const t = targetTable("shop", "users", ["id", "email", "note"], ["id"], "primary", [["email"]]);
const keyless = targetTable("shop", "log", ["a"], []);

describe("conflicts", () => {
  test("a write set holds the primary key and every unique key of both images; NULLs never conflict", () => {
    const ws = writeSet(
      change(t, "u", { id: 1n, email: "A@x.org", note: null }, { id: 1n, email: "b@x.org", note: null }),
    );
    assert.equal(ws.length, 4);
    assert.ok(
      ws.some((k) => k.endsWith("\u0001a@x.org")),
      "text keys compare case-insensitively",
    );
    const noEmail = writeSet(change(t, "c", null, { id: 2n, email: null, note: "" }));
    assert.equal(noEmail.length, 1);
    assert.equal(writeSet(change(keyless, "c", null, { a: 1n })).length, 1);
  });

  test("transactions linked through a key (even transitively) share a lane and keep their order", () => {
    const txns = [
      { seq: 1, changes: [change(t, "c", null, { id: 1n, email: "a@x", note: "" })] },
      { seq: 2, changes: [change(t, "c", null, { id: 2n, email: "b@x", note: "" })] },
      // 3 takes the email 1 had: it must follow 1 (a unique key conflict, not a primary key one)
      {
        seq: 3,
        changes: [
          change(t, "u", { id: 1n, email: "a@x", note: "" }, { id: 1n, email: "z@x", note: "" }),
          change(t, "c", null, { id: 3n, email: "A@X", note: "" }),
        ],
      },
      { seq: 4, changes: [change(t, "c", null, { id: 4n, email: "d@x", note: "" })] },
      // 5 touches 3's row and 2's row: 1, 2, 3 and 5 become one component
      {
        seq: 5,
        changes: [
          change(t, "d", { id: 3n, email: "A@X", note: "" }, null),
          change(t, "d", { id: 2n, email: "b@x", note: "" }, null),
        ],
      },
    ];
    const lanes = splitLanes(txns, 4);
    const withOne = lanes.find((l) => l.txnSeqs.includes(1))!;
    assert.deepEqual(withOne.txnSeqs, [1, 2, 3, 5]);
    const order = withOne.components[0]!.map((c) => c.seq);
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      "source order within the component",
    );
    assert.deepEqual(
      lanes.filter((l) => l !== withOne).flatMap((l) => l.txnSeqs),
      [4],
    );
  });

  test("changes of a keyless table all go to one lane; one lane keeps everything in order", () => {
    const txns = [1, 2, 3].map((i) => ({ seq: i, changes: [change(keyless, "c", null, { a: BigInt(i) })] }));
    assert.equal(splitLanes(txns, 3).length, 1);
    const one = splitLanes(
      [4, 5].map((i) => ({
        seq: i,
        changes: [change(t, "c", null, { id: BigInt(i), email: null, note: "" })],
      })),
      1,
    );
    assert.equal(one.length, 1);
    assert.deepEqual(one[0]!.txnSeqs, [4, 5]);
  });

  test("independent transactions spread evenly over the lanes", () => {
    const txns = Array.from({ length: 40 }, (_, i) => ({
      seq: i + 1,
      changes: [change(t, "c", null, { id: BigInt(i), email: `${i}@x`, note: "" })],
    }));
    const lanes = splitLanes(txns, 4);
    assert.deepEqual(
      lanes.map((l) => l.rows),
      [10, 10, 10, 10],
    );
  });
});
