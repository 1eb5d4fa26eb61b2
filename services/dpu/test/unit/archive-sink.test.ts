// The archive sink's exactly-once records, without servers: what a restarted DPU reads back.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ArchiveReader } from "@dfs/archive";
import { decodeBatchChanges, encodeBatch, Position, toValue, ValueKind } from "@dfs/codec";
import { createLogger } from "@dfs/common";
import { ChangeBatch, Op } from "@dfs/proto";
import { tempDir } from "@dfs/testkit";
import { ArchiveSink } from "../../dist/archive/sink.js";
import type { Change, Lane } from "../../dist/sink.js";

const log = createLogger({ level: "fatal", name: "test" });

/** A message's changes (one source transaction per row), as the transaction builder hands them on. */
async function changes(sink: ArchiveSink, seq: number, ids: number[]): Promise<Change[]> {
  const b = ChangeBatch.fromPartial({
    db: "shop",
    table: "t",
    columns: [{ name: "id", type: "bigint(20) unsigned", charset: "" }],
    primaryKey: ["id"],
    txnOrdinal: BigInt(seq),
    txnLast: true,
    commitTime: 1_700_000_000n,
    sourceTxns: ids.map((_, i) => ({
      gtid: `0-1-${seq}${i}`,
      startFile: "mysql-bin.000001",
      startPos: BigInt(seq * 1000 + i),
      commitTime: 1_700_000_000n,
      firstRow: i,
    })),
    rows: ids.map((id, i) => ({
      op: Op.OP_CREATE,
      rowIndex: i,
      sourceTxn: i,
      before: [],
      after: [toValue(ValueKind.Uint, BigInt(id))],
    })),
  });
  const target = await sink.describe({ db: "shop", table: "t" });
  return decodeBatchChanges(encodeBatch(b)).changes.map((d) =>
    Object.assign(d as Change, { seq, target, columns: ["id"], keys: null }),
  );
}

const lane = (cs: Change[], units: { seq: number; row: number }[]): Lane => ({
  changes: cs,
  units,
  rows: cs.length,
});

function sinkAt(dir: string): ArchiveSink {
  return new ArchiveSink({
    dir,
    period: "day",
    maxFileBytes: 1 << 30,
    retention: {},
    consumer: "src:dpu-default",
    log,
  });
}

test("a whole group moves the low-water mark; a part of a capture group records its transactions", async () => {
  const dir = tempDir();
  const sink = sinkAt(dir);
  assert.deepEqual(await sink.open(), { lowWater: 0, applied: new Set() });
  await sink.applyGroup({
    lanes: [
      lane(await changes(sink, 1, [1, 2]), [
        { seq: 1, row: 0 },
        { seq: 1, row: 1 },
      ]),
    ],
    lastSeq: 1,
    whole: true,
  });
  // Message 2 holds two source transactions; the group ends after the first.
  const two = await changes(sink, 2, [3, 4]);
  await sink.applyGroup({ lanes: [lane([two[0]!], [{ seq: 2, row: 0 }])], lastSeq: 1, whole: false });
  await sink.close();

  const again = sinkAt(dir);
  const cp = await again.open();
  assert.deepEqual(cp, { lowWater: 1, applied: new Set(["2:0"]) }, "resumes after message 1, skipping 2:0");
  await again.applyGroup({ lanes: [lane([two[1]!], [{ seq: 2, row: 1 }])], lastSeq: 2, whole: false });
  await again.flush();
  await again.applyDdl(
    {
      db: "shop",
      statement: "ALTER TABLE t ADD x INT",
      tables: [{ db: "shop", table: "t" }],
      gtid: "0-1-9",
      position: Position.parse("mysql-bin.000001:9000"),
      commitTime: 1_700_000_001,
    },
    3,
  );
  await again.close();
  const last = sinkAt(dir);
  assert.deepEqual(await last.open(), { lowWater: 3, applied: new Set() });
  await last.close();

  const entries = [...new ArchiveReader(dir).entries()];
  assert.deepEqual(
    entries.map((e) => (e.kind === "ddl" ? e.statement : String(e.change.after!.id))),
    ["1", "2", "3", "4", "ALTER TABLE t ADD x INT"],
  );
  assert.equal(entries[4]!.txn.position.toString(), "mysql-bin.000001:9000");
});
