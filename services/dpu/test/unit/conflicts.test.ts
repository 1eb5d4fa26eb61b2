// Write sets and lanes: transactions that share a key stay on one lane and in order, others spread;
// a transaction that depends on two lanes joins them or ends the segment.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { scheduleLanes, writeSet } from "../../dist/conflicts.js";
import { change, targetTable } from "../support/changes.js";

const t = targetTable("shop", "users", ["id", "email", "note"], ["id"], "primary", [["email"]]);
const keyless = targetTable("shop", "log", ["a"], []);

describe("conflicts", () => {
  test("a write set holds the primary key and every unique key of both images, each once; NULLs never conflict", () => {
    const ws = writeSet(
      change(t, "u", { id: 1n, email: "A@x.org", note: null }, { id: 1n, email: "b@x.org", note: null }),
    );
    assert.equal(ws.length, 3, "the id both images have, and both emails");
    assert.equal(new Set(ws).size, 3);
    assert.ok(
      ws.some((k) => k.endsWith("\u0001a@x.org")),
      "text keys compare case-insensitively",
    );
    const noEmail = writeSet(change(t, "c", null, { id: 2n, email: null, note: "" }));
    assert.equal(noEmail.length, 1);
    assert.equal(writeSet(change(keyless, "c", null, { a: 1n })).length, 1);
    // Keys of different tables never meet, even with equal values; a table described again (a new
    // TargetTable object for the same name) has the same keys.
    const other = targetTable("shop", "orders", ["id", "email", "note"], ["id"], "primary", [["email"]]);
    const again = targetTable("shop", "users", ["id", "email", "note"], ["id"], "primary", [["email"]]);
    const img = { id: 7n, email: "q@x", note: "" };
    const [a] = writeSet(change(t, "c", null, img));
    const [b] = writeSet(change(other, "c", null, img));
    const [c] = writeSet(change(again, "c", null, img));
    assert.notEqual(a, b);
    assert.equal(a, c);
  });

  test("one single-column key: the key of each image, once; a NULL key (a unique key) writes none", () => {
    const pk = targetTable("shop", "items", ["id", "v"], ["id"], "primary", []);
    const [k1] = writeSet(change(pk, "c", null, { id: 1, v: "a" }));
    assert.deepEqual(
      writeSet(change(pk, "u", { id: 1, v: "a" }, { id: 1, v: "b" })),
      [k1],
      "the key kept: once",
    );
    const moved = writeSet(change(pk, "u", { id: 1, v: "a" }, { id: 2, v: "a" }));
    assert.equal(moved.length, 2, "the key changed: both");
    assert.equal(moved[0], k1);
    assert.deepEqual(writeSet(change(pk, "d", { id: 1, v: "a" }, null)), [k1]);
    assert.deepEqual(writeSet(change(pk, "c", null, { id: 2, v: "a" })), [moved[1]]);
    const byEmail = targetTable("shop", "people", ["email"], ["email"], "unique");
    assert.deepEqual(writeSet(change(byEmail, "c", null, { email: null })), []);
    assert.deepEqual(
      writeSet(change(byEmail, "u", { email: null }, { email: "A@x " })),
      writeSet(change(byEmail, "c", null, { email: "a@x" })),
      "compared as a case-insensitive collation compares",
    );
  });

  const row = (id: number, email: string | null = null) => ({ id: BigInt(id), email, note: "" });
  const unit = (seq: number, ...changes: ReturnType<typeof change>[]) => ({ seq, row: 0, changes });
  const seqsOf = (lane: { units: { seq: number }[] }) => lane.units.map((u) => u.seq);

  test("a transaction goes to the lane of those it shares a key with (a unique key too), in source order", () => {
    const txns = [
      unit(1, change(t, "c", null, row(1, "a@x"))),
      unit(2, change(t, "c", null, row(2, "b@x"))),
      // 3 takes the email 1 had: it must follow 1 (a unique key conflict, not a primary key one)
      unit(3, change(t, "u", row(1, "a@x"), row(1, "z@x")), change(t, "c", null, row(3, "A@X"))),
      unit(4, change(t, "c", null, row(4, "d@x"))),
      unit(5, change(t, "d", row(3, "A@X"), null)),
    ];
    const [seg, ...more] = scheduleLanes(txns, 4, 1000);
    assert.equal(more.length, 0, "one segment");
    const withOne = seg!.lanes.find((l) => seqsOf(l).includes(1))!;
    assert.deepEqual(seqsOf(withOne), [1, 3, 5], "1, 3 and 5 share keys: one lane, in source order");
    assert.deepEqual(
      withOne.changes.map((c) => Number((c.after ?? c.before)!.id)),
      [1, 1, 3, 3],
      "their changes, in source order",
    );
    assert.deepEqual(seg!.lanes.map(seqsOf).sort(), [[1, 3, 5], [2], [4]]);
  });

  test("a transaction that depends on two lanes joins them while the segment is small, else ends it", () => {
    const txns = [
      unit(1, change(t, "c", null, row(1))),
      unit(2, change(t, "c", null, row(2))),
      unit(3, change(t, "c", null, row(3))),
      // depends on 1 and 2, which went to different lanes
      unit(4, change(t, "d", row(1), null), change(t, "d", row(2), null)),
      unit(5, change(t, "c", null, row(5))),
    ];
    const joined = scheduleLanes(txns, 2, 1000);
    assert.equal(joined.length, 1, "small: one segment");
    const lanes = joined[0]!.lanes.map(seqsOf);
    const big = lanes.find((l) => l.includes(4))!;
    assert.deepEqual(
      big.filter((s) => s !== 5 && s !== 3),
      [1, 2, 4],
      "1 and 2's lanes joined, 4 after both, source order kept",
    );
    assert.equal(lanes.flat().length, 5);

    const cut = scheduleLanes(txns, 2, 2);
    assert.deepEqual(
      cut.map((s) => s.end),
      [3, 5],
      "large enough: a new segment starts at 4",
    );
    assert.deepEqual(cut[0]!.lanes.map(seqsOf).sort(), [[1, 3], [2]]);
    assert.deepEqual(cut[1]!.lanes.map(seqsOf).sort(), [[4], [5]]);
  });

  test("changes of a keyless table all go to one lane; one lane keeps everything in order", () => {
    const txns = [1, 2, 3].map((i) => unit(i, change(keyless, "c", null, { a: BigInt(i) })));
    const [seg] = scheduleLanes(txns, 3, 1000);
    assert.equal(seg!.lanes.length, 1);
    const one = scheduleLanes(
      [unit(4, change(t, "c", null, row(4))), unit(5, change(t, "c", null, row(5)))],
      1,
      0,
    );
    assert.equal(one.length, 1);
    assert.deepEqual(one[0]!.lanes.map(seqsOf), [[4, 5]]);
    assert.equal(one[0]!.lanes[0]!.changes[0]!.keys, null, "one lane: no keys worked out");
  });

  test("independent transactions spread evenly over the lanes", () => {
    const txns = Array.from({ length: 40 }, (_, i) => unit(i + 1, change(t, "c", null, row(i, `${i}@x`))));
    const [seg] = scheduleLanes(txns, 4, 1000);
    assert.deepEqual(
      seg!.lanes.map((l) => l.rows),
      [10, 10, 10, 10],
    );
  });
});
