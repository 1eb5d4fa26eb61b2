// The unit builder alone, over a fake stream and sink: barriers, limits, gaps, redeliveries and
// what it dead-letters (no servers).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeBatch, encodeDdl, encodeHeartbeat, toValue, ValueKind } from "@dfs/codec";
import { ChangeBatch, Op } from "@dfs/proto";
import type { Rejected } from "../../dist/sink.js";
import type { MessageSource, StreamMessage } from "../../dist/stream-reader.js";
import { UnitBuilder } from "../../dist/unit-builder.js";
import { targetTable } from "../support/changes.js";

function batch(table: string, ids: number[], op = Op.OP_CREATE): Uint8Array {
  return encodeBatch(
    ChangeBatch.fromPartial({
      db: "shop",
      table,
      columns: [{ name: "id", type: "int", charset: "" }],
      captureTimeMs: 1000n,
      position: { file: "mysql-bin.000001", pos: 100n, gtid: "", startFile: "", startPos: 0n, sortable: "" },
      rows: ids.map((id, i) => ({ op, rowIndex: i, before: [], after: [toValue(ValueKind.Int, id)] })),
    }),
  );
}

/** A delivered queue; `stored` says which sequences the stream still holds. */
class FakeSource implements MessageSource {
  acked: number[] = [];
  constructor(
    private queue: StreamMessage[],
    private readonly stored: (seq: number) => boolean = () => true,
  ) {}
  peek() {
    return this.queue[0];
  }
  take() {
    return this.queue.shift()!;
  }
  async anyStored(from: number, to: number) {
    for (let s = from; s < to; s++) if (this.stored(s)) return true;
    return false;
  }
}

function msg(source: () => FakeSource, seq: number, kind: string, data: Uint8Array): StreamMessage {
  return { seq, kind, data, ack: () => source().acked.push(seq) };
}

function builder(source: FakeSource, o: { missing?: string[]; maxMessages?: number } = {}) {
  const dead: Rejected[] = [];
  const deadMessages: [string, number, string][] = [];
  const b = new UnitBuilder({
    source,
    sink: {
      describe: async (ref) =>
        o.missing?.includes(ref.table) ? null : targetTable("shop", ref.table, ["id"], ["id"]),
    },
    maxMessages: o.maxMessages ?? 100,
    maxRows: 10_000,
    deadLetter: async (r) => {
      dead.push(...r);
    },
    deadLetterMessage: async (t, m, error) => {
      deadMessages.push([t.table, m.seq, error]);
    },
  });
  return { b, dead, deadMessages };
}

describe("UnitBuilder", () => {
  test("messages up to a DDL form a unit; the DDL comes alone; heartbeats carry the lag", async () => {
    let src!: FakeSource;
    const s = () => src;
    src = new FakeSource([
      msg(s, 1, "batch", batch("a", [1, 2])),
      msg(
        s,
        2,
        "heartbeat",
        encodeHeartbeat({
          sourceId: "x",
          position: undefined,
          scn: 2n,
          sourceTimeMs: 5000n,
          captureTimeMs: 5001n,
        }),
      ),
      msg(s, 3, "batch", batch("b", [3])),
      msg(
        s,
        4,
        "ddl",
        encodeDdl({
          sourceId: "x",
          serverUuid: "",
          db: "shop",
          statement: "ALTER TABLE a ADD c INT",
          position: undefined,
          scn: 4n,
          commitTime: 0n,
          captureTimeMs: 0n,
          tables: [{ db: "shop", table: "a" }],
        }),
      ),
      msg(s, 5, "batch", batch("a", [4])),
    ]);
    const { b } = builder(src);
    const u1 = await b.next(0);
    assert.equal(u1?.kind, "changes");
    if (u1?.kind !== "changes") return;
    assert.equal(u1.lastSeq, 3);
    assert.deepEqual(
      u1.changes.map((c) => [c.seq, c.after?.id, c.target.ref.table]),
      [
        [1, 1n, "a"],
        [1, 2n, "a"],
        [3, 3n, "b"],
      ],
    );
    assert.equal(u1.heartbeatSourceMs, 5000);
    assert.equal(u1.position?.toString(), "mysql-bin.000001:100");
    const u2 = await b.next(3);
    assert.equal(u2?.kind, "ddl");
    assert.deepEqual(u2?.kind === "ddl" && u2.ddl.tables, [{ db: "shop", table: "a" }]);
    const u3 = await b.next(4);
    assert.equal(u3?.kind === "changes" && u3.lastSeq, 5);
    assert.equal(await b.next(5), null, "nothing delivered: no unit");
  });

  test("maxMessages bounds a unit", async () => {
    let src!: FakeSource;
    src = new FakeSource([1, 2, 3, 4, 5].map((i) => msg(() => src, i, "batch", batch("a", [i]))));
    const { b } = builder(src, { maxMessages: 2 });
    const units = [];
    for (let seq = 0; ; ) {
      const u = await b.next(seq);
      if (u?.kind !== "changes") break;
      units.push(u.messages.map((m) => m.seq));
      seq = u.lastSeq;
    }
    assert.deepEqual(units, [[1, 2], [3, 4], [5]]);
  });

  test("a redelivery at or below the checkpoint is acknowledged and dropped", async () => {
    let src!: FakeSource;
    src = new FakeSource([1, 2, 3].map((i) => msg(() => src, i, "batch", batch("a", [i]))));
    const { b } = builder(src);
    const u = await b.next(2);
    assert.deepEqual(src.acked, [1, 2]);
    assert.equal(u?.kind === "changes" && u.lastSeq, 3);
  });

  test("a gap whose messages are still stored means: read again; a gap of deleted messages is passed", async () => {
    let src!: FakeSource;
    src = new FakeSource([msg(() => src, 5, "batch", batch("a", [5]))], (seq) => seq === 3);
    const { b } = builder(src);
    assert.deepEqual(await b.next(1), { kind: "reread", seenSeq: 5 });
    let gone!: FakeSource;
    gone = new FakeSource([msg(() => gone, 5, "batch", batch("a", [5]))], () => false);
    const u = await builder(gone).b.next(1);
    assert.equal(u?.kind === "changes" && u.lastSeq, 5);
  });

  test("contiguous messages are applied before a gap", async () => {
    let src!: FakeSource;
    src = new FakeSource([2, 3, 7].map((i) => msg(() => src, i, "batch", batch("a", [i]))));
    const u = await builder(src).b.next(1);
    assert.deepEqual(u?.kind === "changes" && u.messages.map((m) => m.seq), [2, 3]);
  });

  test("an unknown op dead-letters the whole message with the reason; the rest goes on", async () => {
    let src!: FakeSource;
    src = new FakeSource([
      msg(() => src, 1, "batch", batch("a", [1], 9 as Op)),
      msg(() => src, 2, "batch", batch("a", [2])),
    ]);
    const { b, deadMessages } = builder(src);
    const u = await b.next(0);
    assert.deepEqual(
      deadMessages.map(([t, seq]) => [t, seq]),
      [["a", 1]],
    );
    assert.match(deadMessages[0]![2], /unknown op 9/);
    assert.deepEqual(u?.kind === "changes" && u.changes.map((c) => c.after?.id), [2n]);
    assert.equal(b.deadLettered, 1);
  });

  test("rows of a table the target lacks (and cannot get) are dead-lettered, not applied", async () => {
    let src!: FakeSource;
    src = new FakeSource([
      msg(() => src, 1, "batch", batch("gone", [1, 2])),
      msg(() => src, 2, "batch", batch("a", [3])),
    ]);
    const { b, dead } = builder(src, { missing: ["gone"] });
    const u = await b.next(0);
    assert.deepEqual(
      dead.map((r) => [r.change.seq, r.change.after?.id, r.errno]),
      [
        [1, 1n, 1146],
        [1, 2n, 1146],
      ],
    );
    assert.match(dead[0]!.error, /does not exist/);
    assert.deepEqual(u?.kind === "changes" && u.changes.map((c) => c.after?.id), [3n]);
  });
});
