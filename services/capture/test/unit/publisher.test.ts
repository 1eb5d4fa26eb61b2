// The Publisher alone, against a fake stream that behaves like JetStream where it matters: message
// ids dedupe, an expected-last-id that does not match is refused, acks come back in any order.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { ChunkJoiner, parseChunkHeader } from "@dfs/codec";
import { createLogger, waitFor } from "@dfs/common";
import type { LastPublished, StreamWriter } from "@dfs/nats";
import type { JournalEntry } from "../../dist/journal.js";
import { Publisher, type PublishSource } from "../../dist/publisher.js";

const log = createLogger({ level: "fatal" });

interface Stored {
  subject: string;
  msgId: string;
  headers: Record<string, string>;
  payload?: Uint8Array;
}

/** A stream in memory. Acks are held until `release` (to reorder them) unless `autoAck`. */
class FakeStream implements StreamWriter {
  stored: Stored[] = [];
  pending: { resolve(): void; reject(e: Error): void; m: Stored }[] = [];
  autoAck = true;
  failNext = 0;
  /** Fails every publish call from this number on (1 = the first; 0 = none): NATS went away. */
  failFrom = 0;
  calls = 0;
  maxPending = 0;
  lastIdSeen = "";

  async publish(
    subject: string,
    payload: Uint8Array,
    o: { msgId: string; headers: Record<string, string>; expectLastMsgId?: string },
  ): Promise<void> {
    this.calls++;
    if ((this.failFrom > 0 && this.calls >= this.failFrom) || this.failNext > 0) {
      if (this.failNext > 0) this.failNext--;
      throw new Error("nats: timeout");
    }
    const m = { subject, msgId: o.msgId, headers: o.headers, payload: Buffer.from(payload) };
    const last = this.stored.at(-1)?.msgId;
    const dup = this.stored.some((s) => s.msgId === o.msgId);
    if (!dup) {
      if (o.expectLastMsgId !== undefined && o.expectLastMsgId !== last)
        throw new Error(`wrong last msg id: expected ${o.expectLastMsgId}, stream has ${last}`);
      this.stored.push(m);
    }
    if (this.autoAck) return;
    await new Promise<void>((resolve, reject) => {
      this.pending.push({ resolve, reject, m });
      this.maxPending = Math.max(this.maxPending, this.pending.length);
    });
  }

  async last(): Promise<LastPublished | null> {
    const m = this.stored.at(-1);
    return m ? { seq: this.stored.length, msgId: m.msgId, headers: m.headers } : null;
  }

  /** Acknowledges pending publishes in the given order (indexes into `pending`; default all); the rest stay pending. */
  release(order?: number[]): void {
    const p = this.pending;
    const picked = order ?? p.map((_, i) => i);
    this.pending = p.filter((_, i) => !picked.includes(i));
    for (const i of picked) p[i]!.resolve();
  }
}

function journal(n: number, publishedScn = 0): PublishSource & { entries: JournalEntry[] } {
  const entries: JournalEntry[] = Array.from({ length: n }, (_, i) => ({
    scn: i + 1,
    kind: "batch",
    subject: `dfs.s.db.t${i % 3}`,
    msgId: `s:id:${i + 1}`,
    ref: { db: "db", table: `t${i % 3}` },
    ops: { c: 1, u: 0, d: 0, r: 0 },
    sortable: "0000000001:000000000004",
    payload: Buffer.from([i]),
  }));
  return {
    entries,
    journalId: "J1",
    publishedScn,
    read: (after, limit) => entries.filter((e) => e.scn > after).slice(0, limit),
  };
}

function publisher(
  stream: FakeStream,
  source: PublishSource,
  o: { maxInFlight?: number; maxMessageBytes?: number; maxInFlightBytes?: number } = {},
) {
  const acked: [string, number][] = [];
  const p = new Publisher({
    stream,
    journal: source,
    maxInFlight: o.maxInFlight ?? 8,
    maxInFlightBytes: o.maxInFlightBytes ?? 1 << 20,
    maxMessageBytes: () => o.maxMessageBytes ?? 1 << 20,
    ackTimeoutMs: 1000,
    reconnect: { initialMs: 5, maxMs: 20 },
    log,
    onPublished: () => {},
    onAcked: (ref, ops) => acked.push([ref.table, ops.c]),
  });
  return { p, acked };
}

describe("Publisher", () => {
  test("publishes every entry once, in order, with headers; the acked cursor reaches the end", async () => {
    const stream = new FakeStream();
    const src = journal(50);
    const { p, acked } = publisher(stream, src);
    p.start();
    await waitFor(() => p.acked === 50, { timeoutMs: 5000, what: "all acked" });
    await p.stop();
    assert.deepEqual(
      stream.stored.map((m) => m.msgId),
      src.entries.map((e) => e.msgId),
    );
    assert.deepEqual(stream.stored[0]!.headers, {
      "Dfs-Kind": "batch",
      "Dfs-Scn": "1",
      "Dfs-Journal": "J1",
      "Dfs-Pos": "0000000001:000000000004",
      "Dfs-Rows": "1",
    });
    assert.equal(acked.length, 50);
    assert.equal(p.publishedRows, 50);
  });

  test("the cursor moves only over the acknowledged prefix, never past a gap", async () => {
    const stream = new FakeStream();
    stream.autoAck = false;
    const { p } = publisher(stream, journal(4), { maxInFlight: 4 });
    p.start();
    await waitFor(() => stream.pending.length === 4, { timeoutMs: 2000, what: "4 in flight" });
    assert.equal(stream.maxPending, 4, "the window is bounded by maxInFlight");
    stream.release([3, 1]); // acks of scn 4 and 2 arrive first
    await new Promise((r) => setImmediate(r));
    assert.equal(p.acked, 0, "scn 1 is not acked: the cursor cannot move");
    stream.release([0]); // scn 1 (pending now holds scn 1 and 3)
    await waitFor(() => p.acked === 2, { timeoutMs: 2000, what: "cursor over 1 and 2" });
    stream.release(); // scn 3
    await waitFor(() => p.acked === 4, { timeoutMs: 2000, what: "cursor at 4" });
    await p.stop();
  });

  test("after a failure it resyncs from the stream's last message: nothing doubled, nothing lost", async () => {
    const stream = new FakeStream();
    const src = journal(30);
    stream.failNext = 1;
    const { p } = publisher(stream, src, { maxInFlight: 5 });
    p.start();
    await waitFor(() => p.acked === 30, { timeoutMs: 5000, what: "all acked after the failure" });
    await p.stop();
    assert.equal(p.failures, 1);
    assert.deepEqual(
      stream.stored.map((m) => m.msgId),
      src.entries.map((e) => e.msgId),
      "every entry stored exactly once, in order",
    );
  });

  test("a restart reads where the stream is, even when the journal's published mark is behind", async () => {
    const stream = new FakeStream();
    const src = journal(10);
    const first = publisher(stream, src).p;
    first.start();
    await waitFor(() => first.acked === 10, { timeoutMs: 2000, what: "first run" });
    await first.stop();
    // The acks were lost (a crash before the journal noted them): published mark still 0.
    const again = journal(12, 0);
    const second = publisher(stream, again).p;
    second.start();
    await waitFor(() => second.acked === 12, { timeoutMs: 2000, what: "second run" });
    await second.stop();
    assert.equal(stream.stored.length, 12, "the first 10 were not sent again");
  });

  test("a foreign message with this journal's headers is not taken for ours: nothing is skipped", async () => {
    const stream = new FakeStream();
    const j = journal(5, 2);
    // Entries 1 and 2 are in the stream; then someone else's message naming this journal and SCN 5.
    for (const e of j.entries.slice(0, 2))
      stream.stored.push({
        subject: e.subject,
        msgId: e.msgId,
        headers: { "Dfs-Journal": j.journalId, "Dfs-Scn": String(e.scn) },
      });
    stream.stored.push({
      subject: "dfs.s.db.t0",
      msgId: "forged",
      headers: { "Dfs-Journal": j.journalId, "Dfs-Scn": "5" },
    });
    const { p } = publisher(stream, j);
    p.start();
    await waitFor(() => p.acked === 5, { timeoutMs: 2000, what: "every entry published" });
    await p.stop();
    assert.deepEqual(
      stream.stored.map((m) => m.msgId),
      ["s:id:1", "s:id:2", "forged", "s:id:3", "s:id:4", "s:id:5"],
      "entries 3 to 5 were published, not skipped",
    );
  });

  test("another journal's messages in the stream are not taken for ours", async () => {
    const stream = new FakeStream();
    stream.stored.push({ subject: "x", msgId: "other", headers: { "Dfs-Journal": "J0", "Dfs-Scn": "999" } });
    const src = journal(3);
    const { p } = publisher(stream, src);
    p.start();
    await waitFor(() => p.acked === 3, { timeoutMs: 2000, what: "acked" });
    await p.stop();
    assert.equal(stream.stored.length, 4);
  });

  describe("an entry larger than a message goes as chunks", () => {
    /** Three entries, the middle one 10,000 random bytes (chunks of at most 1,000 bytes). */
    function bigJournal(): PublishSource & { entries: JournalEntry[] } {
      const src = journal(3);
      src.entries[1]!.payload = randomBytes(10_000);
      return src;
    }

    /** The stream's messages joined again: whole messages as they are, chunks through the joiner. */
    function joined(stream: FakeStream): { msgId: string; payload: Buffer }[] {
      const out: { msgId: string; payload: Buffer }[] = [];
      const joiner = new ChunkJoiner();
      for (const [i, m] of stream.stored.entries()) {
        const header = parseChunkHeader((name) => m.headers[name]);
        if (!header) out.push({ msgId: m.msgId, payload: Buffer.from(m.payload!) });
        else {
          const r = joiner.add({ header, seq: i + 1, data: m.payload! });
          assert.notEqual(r.kind, "gap", `chunk at ${i + 1}`);
          if (r.kind === "whole") out.push({ msgId: header.of, payload: r.data });
        }
      }
      return out;
    }

    test("ordered chunks on the entry's subject with the whole's size and checksum; acked with the last", async () => {
      const stream = new FakeStream();
      stream.autoAck = false;
      const src = bigJournal();
      const { p, acked } = publisher(stream, src, { maxMessageBytes: 1000, maxInFlightBytes: 3000 });
      p.start();
      await waitFor(() => stream.pending.length >= 3, { timeoutMs: 2000, what: "a window of chunks" });
      assert.ok(stream.pending.length <= 4, "chunks in flight are bounded by the window's bytes");
      for (let i = 0; i < 40 && p.acked < 3; i++) {
        stream.release();
        await new Promise((r) => setTimeout(r, 5));
        const chunks = stream.stored.filter((m) => m.headers["Dfs-Scn"] === "2").length;
        if (p.acked >= 2) assert.equal(chunks, 10, "the entry is acked only with its last chunk");
      }
      await waitFor(() => p.acked === 3, { timeoutMs: 2000, what: "all acked" });
      await p.stop();
      const chunks = stream.stored.slice(1, -1);
      assert.equal(chunks.length, 10);
      assert.deepEqual(
        chunks.map((m) => [m.subject, m.headers["Dfs-Chunk"], m.headers["Dfs-Scn"], m.msgId]),
        chunks.map((_, i) => ["dfs.s.db.t1", `${i}/10`, "2", `s:id:2:chunk:${i}/10`]),
      );
      assert.equal(chunks[0]!.headers["Dfs-Chunk-Bytes"], "10000");
      assert.deepEqual(
        joined(stream).map((m) => m.payload),
        src.entries.map((e) => Buffer.from(e.payload)),
      );
      assert.equal(acked.length, 3, "metrics count the entry once");
    });

    test("a failure midway resumes at the next chunk, cut as before: each chunk stored once", async () => {
      const stream = new FakeStream();
      stream.failFrom = 6; // from the entry's fifth chunk on
      const src = bigJournal();
      const { p } = publisher(stream, src, { maxMessageBytes: 1000, maxInFlight: 1 });
      p.start();
      await waitFor(() => p.failures >= 1, { timeoutMs: 2000, what: "the failure" });
      await p.stop();
      stream.failFrom = 0;
      assert.equal(stream.stored.at(-1)!.headers["Dfs-Chunk"], "3/10", "stopped after chunk 3");
      // A restart (the journal's published mark behind) reads the stream's last chunk and goes on,
      // even with a server whose max_payload changed meanwhile.
      const again = publisher(stream, src, { maxMessageBytes: 4000 }).p;
      again.start();
      await waitFor(() => again.acked === 3, { timeoutMs: 2000, what: "all acked" });
      await again.stop();
      const ids = stream.stored.map((m) => m.msgId);
      assert.equal(new Set(ids).size, ids.length, "nothing stored twice");
      assert.deepEqual(
        joined(stream).map((m) => m.payload),
        src.entries.map((e) => Buffer.from(e.payload)),
      );
    });
  });
});
