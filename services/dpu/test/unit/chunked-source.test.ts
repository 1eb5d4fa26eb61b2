// Chunked messages through ChunkedSource and the transaction builder (no servers): a batch larger
// than NATS's max_payload, delivered as chunks, reaches the builder whole and byte-equal; a chunk
// delivered twice changes nothing; a chunk never delivered makes the builder re-read from its
// checkpoint (never a shorter value); chunks that contradict each other stop with an error.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import {
  type ChunkHeader,
  chunkCount,
  chunkSlice,
  encodeBatch,
  encodeHeartbeat,
  sha256Hex,
  toValue,
  ValueKind,
} from "@dfs/codec";
import { createLogger } from "@dfs/common";
import { ChangeBatch, Op } from "@dfs/proto";
import { ChunkedSource } from "../../dist/chunked-source.js";
import type { MessageSource, StreamMessage } from "../../dist/stream-reader.js";
import { TxnBuilder } from "../../dist/txn-builder.js";
import { targetTable } from "../support/changes.js";

const log = createLogger({ level: "fatal" });

/** One source transaction: one row (id, a blob of `bytes`). */
function batch(id: number, blob: Buffer): Uint8Array {
  return encodeBatch(
    ChangeBatch.fromPartial({
      db: "shop",
      table: "files",
      columns: [
        { name: "id", type: "int", charset: "" },
        { name: "b", type: "longblob", charset: "" },
      ],
      txnOrdinal: BigInt(id),
      txnLast: true,
      rows: [
        {
          op: Op.OP_CREATE,
          rowIndex: 0,
          before: [],
          after: [toValue(ValueKind.Int, id), toValue(ValueKind.Bytes, blob)],
        },
      ],
    }),
  );
}

const heartbeat = () =>
  encodeHeartbeat({ sourceId: "x", position: undefined, scn: 0n, sourceTimeMs: 1n, captureTimeMs: 1n });

/** A delivered queue, as the stream reader keeps it. */
class FakeSource implements MessageSource {
  queue: StreamMessage[] = [];
  acked: number[] = [];
  resets: number[] = [];
  whole(seq: number, kind: string, data: Uint8Array): this {
    this.queue.push({
      seq,
      subject: "",
      kind,
      data,
      scn: "",
      journal: "",
      chunk: null,
      ack: () => this.acked.push(seq),
    });
    return this;
  }
  /** The chunks of `data` at sequences from `seq` (all, or those `pick` keeps, in its order). */
  chunked(seq: number, data: Uint8Array, max: number, of: string, pick?: number[]): this {
    const count = chunkCount(data.byteLength, max);
    const sha256 = sha256Hex(data);
    for (const index of pick ?? Array.from({ length: count }, (_, i) => i)) {
      const chunk: ChunkHeader = { index, count, bytes: data.byteLength, sha256, of };
      const s = seq + index;
      this.queue.push({
        seq: s,
        subject: "",
        kind: "batch",
        scn: "",
        journal: "",
        data: chunkSlice(data, index, count),
        chunk,
        ack: () => this.acked.push(s),
      });
    }
    return this;
  }
  peek() {
    return this.queue[0];
  }
  take() {
    return this.queue.shift()!;
  }
  async anyStored() {
    return true;
  }
  reset(lowWater: number) {
    this.resets.push(lowWater);
  }
}

function builderOver(src: FakeSource) {
  return new TxnBuilder({
    source: new ChunkedSource(src, log),
    sink: { describe: async (ref) => targetTable("shop", ref.table, ["id", "b"], ["id"]) },
    maxMessages: 100,
    maxRows: 100,
    maxBytes: 1 << 30,
    maxWaitMs: 0,
    deadLetter: async () => {},
    deadLetterMessage: async () => {},
    log,
  });
}

describe("chunked messages", () => {
  test("a batch in chunks reaches the builder whole: same bytes, acknowledged with its last chunk", async () => {
    const blob = randomBytes(100_000);
    const src = new FakeSource().whole(1, "heartbeat", heartbeat()).chunked(2, batch(7, blob), 16_384, "m7");
    src.whole(9, "batch", batch(8, Buffer.from("small")));
    const b = builderOver(src);
    b.reset(0);
    const step = await b.next();
    assert.equal(step?.kind, "group");
    if (step?.kind !== "group") return;
    const rows = step.txns.flatMap((t) => t.changes);
    assert.deepEqual(
      rows.map((c) => c.after!.id),
      [7, 8],
    );
    assert.deepEqual(Buffer.from(rows[0]!.after!.b as Uint8Array), blob);
    assert.equal(step.lastSeq, 9);
    const bigSeq = rows[0]!.seq;
    assert.equal(bigSeq, 8, "a joined message is its last chunk's sequence");
  });

  test("a chunk delivered twice is ignored", async () => {
    const blob = randomBytes(50_000);
    const data = batch(1, blob);
    const src = new FakeSource()
      .chunked(1, data, 16_384, "m1", [0, 1])
      .chunked(1, data, 16_384, "m1", [1, 2, 3]);
    const b = builderOver(src);
    b.reset(0);
    const step = await b.next();
    assert.equal(step?.kind, "group");
    if (step?.kind !== "group") return;
    assert.deepEqual(Buffer.from(step.txns[0]!.changes[0]!.after!.b as Uint8Array), blob);
  });

  test("a chunk never delivered: nothing is applied, the builder re-reads from its checkpoint", async () => {
    const data = batch(1, randomBytes(50_000));
    const src = new FakeSource().chunked(1, data, 16_384, "m1", [0, 2, 3]).whole(5, "heartbeat", heartbeat());
    const b = builderOver(src);
    b.reset(0);
    const step = await b.next();
    assert.equal(step?.kind, "reread");
    // Reading again from the checkpoint: the source forgets what it held, and all chunks come.
    b.reset(0);
    assert.deepEqual(src.resets, [0, 0]);
    src.queue = [];
    src.chunked(1, data, 16_384, "m1").whole(5, "heartbeat", heartbeat());
    const again = await b.next();
    assert.equal(again?.kind, "group");
    if (again?.kind === "group") assert.equal(again.txns[0]!.changes[0]!.after!.id, 1);
  });

  test("the last chunks missing at the end of the stream: nothing is handed on", async () => {
    const src = new FakeSource().chunked(1, batch(1, randomBytes(50_000)), 16_384, "m1", [0, 1]);
    const b = builderOver(src);
    b.reset(0);
    assert.equal(await b.next(), null);
  });

  test("a whole message right after a partial one is corruption: an error, not a truncated row", async () => {
    const src = new FakeSource()
      .chunked(1, batch(1, randomBytes(50_000)), 16_384, "m1", [0, 1])
      .whole(3, "heartbeat", heartbeat());
    const b = builderOver(src);
    b.reset(0);
    await assert.rejects(b.next(), { code: "DFS_DATA_INVALID", message: /m1 .* is corrupt/ });
  });
});
