// Journal entries larger than PART_BYTES are stored as parts (SQLite's row limit in better-sqlite3
// is 2^29 - 24 bytes; a 1 GiB row's message must still be journaled): the parts come back exactly,
// are trimmed and discarded with their entry, are read a part at a time (never the whole payload)
// and the publisher chunks them onto the stream from the parts after a restart.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ChunkJoiner, Position, parseChunkHeader, sha256Hex } from "@dfs/codec";
import { createLogger, waitFor } from "@dfs/common";
import type { LastPublished, StreamWriter } from "@dfs/nats";
import Database from "better-sqlite3";
import { type Checkpoint, Journal, type JournalEntry } from "../../dist/journal.js";
import { PART_BYTES, partCount, StoredPayload } from "../../dist/journal-parts.js";
import { Publisher } from "../../dist/publisher.js";

const dir = mkdtempSync(join(tmpdir(), "dfs-journal-parts-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const path = () => join(dir, `j${n++}.db`);

/** 2.5 parts' worth of random bytes (3 parts), made once. */
const BIG = randomBytes(Math.floor(PART_BYTES * 2.5) + 123);

const entry = (scn: number, payload: Uint8Array): JournalEntry => ({
  scn,
  kind: "batch",
  subject: "dfs.s.db.t",
  msgId: `s:${scn}`,
  ref: { db: "db", table: "t" },
  ops: { c: 1, u: 0, d: 0, r: 0 },
  sortable: "0000000001:000000000100",
  payload,
});
const cp = (committedScn: number, pos: number): Checkpoint => ({
  position: Position.at("mysql-bin.000001", pos, "", "mariadb:1"),
  committedScn,
  txnOrdinal: committedScn,
});

/** Rows of `entry_parts` per scn, read with a second connection. */
function partRows(p: string): Record<number, number> {
  const db = new Database(p, { readonly: true });
  try {
    const rows = db.prepare("SELECT scn, COUNT(*) AS n FROM entry_parts GROUP BY scn").all() as {
      scn: number;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.scn, r.n]));
  } finally {
    db.close();
  }
}

describe("StoredPayload", () => {
  const payload = randomBytes(1000);
  /** 1000 bytes in 3 parts (334, 334, 332), read through a counting reader. */
  const stored = (parts = new Map([0, 1, 2].map((i) => [i, payload.subarray(i * 334, (i + 1) * 334)]))) =>
    new StoredPayload(1000, sha256Hex(payload), 3, (i) => parts.get(i), "scn 7 (db.t)");

  test("a range inside one part is a view of it; one across parts is a copy; each part read once in order", () => {
    const s = stored();
    for (const [start, end] of [
      [0, 10],
      [300, 700],
      [700, 1000],
      [999, 1000],
      [0, 1000],
      [500, 500],
    ] as const)
      assert.deepEqual(Buffer.from(s.slice(start, end)), payload.subarray(start, end), `${start}..${end}`);
    const front = stored();
    for (let at = 0; at < 1000; at += 100) front.slice(at, at + 100);
    assert.equal(front.partsRead, 3, "front to back, each part is read once");
    assert.deepEqual(Buffer.from(front.whole()), payload);
    assert.throws(() => s.slice(900, 1001), RangeError);
  });

  test("a missing or short part is a corrupt journal, never a shorter payload", () => {
    const missing = stored(new Map([[0, payload.subarray(0, 334)]]));
    assert.throws(
      () => missing.slice(0, 1000),
      /journal is corrupt: part 1 of 3 of scn 7 \(db\.t\) is missing/,
    );
    const short = stored(new Map([[0, payload.subarray(0, 300)]]));
    assert.throws(() => short.slice(0, 10), /part 0 of 3 .* holds 300 bytes, expected 334/);
  });
});

describe("Journal parts", () => {
  test("a payload past PART_BYTES is stored in parts and read back exactly, a part at a time", () => {
    assert.equal(partCount(PART_BYTES), 0, "up to PART_BYTES a payload stays in its row");
    assert.equal(partCount(BIG.byteLength), 3);
    const p = path();
    const j = new Journal(p);
    const big = entry(2, BIG);
    j.append([entry(1, Buffer.from("small")), big, entry(3, Buffer.from("after"))], cp(3, 300));
    assert.equal(big.sha256, sha256Hex(BIG), "the checksum is computed once, for the publisher");
    assert.equal(j.stats().bytes, BIG.byteLength + 10);
    j.close();
    assert.deepEqual(partRows(p), { 2: 3 });

    const again = new Journal(p);
    assert.equal(again.stats().bytes, BIG.byteLength + 10, "bytes counted from the parts too");
    const read = again.read(0, 10);
    assert.deepEqual(
      read.map((e) => e.scn),
      [1, 2, 3],
    );
    const e = read[1]!;
    assert.equal(e.payload.byteLength, 0, "never read whole");
    assert.ok(e.stored, "read through its parts");
    assert.equal(e.stored.byteLength, BIG.byteLength);
    assert.equal(e.stored.sha256, sha256Hex(BIG));
    assert.equal(e.stored.partsRead, 0, "reading the entry reads none of its parts");
    assert.deepEqual(Buffer.from(e.stored.slice(0, BIG.byteLength)), BIG);
    assert.deepEqual(Buffer.from(read[2]!.payload), Buffer.from("after"));
    // The page bound counts a stored entry's size: a page holds it alone.
    assert.deepEqual(
      again.read(0, 10, 1000).map((x) => x.scn),
      [1, 2],
    );
    again.markPublished(2);
    assert.deepEqual(partRows(p), {}, "trimmed with their entry");
    assert.deepEqual(again.stats(), { entries: 1, bytes: 5, committedScn: 3, publishedScn: 2 });
    again.close();
  });

  test("parts of an entry whose transaction never committed are dropped with it", () => {
    const p = path();
    const j = new Journal(p);
    j.append([entry(1, Buffer.from("a"))], cp(1, 100));
    j.append([entry(2, BIG)], null); // a chunk of a large transaction, then a crash
    j.close();
    assert.deepEqual(partRows(p), { 2: 3 });
    const again = new Journal(p);
    assert.deepEqual(partRows(p), {});
    assert.equal(again.stats().bytes, 1);
    assert.equal(again.nextScn, 2, "read again with the same SCN");
    again.append([entry(2, BIG)], cp(2, 200));
    assert.deepEqual(partRows(p), { 2: 3 });
    again.close();
  });

  test("after a restart the publisher chunks a stored entry from its parts, each part read once", async () => {
    const p = path();
    const j = new Journal(p);
    j.append([entry(1, Buffer.from("small")), entry(2, BIG), entry(3, Buffer.from("after"))], cp(3, 300));
    j.close();
    const journal = new Journal(p);
    const stored: { msgId: string; headers: Record<string, string>; payload: Buffer }[] = [];
    const stream: StreamWriter = {
      async publish(_subject, payload, o) {
        stored.push({ msgId: o.msgId, headers: o.headers, payload: Buffer.from(payload) });
      },
      async last(): Promise<LastPublished | null> {
        return null;
      },
    };
    const read: JournalEntry[] = [];
    const publisher = new Publisher({
      stream,
      journal: {
        journalId: journal.journalId,
        publishedScn: journal.publishedScn,
        read: (afterScn, limit, maxBytes) => {
          const page = journal.read(afterScn, limit, maxBytes);
          read.push(...page);
          return page;
        },
      },
      maxInFlight: 8,
      maxInFlightBytes: 4 << 20,
      maxMessageBytes: () => 1 << 20,
      ackTimeoutMs: 1000,
      reconnect: { initialMs: 5, maxMs: 20 },
      log: createLogger({ level: "fatal" }),
      onPublished: () => {},
    });
    publisher.start();
    await waitFor(() => publisher.acked === 3, { timeoutMs: 10_000, what: "all acked" });
    await publisher.stop();
    journal.close();
    const big = read.find((e) => e.scn === 2)!;
    assert.equal(big.stored?.partsRead, 3, "each part read once");
    const joiner = new ChunkJoiner();
    const whole: Buffer[] = [];
    for (const [i, m] of stored.entries()) {
      const header = parseChunkHeader((name) => m.headers[name]);
      if (!header) whole.push(m.payload);
      else {
        const r = joiner.add({ header, seq: i + 1, data: m.payload });
        if (r.kind === "whole") whole.push(r.data);
      }
    }
    assert.equal(stored.length, 2 + Math.ceil(BIG.byteLength / (1 << 20)));
    assert.deepEqual(whole, [Buffer.from("small"), BIG, Buffer.from("after")]);
  });
});
