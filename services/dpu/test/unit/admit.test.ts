// Foreign messages on the source's stream, through the transaction builder (no servers): each one is
// dead-lettered whole with a reason naming what is wrong, none is applied, none ends or splits the
// source transaction around it, and every change of capture's own messages still comes out in order.
// The last test interleaves seeded random foreign messages with real ones (DFS_TEST_SEED repeats it).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeBatch, encodeDdl, encodeHeartbeat, toValue, ValueKind } from "@dfs/codec";
import { createLogger, type Random, seededRandom, testSeed } from "@dfs/common";
import { subjects } from "@dfs/nats";
import { ChangeBatch, Op } from "@dfs/proto";
import type { MessageSource, StreamMessage } from "../../dist/stream-reader.js";
import { type Step, TxnBuilder } from "../../dist/txn-builder.js";
import { targetTable } from "../support/changes.js";

const SEED = testSeed();
const SOURCE = "src";
const JOURNAL = "journal-1";
const DATA = (table: string) => subjects.data(SOURCE, "shop", table);

interface BatchOptions {
  table?: string;
  db?: string;
  ordinal?: number;
  last?: boolean;
  scn?: number;
  sourceId?: string;
  fromRow?: number;
}

function batch(ids: number[], o: BatchOptions = {}): Uint8Array {
  return encodeBatch(
    ChangeBatch.fromPartial({
      sourceId: o.sourceId ?? SOURCE,
      db: o.db ?? "shop",
      table: o.table ?? "a",
      columns: [{ name: "id", type: "int", charset: "" }],
      primaryKey: ["id"],
      scn: BigInt(o.scn ?? 0),
      txnOrdinal: BigInt(o.ordinal ?? ids[0] ?? 0),
      txnLast: o.last ?? true,
      rows: ids.map((id, i) => ({
        op: Op.OP_CREATE,
        rowIndex: (o.fromRow ?? 0) + i,
        before: [],
        after: [toValue(ValueKind.Int, id)],
      })),
    }),
  );
}

class FakeSource implements MessageSource {
  queue: StreamMessage[] = [];
  private seq = 0;
  add(m: { subject: string; kind: string; data: Uint8Array; scn?: number | string; journal?: string }): this {
    const scn = m.scn === undefined ? "" : String(m.scn);
    this.queue.push({
      seq: ++this.seq,
      subject: m.subject,
      kind: m.kind,
      data: m.data,
      scn,
      journal: m.journal ?? (scn === "" ? "" : JOURNAL),
      ack: () => {},
    });
    return this;
  }
  /** A batch as capture publishes it: headers and payload agree. */
  real(ids: number[], o: BatchOptions & { scn: number }): this {
    return this.add({ subject: DATA(o.table ?? "a"), kind: "batch", data: batch(ids, o), scn: o.scn });
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
}

function builder(source: FakeSource) {
  const dead: { table: string; seq: number; error: string }[] = [];
  const b = new TxnBuilder({
    source,
    sink: { describe: async (ref) => targetTable(ref.db, ref.table, ["id"], ["id"]) },
    maxMessages: 1000,
    maxRows: 10_000,
    maxBytes: 1 << 24,
    maxWaitMs: 0,
    deadLetter: async () => assert.fail("no change is refused by the target here"),
    deadLetterMessage: async (t, m, error) => {
      dead.push({ table: `${t.db}.${t.table}`, seq: m.seq, error });
    },
    sourceId: SOURCE,
    log: createLogger({ level: "fatal" }),
  });
  b.reset(0);
  return { b, dead };
}

/** Every step until the queue is empty: the ids applied (per source transaction) and DDL statements. */
async function drain(b: TxnBuilder): Promise<{ txns: number[][]; ddl: string[]; steps: Step[] }> {
  const txns: number[][] = [];
  const ddl: string[] = [];
  const steps: Step[] = [];
  for (let step = await b.next(); step !== null; step = await b.next()) {
    steps.push(step);
    if (step.kind === "group")
      for (const t of step.txns) txns.push(t.changes.map((c) => Number(c.after!.id)));
    else if (step.kind === "ddl") ddl.push(step.ddl.statement);
    else assert.fail(`unexpected step ${step.kind}`);
  }
  return { txns, ddl, steps };
}

describe("foreign messages on the stream", () => {
  test("each is dead-lettered with the reason; capture's messages around them are applied", async () => {
    const garbage = Buffer.from("this is not protobuf at all \u0000\u00ff");
    const src = new FakeSource()
      .real([1], { scn: 1 })
      .add({ subject: DATA("a"), kind: "", data: batch([90], { scn: 50 }), scn: 50 })
      .add({ subject: DATA("a"), kind: "batch", data: garbage, scn: 51 })
      .add({ subject: DATA("a"), kind: "batch", data: Buffer.from('{"op":"c","after":{"id":91}}'), scn: 52 })
      .add({ subject: DATA("a"), kind: "batch", data: batch([92], { table: "b", scn: 53 }), scn: 53 })
      .add({ subject: DATA("a"), kind: "batch", data: batch([93], { sourceId: "other", scn: 54 }), scn: 54 })
      .add({ subject: DATA("a"), kind: "batch", data: batch([94], { scn: 1 }), scn: 1 })
      .add({ subject: DATA("a"), kind: "batch", data: batch([95], { scn: 7 }) })
      .add({ subject: DATA("a"), kind: "batch", data: batch([96], { scn: 8 }), scn: 9 })
      .add({ subject: DATA("a"), kind: "batch", data: batch([97]), scn: "12abc" })
      .add({ subject: DATA("a"), kind: "heartbeat", data: encodeHeartbeat(hb(55)), scn: 55 })
      .add({ subject: subjects.ddl(SOURCE), kind: "ddl", data: garbage, scn: 56 })
      .add({ subject: subjects.ddl(SOURCE), kind: "batch", data: batch([98], { scn: 57 }), scn: 57 })
      .add({ subject: subjects.heartbeat(SOURCE), kind: "heartbeat", data: garbage, scn: 58 })
      .add({ subject: DATA("a"), kind: "batch", data: batch([99], { db: "", scn: 59 }), scn: 59 })
      .add({ subject: DATA("a"), kind: "batch", data: batch([100], { scn: 60 }), scn: 60, journal: "" })
      .add({ subject: DATA("a"), kind: "batch", data: batch([101], { scn: 61 }).subarray(0, 40), scn: 61 })
      .real([2], { scn: 2 });
    const { b, dead } = builder(src);
    const { txns, ddl } = await drain(b);
    assert.deepEqual(txns, [[1], [2]], "only capture's changes are applied");
    assert.deepEqual(ddl, []);
    const reasons = dead.map((d) => `${d.seq} ${d.table}: ${d.error}`);
    const expect: [number, string, RegExp][] = [
      [2, "shop.a", /unknown Dfs-Kind header ""/],
      [3, "shop.a", /not a change batch: /],
      [4, "shop.a", /not a change batch/],
      [5, "shop.a", /a batch for shop\.b on the subject of shop\.a/],
      [6, "shop.a", /source "other" on the stream of source "src"/],
      [7, "shop.a", /SCN 1 of journal journal-1 was delivered already: a copy of an older message/],
      [8, "shop.a", /no Dfs-Scn and Dfs-Journal headers/],
      [9, "shop.a", /payload SCN 8 differs from its Dfs-Scn header 9/],
      [10, "shop.a", /Dfs-Scn header "12abc" is not an SCN/],
      [11, "shop.a", /a heartbeat message on dfs\.src\.shop\.a, where only batch messages belong/],
      [12, "_dfs._ddl", /malformed DDL event|without a statement|source/],
      [13, "_dfs._ddl", /a batch message on dfs\.src\._ddl, where only ddl messages belong/],
      [14, "_dfs._heartbeat", /malformed heartbeat|source/],
      [15, "shop.a", /not a change batch/],
      [16, "shop.a", /must come together/],
      [17, "shop.a", /not a change batch|without rows/],
    ];
    assert.equal(dead.length, expect.length, reasons.join("\n"));
    for (const [i, [seq, table, reason]] of expect.entries()) {
      assert.equal(dead[i]!.seq, seq, reasons.join("\n"));
      assert.equal(dead[i]!.table, table, reasons[i]);
      assert.match(dead[i]!.error, reason, reasons[i]);
    }
    assert.equal(b.deadLettered, expect.length);
  });

  test("a foreign message inside a source transaction neither ends nor joins it", async () => {
    const src = new FakeSource()
      .real([1, 2], { scn: 1, ordinal: 5, last: false })
      .add({ subject: DATA("a"), kind: "batch", data: batch([80], { ordinal: 6, scn: 1 }), scn: 1 })
      .add({ subject: DATA("a"), kind: "batch", data: Buffer.from([0x0a, 0xff]), scn: 40 })
      .real([3], { scn: 2, ordinal: 5, last: true, table: "b", fromRow: 2 });
    const { b, dead } = builder(src);
    const step = await b.next();
    assert.equal(step?.kind, "group");
    if (step?.kind !== "group") return;
    assert.deepEqual(
      step.txns.map((t) => t.changes.map((c) => Number(c.after!.id))),
      [[1, 2, 3]],
      "one source transaction, whole",
    );
    assert.equal(step.lastSeq, 4, "acknowledged by the transaction's last message, past the foreign ones");
    assert.equal(dead.length, 2);
  });

  test("a copy of a DDL event published again is refused; the first one is applied", async () => {
    const ddl = encodeDdl({
      sourceId: SOURCE,
      serverUuid: "",
      db: "shop",
      statement: "ALTER TABLE a ADD c INT",
      position: undefined,
      scn: 2n,
      commitTime: 0n,
      captureTimeMs: 0n,
      tables: [{ db: "shop", table: "a" }],
    });
    const src = new FakeSource()
      .real([1], { scn: 1 })
      .add({ subject: subjects.ddl(SOURCE), kind: "ddl", data: ddl, scn: 2 })
      .add({ subject: subjects.ddl(SOURCE), kind: "ddl", data: ddl, scn: 2 })
      .real([2], { scn: 3 });
    const { b, dead } = builder(src);
    const { txns, ddl: statements } = await drain(b);
    assert.deepEqual(txns, [[1], [2]]);
    assert.deepEqual(statements, ["ALTER TABLE a ADD c INT"]);
    assert.equal(dead.length, 1);
    assert.match(dead[0]!.error, /copy of an older message/);
  });
});

function hb(scn: number) {
  return { sourceId: SOURCE, position: undefined, scn: BigInt(scn), sourceTimeMs: 1n, captureTimeMs: 1n };
}

/** A foreign message of a random sort: bytes, JSON, a cut or altered copy of a real one, wrong headers. */
function foreign(r: Random, real: Uint8Array, lastScn: number): Parameters<FakeSource["add"]>[0] {
  const subject = r.pick([DATA("a"), DATA("b"), subjects.ddl(SOURCE), subjects.heartbeat(SOURCE)]);
  switch (r.int(7)) {
    case 0:
      return { subject, kind: r.pick(["batch", "ddl", "heartbeat"]), data: r.bytes(r.int(300)) };
    case 1:
      return { subject, kind: "batch", data: Buffer.from(JSON.stringify({ op: "c", id: r.int(1000) })) };
    case 2:
      return { subject: DATA("a"), kind: "batch", data: real.subarray(0, 1 + r.int(real.length - 1)) };
    case 3:
      return { subject: DATA("a"), kind: "batch", data: real, scn: lastScn, journal: JOURNAL }; // a replay
    case 4:
      return { subject: DATA("a"), kind: r.pick(["", "Batch", "delete", "ddl"]), data: real };
    case 5:
      return { subject: DATA("b"), kind: "batch", data: real, scn: lastScn + 1000, journal: JOURNAL };
    default:
      return { subject, kind: "heartbeat", data: encodeHeartbeat({ ...hb(0), sourceId: "elsewhere" }) };
  }
}

test(`seeded: random foreign messages between capture's never change what is applied (seed ${SEED})`, async () => {
  const seed = SEED;
  const r = seededRandom(seed);
  const src = new FakeSource();
  const expected: number[][] = [];
  let foreigners = 0;
  for (let scn = 1; scn <= 300; scn++) {
    const ids = [scn * 10, scn * 10 + 1];
    const data = batch(ids, { scn });
    src.add({ subject: DATA("a"), kind: "batch", data, scn });
    expected.push(ids);
    for (let k = r.int(3); k > 0; k--, foreigners++) src.add(foreign(r, data, scn));
  }
  const { b, dead } = builder(src);
  const { txns } = await drain(b);
  assert.deepEqual(txns, expected, `seed ${seed}: the applied changes`);
  assert.equal(dead.length, foreigners, `seed ${seed}: every foreign message dead-lettered`);
  for (const d of dead) assert.ok(d.error.length > 10, `seed ${seed}: a reason for ${d.seq}: ${d.error}`);
});

test("a forged message with an SCN far ahead does not make capture's next messages look old", async () => {
  const src = new FakeSource()
    .real([1], { scn: 1 })
    .add({ subject: DATA("a"), kind: "batch", data: batch([77], { scn: 1000 }), scn: 1000 })
    .real([2], { scn: 2 })
    .real([3], { scn: 3 })
    .add({ subject: DATA("a"), kind: "batch", data: batch([77], { scn: 1000 }), scn: 1000 })
    .add({ subject: DATA("a"), kind: "batch", data: batch([2], { scn: 2 }), scn: 2 });
  const { b, dead } = builder(src);
  const { txns } = await drain(b);
  // The forged one cannot be told from capture's (it is applied); its copy and the copy of 2 are not.
  assert.deepEqual(txns, [[1], [77], [2], [3]]);
  assert.deepEqual(
    dead.map((d) => d.seq),
    [5, 6],
  );
});
