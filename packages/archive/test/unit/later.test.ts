// Flashback of a range that is not the archive's tail: which later changes touched its rows.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Position } from "@dfs/codec";
import { Op } from "@dfs/proto";
import { tempDir } from "@dfs/testkit";
import { ArchiveReader, ArchiveWriter, laterChanges } from "../../dist/index.js";
import { batch, row } from "../support/batches.js";

function archive(rollEvery = 0) {
  const dir = tempDir();
  const w = ArchiveWriter.open({
    dir,
    // A tiny size limit starts a new file at each write: "later" must then cross files.
    period: rollEvery > 0 ? "size" : "day",
    maxFileBytes: rollEvery > 0 ? rollEvery : 1 << 30,
    retention: {},
    consumer: "c",
  });
  let seq = 0;
  const add = (pos: number, rows: Parameters<typeof batch>[3], table = "t") => {
    seq++;
    w.write(batch(seq, 1_700_000_000 + seq, pos, rows, table), { lowWater: seq });
  };
  return { dir, w, add };
}

for (const [name, rollEvery] of [
  ["one file", 0],
  ["a file per write", 1],
] as const)
  test(`later changes to a range's rows are found by key, and by whole image without a key (${name})`, () => {
    const { dir, w, add } = archive(rollEvery);
    add(100, [
      { op: Op.OP_CREATE, after: row(1n, "a") },
      { op: Op.OP_CREATE, after: row(2n, "a") },
    ]);
    add(200, [{ op: Op.OP_CREATE, after: row(3n, "a") }]);
    // The range: 300 and 400.
    add(300, [
      { op: Op.OP_UPDATE, before: row(1n, "a"), after: row(1n, "b") },
      { op: Op.OP_DELETE, before: row(2n, "a") },
    ]);
    add(400, [{ op: Op.OP_CREATE, after: row(7n, "x") }], "nokey");
    // After it: key 3 (not in the range), key 1 again, key 2 inserted again, an unrelated keyless row,
    // and the keyless row the range inserted, updated.
    add(500, [{ op: Op.OP_UPDATE, before: row(3n, "a"), after: row(3n, "c") }]);
    add(600, [{ op: Op.OP_UPDATE, before: row(1n, "b"), after: row(1n, "z") }]);
    add(700, [{ op: Op.OP_CREATE, after: row(2n, "new") }]);
    add(800, [{ op: Op.OP_CREATE, after: row(9n, "x") }], "nokey");
    add(900, [{ op: Op.OP_UPDATE, before: row(7n, "x"), after: row(7n, "y") }], "nokey");
    add(950, [{ op: Op.OP_UPDATE, before: row(1n, "z"), after: row(1n, "zz") }]);
    w.close();
    const reader = new ArchiveReader(dir);
    const range = [
      ...reader.entries({
        fromPos: Position.parse("mysql-bin.000001:300"),
        toPos: Position.parse("mysql-bin.000001:500"),
      }),
    ];
    assert.equal(range.length, 3);
    const later = laterChanges(reader, range);
    assert.deepEqual(
      later.map((l) => [l.table, l.row, l.op, l.position]),
      [
        ["shop.t", '["1"]', "u", "mysql-bin.000001:600"],
        ["shop.t", '["2"]', "c", "mysql-bin.000001:700"],
        [
          "shop.nokey",
          JSON.stringify(["7", row(7n, "x")[1], row(7n, "x")[2], row(7n, "x")[3], "0x00ff27", "x"]),
          "u",
          "mysql-bin.000001:900",
        ],
      ],
    );

    // The tail of the archive has nothing after it; nor has a range whose rows nobody touched since.
    const tail = [...reader.entries({ fromPos: Position.parse("mysql-bin.000001:900") })];
    assert.equal(tail.length, 2);
    assert.deepEqual(laterChanges(reader, tail), []);
    const untouched = [...reader.entries({ toPos: Position.parse("mysql-bin.000001:300"), key: '["3"]' })];
    assert.equal(untouched.length, 1);
    assert.deepEqual(
      laterChanges(reader, untouched).map((l) => l.position),
      ["mysql-bin.000001:500"],
      "key 3's update at 500 is later than its insert",
    );
    assert.deepEqual(laterChanges(reader, []), []);
  });
