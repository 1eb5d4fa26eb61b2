import assert from "node:assert/strict";
import { test } from "node:test";
import { DataError, ErrorCode } from "@dfs/common";
import { ChangeBatch, Op } from "@dfs/proto";
import { decodeChanges, encodeBatch, opCode } from "../../dist/batch.js";
import { messageIds } from "../../dist/message-id.js";
import { Position } from "../../dist/position.js";
import { toValue, ValueKind } from "../../dist/values.js";

function batch(rows: Array<Omit<ChangeBatch["rows"][number], "sourceTxn">>): ChangeBatch {
  return ChangeBatch.fromPartial({
    db: "my.db",
    table: "t`1",
    columns: [
      { name: "id", type: "bigint(20) unsigned", charset: "" },
      { name: "v", type: "varchar(10)", charset: "utf8mb4" },
    ],
    primaryKey: ["id"],
    rows,
  });
}

test("decodeChanges gives one change per row with exact values and the table as a reference", () => {
  const b = batch([
    {
      op: Op.OP_CREATE,
      rowIndex: 0,
      before: [],
      after: [toValue(ValueKind.Uint, "18446744073709551615"), toValue(ValueKind.Text, "x")],
    },
    {
      op: Op.OP_UPDATE,
      rowIndex: 1,
      before: [toValue(ValueKind.Uint, 1), toValue(ValueKind.Text, null)],
      after: [toValue(ValueKind.Uint, 1), toValue(ValueKind.Text, "")],
    },
    {
      op: Op.OP_DELETE,
      rowIndex: 2,
      before: [toValue(ValueKind.Uint, 2), toValue(ValueKind.Text, "y")],
      after: [],
    },
    {
      op: Op.OP_READ,
      rowIndex: 3,
      before: [],
      after: [toValue(ValueKind.Uint, 3), toValue(ValueKind.Text, "z")],
    },
  ]);
  const changes = decodeChanges(ChangeBatch.decode(encodeBatch(b)));
  assert.deepEqual(
    changes.map((c) => c.op),
    ["c", "u", "d", "r"],
  );
  assert.deepEqual(changes[0]!.ref, { db: "my.db", table: "t`1" });
  assert.equal(changes[0]!.after!.id, 18446744073709551615n);
  assert.equal(changes[0]!.before, null);
  assert.equal(changes[1]!.before!.v, null, "NULL stays NULL");
  assert.equal(changes[1]!.after!.v, "", "empty stays empty");
  assert.equal(changes[2]!.after, null);
  assert.equal(changes[3]!.rowIndex, 3);
});

test("an unknown op is a DataError, never taken for an insert", () => {
  const b = batch([
    {
      op: 9 as Op,
      rowIndex: 0,
      before: [],
      after: [toValue(ValueKind.Uint, 1), toValue(ValueKind.Text, "x")],
    },
  ]);
  assert.throws(
    () => decodeChanges(ChangeBatch.decode(encodeBatch(b))),
    (e: unknown) =>
      e instanceof DataError && e.code === ErrorCode.DATA_INVALID && /unknown op 9/.test(e.message),
  );
  assert.throws(() => opCode(Op.OP_UNSPECIFIED), DataError);
});

test("an image that does not match the columns is a DataError", () => {
  const b = batch([{ op: Op.OP_CREATE, rowIndex: 0, before: [], after: [toValue(ValueKind.Uint, 1)] }]);
  assert.throws(() => decodeChanges(b), /1 values for 2 columns/);
});

test("message ids are stable per change and distinct between changes", () => {
  const start = Position.at("mysql-bin.000002", 1000);
  const ids = [
    messageIds.batch("src", start, 0),
    messageIds.batch("src", start, 1),
    messageIds.batch("src", start, 0, "abc"),
    messageIds.batch("src", Position.at("mysql-bin.000002", 1001), 0),
    messageIds.batch("other", start, 0),
    messageIds.ddl("src", start),
    messageIds.schema("src", start, 0),
    messageIds.schema("src", start, 1),
    messageIds.heartbeat("src", "journal-1", 5),
    messageIds.deadLetter("src:dpu-default", 7, 0),
    messageIds.deadLetter("src:dpu-default", 7, 1),
  ];
  assert.equal(new Set(ids).size, ids.length, "no two messages share an id");
  assert.equal(
    messageIds.batch("src", start, 3),
    messageIds.batch("src", Position.at("mysql-bin.000002", 1000), 3),
  );
  assert.equal(
    messageIds.batch("src", start, 0),
    "src:0000000002:000000001000:0",
    "the id format never changes",
  );
});
