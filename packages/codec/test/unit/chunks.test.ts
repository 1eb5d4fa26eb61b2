// Chunks of a message larger than NATS's max_payload: the split, the headers, and the joiner's
// answers to what delivery can do (duplicates, skips, chunks of another message, corrupt bytes).
// A missing chunk must never give a shorter message: it is a gap (re-read) or an error.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import {
  type ChunkHeader,
  ChunkJoiner,
  type ChunkPiece,
  chunkCount,
  chunkHeaders,
  chunkSlice,
  parseChunkHeader,
  sha256Hex,
  sliceRange,
} from "../../dist/index.js";

/** A message cut into chunks of at most `max` bytes, at stream sequences from `seq`. */
function cut(payload: Buffer, max: number, of = "src:pos:0", seq = 1): ChunkPiece[] {
  const count = chunkCount(payload.byteLength, max);
  const sha256 = sha256Hex(payload);
  return Array.from({ length: count }, (_, index) => ({
    header: { index, count, bytes: payload.byteLength, sha256, of },
    seq: seq + index,
    data: chunkSlice(payload, index, count),
  }));
}

function joinAll(j: ChunkJoiner, pieces: ChunkPiece[]) {
  return pieces.map((p) => j.add(p));
}

describe("chunks", () => {
  test("slices cover the message exactly, none larger than asked, and depend only on size and count", () => {
    for (const [size, max] of [
      [10_000, 1000],
      [10_001, 1000],
      [999, 1000],
      [1, 1],
      [65_537, 4096],
    ] as const) {
      const payload = randomBytes(size);
      const count = chunkCount(size, max);
      const slices = Array.from({ length: count }, (_, i) => chunkSlice(payload, i, count));
      assert.ok(
        slices.every((s) => s.byteLength <= max && s.byteLength > 0),
        `${size}/${max}`,
      );
      assert.deepEqual(Buffer.concat(slices), payload);
      // sliceRange names the same bytes without the payload (capture's journal parts use it).
      const ranges = Array.from({ length: count }, (_, i) => sliceRange(size, i, count));
      assert.deepEqual(
        ranges.map(([start, end]) => payload.subarray(start, end)),
        slices,
      );
    }
    assert.deepEqual(sliceRange(10, 7, 4), [10, 10], "past the end: empty, never negative");
  });

  test("headers round-trip; malformed ones are a DataError", () => {
    const h: ChunkHeader = { index: 2, count: 5, bytes: 12345, sha256: "a".repeat(64), of: "s:1:2:3" };
    const headers = chunkHeaders(h);
    assert.deepEqual(
      parseChunkHeader((n) => headers[n]),
      h,
    );
    assert.equal(
      parseChunkHeader(() => undefined),
      null,
    );
    for (const bad of [
      { ...headers, "Dfs-Chunk": "5/5" },
      { ...headers, "Dfs-Chunk": "x" },
      { ...headers, "Dfs-Chunk-Bytes": "-1" },
      { ...headers, "Dfs-Chunk-Sha256": "zz" },
      { ...headers, "Dfs-Chunk-Of": "" },
    ] as Record<string, string>[])
      assert.throws(() => parseChunkHeader((n) => bad[n]), { code: "DFS_DATA_INVALID" });
  });

  test("in order, a message comes out whole, byte for byte, with its first and last sequence", () => {
    const payload = randomBytes(50_000);
    const r = joinAll(new ChunkJoiner(), cut(payload, 7000, "m", 11));
    assert.deepEqual(
      r.slice(0, -1).map((x) => x.kind),
      Array(7).fill("partial"),
    );
    const last = r.at(-1)!;
    assert.equal(last.kind, "whole");
    if (last.kind !== "whole") return;
    assert.deepEqual(last.data, payload);
    assert.equal(last.firstSeq, 11);
    assert.equal(last.lastSeq, 18);
  });

  test("a redelivered chunk is a duplicate, ignored", () => {
    const payload = randomBytes(3000);
    const pieces = cut(payload, 1000);
    const j = new ChunkJoiner();
    assert.equal(j.add(pieces[0]!).kind, "partial");
    assert.equal(j.add(pieces[1]!).kind, "partial");
    assert.equal(j.add(pieces[0]!).kind, "duplicate");
    const end = j.add(pieces[2]!);
    assert.equal(end.kind, "whole");
    if (end.kind === "whole") assert.deepEqual(end.data, payload);
  });

  test("a skipped sequence (a chunk not delivered) is a gap: the partial message is dropped, never shortened", () => {
    const pieces = cut(randomBytes(4000), 1000);
    const j = new ChunkJoiner();
    j.add(pieces[0]!);
    const r = j.add(pieces[2]!); // chunk 1 was never delivered
    assert.equal(r.kind, "gap");
    assert.equal(j.joining, false);
    // Nor does the rest make a message: chunk 3 comes without its first chunks.
    assert.equal(j.add(pieces[3]!).kind, "gap");
  });

  test("chunks without their first (delivery started inside a message) are a gap", () => {
    const pieces = cut(randomBytes(4000), 1000);
    const j = new ChunkJoiner();
    assert.equal(j.add(pieces[1]!).kind, "gap");
    assert.equal(j.joining, false);
  });

  test("out of order at consecutive sequences, or another message's chunk, is corrupt: an error", () => {
    const a = cut(randomBytes(3000), 1000, "a");
    const swapped = [a[0]!, { ...a[2]!, seq: 2 }];
    const j = new ChunkJoiner();
    j.add(swapped[0]!);
    assert.throws(() => j.add(swapped[1]!), { code: "DFS_DATA_INVALID", message: /expected chunk 1/ });
    const b = cut(randomBytes(3000), 1000, "b", 1);
    const k = new ChunkJoiner();
    k.add(a[0]!);
    assert.throws(() => k.add(b[1]!), { code: "DFS_DATA_INVALID", message: /chunk 1\/3 of b/ });
  });

  test("a whole message right after a partial one's last chunk is corrupt; after a skip it is a gap", () => {
    const a = cut(randomBytes(3000), 1000, "a", 1);
    const j = new ChunkJoiner();
    j.add(a[0]!);
    assert.throws(() => j.interrupted(2), { code: "DFS_DATA_INVALID" });
    j.add(a[0]!);
    assert.equal(j.interrupted(5).kind, "gap");
  });

  test("bytes that fail the checksum, or a chunk of the wrong length, are an error", () => {
    const payload = randomBytes(3000);
    const pieces = cut(payload, 1000);
    const flipped = Buffer.from(pieces[1]!.data);
    flipped[7] = flipped[7]! ^ 1;
    const j = new ChunkJoiner();
    j.add(pieces[0]!);
    j.add({ ...pieces[1]!, data: flipped });
    assert.throws(() => j.add(pieces[2]!), { code: "DFS_DATA_INVALID", message: /SHA-256/ });
    const k = new ChunkJoiner();
    k.add(pieces[0]!);
    assert.throws(() => k.add({ ...pieces[1]!, data: pieces[1]!.data.subarray(1) }), {
      code: "DFS_DATA_INVALID",
      message: /holds 999 bytes, expected 1000/,
    });
  });

  test("reset forgets a partial message (reading again from a checkpoint)", () => {
    const payload = randomBytes(3000);
    const pieces = cut(payload, 1000);
    const j = new ChunkJoiner();
    j.add(pieces[0]!);
    j.add(pieces[1]!);
    j.reset();
    const r = joinAll(j, pieces).at(-1)!;
    assert.equal(r.kind, "whole");
    if (r.kind === "whole") assert.deepEqual(r.data, payload);
  });
});
