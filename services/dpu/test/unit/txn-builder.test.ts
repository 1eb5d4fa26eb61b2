// The transaction builder alone, over a fake stream and sink: whole source transactions, group
// limits, barriers, large transactions in parts, gaps, redeliveries, and dead letters (no servers).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeBatch, encodeDdl, encodeHeartbeat, toValue, ValueKind } from "@dfs/codec";
import { createLogger } from "@dfs/common";
import { ChangeBatch, Op } from "@dfs/proto";
import type { Rejected } from "../../dist/sink.js";
import type { MessageSource, StreamMessage } from "../../dist/stream-reader.js";
import { type Group, TxnBuilder } from "../../dist/txn-builder.js";
import { targetTable } from "../support/changes.js";

function batch(
  table: string,
  ids: number[],
  o: { ordinal?: number; last?: boolean; op?: Op; fromRow?: number } = {},
): Uint8Array {
  return encodeBatch(
    ChangeBatch.fromPartial({
      db: "shop",
      table,
      columns: [{ name: "id", type: "int", charset: "" }],
      captureTimeMs: 1000n,
      txnOrdinal: BigInt(o.ordinal ?? ids[0] ?? 0),
      txnLast: o.last ?? true,
      position: { file: "mysql-bin.000001", pos: 100n, gtid: "", startFile: "", startPos: 0n, sortable: "" },
      rows: ids.map((id, i) => ({
        op: o.op ?? Op.OP_CREATE,
        rowIndex: (o.fromRow ?? 0) + i,
        before: [],
        after: [toValue(ValueKind.Int, id)],
      })),
    }),
  );
}

const heartbeat = () =>
  encodeHeartbeat({ sourceId: "x", position: undefined, scn: 0n, sourceTimeMs: 5000n, captureTimeMs: 5001n });
const ddl = () =>
  encodeDdl({
    sourceId: "x",
    serverUuid: "",
    db: "shop",
    statement: "ALTER TABLE a ADD c INT",
    position: undefined,
    scn: 0n,
    commitTime: 0n,
    captureTimeMs: 0n,
    tables: [{ db: "shop", table: "a" }],
  });

/** A delivered queue; `stored` says which sequences the stream still holds. */
class FakeSource implements MessageSource {
  acked: number[] = [];
  queue: StreamMessage[] = [];
  constructor(private readonly stored: (seq: number) => boolean = () => true) {}
  add(seq: number, kind: string, data: Uint8Array): this {
    this.queue.push({ seq, subject: "", kind, data, scn: "", journal: "", ack: () => this.acked.push(seq) });
    return this;
  }
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

function builder(
  source: FakeSource,
  o: {
    missing?: string[];
    maxMessages?: number;
    maxRows?: number;
    acceptLossThrough?: number;
    onLost?: (n: number) => void;
  } = {},
) {
  const dead: Rejected[] = [];
  const deadMessages: [string, number, string][] = [];
  const b = new TxnBuilder({
    source,
    sink: {
      describe: async (ref) =>
        o.missing?.includes(ref.table) ? null : targetTable("shop", ref.table, ["id"], ["id"]),
    },
    maxMessages: o.maxMessages ?? 100,
    maxRows: o.maxRows ?? 10_000,
    maxBytes: 1 << 24,
    maxWaitMs: 0,
    deadLetter: async (r) => {
      dead.push(...r);
    },
    deadLetterMessage: async (t, m, error) => {
      deadMessages.push([t.table, m.seq, error]);
    },
    ...(o.acceptLossThrough !== undefined ? { acceptLossThrough: o.acceptLossThrough } : {}),
    ...(o.onLost ? { onLost: o.onLost } : {}),
    log: createLogger({ level: "fatal" }),
  });
  b.reset(0);
  return { b, dead, deadMessages };
}

const ids = (g: Group) => g.txns.map((t) => t.changes.map((c) => Number(c.after!.id)));

describe("TxnBuilder", () => {
  test("a source transaction over several messages stays whole; heartbeats join; a DDL comes alone", async () => {
    const src = new FakeSource()
      .add(1, "batch", batch("a", [1, 2], { ordinal: 7, last: false }))
      .add(2, "batch", batch("b", [3], { ordinal: 7, last: true, fromRow: 2 }))
      .add(3, "heartbeat", heartbeat())
      .add(4, "batch", batch("a", [4], { ordinal: 8 }))
      .add(5, "ddl", ddl())
      .add(6, "batch", batch("a", [5], { ordinal: 9 }));
    const { b } = builder(src);
    const g = await b.next();
    assert.equal(g?.kind, "group");
    if (g?.kind !== "group") return;
    assert.deepEqual(ids(g), [[1, 2, 3], [4]]);
    assert.deepEqual(
      g.txns.map((t) => t.seq),
      [2, 4],
      "a transaction is named by its last message",
    );
    assert.equal(g.lastSeq, 4);
    assert.equal(g.heartbeatSourceMs, 5000);
    assert.equal(g.position?.toString(), "mysql-bin.000001:100");
    const d = await b.next();
    assert.equal(d?.kind, "ddl");
    const g3 = await b.next();
    assert.equal(g3?.kind === "group" && g3.lastSeq, 6);
    assert.equal(await b.next(), null);
  });

  test("a transaction whose last message is not delivered yet waits; it is never split", async () => {
    const src = new FakeSource()
      .add(1, "batch", batch("a", [1], { ordinal: 1 }))
      .add(2, "batch", batch("a", [2], { ordinal: 2, last: false }));
    const { b } = builder(src);
    const g = await b.next();
    assert.deepEqual(g?.kind === "group" && ids(g), [[1]]);
    assert.equal(
      g?.kind === "group" && g.lastSeq,
      1,
      "the open transaction's message is not in the group's checkpoint",
    );
    assert.equal(await b.next(), null, "nothing whole to apply yet");
    src.add(3, "batch", batch("b", [3], { ordinal: 2, last: true, fromRow: 1 }));
    const rest = await b.next();
    assert.deepEqual(rest?.kind === "group" && ids(rest), [[2, 3]]);
  });

  test("groups close at transaction boundaries past the limits", async () => {
    const src = new FakeSource();
    for (let i = 1; i <= 5; i++) src.add(i, "batch", batch("a", [i]));
    const { b } = builder(src, { maxMessages: 2 });
    const out = [];
    for (let g = await b.next(); g; g = await b.next())
      out.push(g.kind === "group" ? g.txns.map((t) => t.seq) : g.kind);
    assert.deepEqual(out, [[1, 2], [3, 4], [5]]);
  });

  test("a transaction larger than a group comes in parts, the last one marked", async () => {
    const src = new FakeSource();
    for (let i = 1; i <= 5; i++)
      src.add(
        i,
        "batch",
        batch("big", [i * 10, i * 10 + 1], { ordinal: 1, last: i === 5, fromRow: (i - 1) * 2 }),
      );
    const { b } = builder(src, { maxRows: 3 });
    const parts = [];
    for (let s = await b.next(); s; s = await b.next()) {
      assert.equal(s.kind, "large");
      if (s.kind === "large") parts.push([s.changes.length, s.last, s.lastSeq]);
    }
    assert.deepEqual(parts, [
      [4, false, 2],
      [4, false, 4],
      [2, true, 5],
    ]);
  });

  test("redeliveries below the checkpoint are dropped, and so are transactions lanes applied above it", async () => {
    const src = new FakeSource();
    for (let i = 1; i <= 4; i++) src.add(i, "batch", batch("a", [i]));
    const { b } = builder(src);
    b.reset(1, new Set(["3:0"]));
    const g = await b.next();
    assert.deepEqual(g?.kind === "group" && ids(g), [[2], [4]]);
    assert.equal(g?.kind === "group" && g.lastSeq, 4);
  });

  test("a capture group splits into its source transactions, each in binlog order; applied ones are skipped", async () => {
    // One group (seq 1-2) of three source transactions over two tables: rows 0-1 (a, b),
    // row 2 (b), rows 3-4 (a, then b). Each table's rows come in one message.
    const txns = [0, 2, 3].map((firstRow) => ({ gtid: `0-1-${firstRow}`, firstRow }));
    const group = (table: string, rows: [number, number, number][], last: boolean) =>
      encodeBatch(
        ChangeBatch.fromPartial({
          db: "shop",
          table,
          columns: [{ name: "id", type: "int", charset: "" }],
          txnOrdinal: 5n,
          txnLast: last,
          sourceTxns: [...new Set(rows.map(([, t]) => t))].map((t) => txns[t]!),
          rows: rows.map(([rowIndex, t, id], _i, all) => ({
            op: Op.OP_CREATE,
            rowIndex,
            // source_txn indexes this batch's own source_txns
            sourceTxn: [...new Set(all.map(([, x]) => x))].indexOf(t),
            before: [],
            after: [toValue(ValueKind.Int, id)],
          })),
        }),
      );
    const src = new FakeSource()
      .add(
        1,
        "batch",
        group(
          "a",
          [
            [0, 0, 10],
            [3, 2, 13],
          ],
          false,
        ),
      )
      .add(
        2,
        "batch",
        group(
          "b",
          [
            [1, 0, 11],
            [2, 1, 12],
            [4, 2, 14],
          ],
          true,
        ),
      );
    const { b } = builder(src);
    const g = await b.next();
    assert.equal(g?.kind, "group");
    if (g?.kind !== "group") return;
    assert.deepEqual(
      g.txns.map((t) => [t.seq, t.row]),
      [
        [2, 0],
        [2, 2],
        [2, 3],
      ],
    );
    assert.deepEqual(ids(g), [[10, 11], [12], [13, 14]], "each in rowIndex order, across tables");
    assert.equal(g.rows, 5);

    const again = new FakeSource()
      .add(
        1,
        "batch",
        group(
          "a",
          [
            [0, 0, 10],
            [3, 2, 13],
          ],
          false,
        ),
      )
      .add(
        2,
        "batch",
        group(
          "b",
          [
            [1, 0, 11],
            [2, 1, 12],
            [4, 2, 14],
          ],
          true,
        ),
      );
    const after = builder(again).b;
    after.reset(0, new Set(["2:2", "1:0"]));
    const g2 = await after.next();
    assert.deepEqual(
      g2?.kind === "group" && ids(g2),
      [
        [10, 11],
        [13, 14],
      ],
      "the one a lane applied is skipped",
    );
    assert.equal(g2?.kind === "group" && g2.lastSeq, 2);
  });

  test("a gap whose messages are still stored means: read again; a gap of messages gone stops, unless accepted", async () => {
    const src = new FakeSource((seq) => seq === 3).add(5, "batch", batch("a", [5]));
    const { b } = builder(src);
    b.reset(1);
    assert.deepEqual(await b.next(), { kind: "reread", seenSeq: 5 });
    const gone = () =>
      new FakeSource(() => false).add(1, "batch", batch("a", [1])).add(5, "batch", batch("a", [5]));
    let lost = 0;
    const stops = builder(gone(), { onLost: (n) => (lost += n) }).b;
    const first = await stops.next();
    assert.equal(first?.kind === "group" && first.lastSeq, 1, "what came before the gap is applied first");
    await assert.rejects(stops.next(), (err: Error & { code?: string }) => {
      assert.equal(err.code, "DFS_STREAM_LOST");
      assert.match(
        err.message,
        /stream messages 2\.\.4 \(3\) expired or were deleted before this DPU applied them/,
      );
      return true;
    });
    assert.equal(lost, 3);
    const accepted = builder(gone(), { acceptLossThrough: 4 }).b;
    const g1 = await accepted.next();
    const g2 = g1?.kind === "group" && g1.lastSeq === 5 ? g1 : await accepted.next();
    assert.equal(g2?.kind === "group" && g2.lastSeq, 5, "accepted through 4: goes on");
    const short = builder(gone(), { acceptLossThrough: 3 }).b;
    await short.next();
    await assert.rejects(short.next(), /messages 2\.\.4/, "a gap past what was accepted still stops");
  });

  test("an unknown op dead-letters the whole message; rows of a missing table are dead-lettered", async () => {
    const src = new FakeSource()
      .add(1, "batch", batch("a", [1], { op: 9 as Op }))
      .add(2, "batch", batch("gone", [2, 3]))
      .add(3, "batch", batch("a", [4]));
    const { b, dead, deadMessages } = builder(src, { missing: ["gone"] });
    const g = await b.next();
    assert.deepEqual(
      deadMessages.map(([t, seq]) => [t, seq]),
      [["a", 1]],
    );
    assert.match(deadMessages[0]![2], /unknown op 9/);
    assert.deepEqual(
      dead.map((r) => [r.change.seq, r.errno]),
      [
        [2, 1146],
        [2, 1146],
      ],
    );
    assert.equal(g?.kind === "group" && g.lastSeq, 3, "the checkpoint passes what was dead-lettered");
    assert.deepEqual(g?.kind === "group" && ids(g).flat(), [4]);
    assert.equal(b.deadLettered, 3);
  });
});
