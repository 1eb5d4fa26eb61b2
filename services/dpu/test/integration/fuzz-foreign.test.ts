// Fuzz: foreign messages on the pipeline's own subjects while the source is written. Capture and the
// DPU run on a test database; a seeded publisher puts random bytes, JSON, truncated real envelopes,
// exact copies of real ones, real ones with a wrong Dfs-Kind, a wrong subject, a wrong SCN header, a
// renamed column, and large-but-allowed payloads on dfs.<source>.<db>.<table>, _ddl and _heartbeat.
// Each is dead-lettered with a reason naming what is wrong, the DPU keeps running and applying, and
// at the end the target equals the source, table by table. DFS_TEST_SEED=<seed> repeats a run.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeBatch, encodeBatch, Headers } from "@dfs/codec";
import { type Random, seededRandom, testSeed, waitFor } from "@dfs/common";
import { subjects } from "@dfs/nats";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { listDeadLetters } from "../../dist/dlq.js";
import { openPipeline, type Pipeline, q } from "../support/pipeline.js";

const SEED = testSeed();
const FOREIGN = 200;
const ROUNDS = 300;

interface Raw {
  seq: number;
  subject: string;
  data: Uint8Array;
  kind: string;
  scn: string;
  journal: string;
}

/** Capture's messages as stored (payload and headers), for copies and mutations. */
async function realMessages(p: Pipeline): Promise<Raw[]> {
  const jsm = await jetstreamManager(p.nc);
  const stream = subjects.streamName(p.id);
  const info = await jsm.streams.info(stream);
  const out: Raw[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m) continue;
    out.push({
      seq,
      subject: m.subject,
      data: m.data,
      kind: m.header.get(Headers.kind) ?? "",
      scn: m.header.get(Headers.scn) ?? "",
      journal: m.header.get(Headers.journal) ?? "",
    });
  }
  return out;
}

interface Foreign {
  what: string;
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
  /** What the dead letter's reason must say. */
  reason: RegExp;
}

/** One foreign message of a random sort, made from capture's real ones. */
function foreign(r: Random, p: Pipeline, reals: Raw[], n: number): Foreign {
  const batches = reals.filter((m) => m.kind === "batch");
  const real = r.pick(batches);
  const t1 = subjects.data(p.id, p.db, "t1");
  const any = r.pick([t1, subjects.data(p.id, p.db, "t2"), subjects.ddl(p.id), subjects.heartbeat(p.id)]);
  // A fresh SCN header of capture's journal: only the payload can tell these apart from capture's.
  const fresh = {
    [Headers.kind]: "batch",
    [Headers.scn]: String(1_000_000 + n),
    [Headers.journal]: real.journal,
  };
  const copied = { [Headers.kind]: real.kind, [Headers.scn]: real.scn, [Headers.journal]: real.journal };
  switch (r.int(9)) {
    case 0:
      return {
        what: "random bytes",
        subject: any,
        data: r.bytes(1 + r.int(2000)),
        headers: { ...fresh, [Headers.kind]: r.pick(["batch", "ddl", "heartbeat"]) },
        reason: /malformed|not a change batch|without|source|where only|differs|no database/,
      };
    case 1:
      return {
        what: "JSON",
        subject: t1,
        data: Buffer.from(JSON.stringify({ op: "c", db: p.db, table: "t1", after: { id: 1, v: "x" } })),
        headers: fresh,
        reason: /not a change batch/,
      };
    case 2:
      return {
        what: "a truncated real envelope",
        subject: real.subject,
        data: real.data.subarray(0, 1 + r.int(real.data.length - 1)),
        headers: copied,
        reason: /delivered already|not a change batch|without rows/,
      };
    case 3:
      return {
        what: "an exact copy of a real envelope",
        subject: real.subject,
        data: real.data,
        headers: copied,
        reason: /delivered already: a copy of an older message/,
      };
    case 4:
      return {
        what: "a real envelope with a wrong Dfs-Kind",
        subject: real.subject,
        data: real.data,
        headers: { ...fresh, [Headers.kind]: r.pick(["", "Batch", "ddl", "heartbeat", "delete"]) },
        reason: /Dfs-Kind|where only batch messages belong/,
      };
    case 5:
      return {
        what: "a real envelope without Dfs-Scn/Dfs-Journal",
        subject: real.subject,
        data: real.data,
        headers: { [Headers.kind]: "batch" },
        reason: /no Dfs-Scn and Dfs-Journal headers/,
      };
    case 6:
      return {
        what: "a real envelope whose SCN header is not its own",
        subject: real.subject,
        data: real.data,
        headers: fresh,
        reason: /differs from its Dfs-Scn header/,
      };
    case 7: {
      const b = decodeBatch(real.data);
      const other = real.subject === t1 ? subjects.data(p.id, p.db, "t2") : t1;
      return {
        what: "a real envelope on another table's subject",
        subject: other,
        data: real.data,
        headers: { ...fresh, [Headers.scn]: String(b.scn) },
        reason: /a batch for .* on the subject of|delivered already/,
      };
    }
    default: {
      // A large payload (within NATS's limit) that is a batch of another source with renamed columns.
      const b = decodeBatch(real.data);
      b.sourceId = `${p.id}x`;
      b.columns = b.columns.map((c) => ({ ...c, name: `${c.name}_${r.int(9)}` }));
      b.scn = BigInt(1_000_000 + n);
      return {
        what: "a large envelope of another source",
        subject: real.subject,
        data: Buffer.concat([encodeBatch(b), padding(256 * 1024 + r.int(600 * 1024))]),
        headers: fresh,
        reason: /a message of source/,
      };
    }
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n % 0x80) | 0x80);
  out.push(n);
  return out;
}

/** Unknown field 100 (bytes) of `n` bytes: skipped by the decoder, so the message stays a batch. */
function padding(n: number): Buffer {
  return Buffer.concat([Buffer.from([...varint((100 << 3) | 2), ...varint(n)]), Buffer.alloc(n, 0x41)]);
}

async function writeLoad(p: Pipeline, r: Random): Promise<void> {
  for (let i = 0; i < ROUNDS; i++) {
    const id = 1 + r.int(60);
    const sql = r.pick([
      `INSERT INTO ${q(p.db)}.t1 VALUES (${id}, 'v${i}', ${r.int(1e9)}) ON DUPLICATE KEY UPDATE v = 'u${i}', n = n + 1`,
      `UPDATE ${q(p.db)}.t1 SET n = n * 2, v = 'w${i}' WHERE id = ${id}`,
      `DELETE FROM ${q(p.db)}.t1 WHERE id = ${id}`,
      `REPLACE INTO ${q(p.db)}.t2 VALUES (${id}, UNHEX('${r.bytes(r.int(200)).toString("hex")}'), ${r.int(1e6)}.${r.int(1e6)})`,
      `DELETE FROM ${q(p.db)}.t2 WHERE id = ${id}`,
    ]);
    await p.src.query(`BEGIN; ${sql}; COMMIT`);
  }
}

test(`fuzz (seed ${SEED}): foreign messages on the pipeline's subjects are dead-lettered with the reason; the target equals the source`, {
  timeout: 300_000,
}, async (t) => {
  const r = seededRandom(SEED);
  const p = await openPipeline("fzfx");
  try {
    await p.src.query(`CREATE TABLE ${q(p.db)}.t1 (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT)`);
    await p.src.query(`CREATE TABLE ${q(p.db)}.t2 (id INT PRIMARY KEY, b BLOB, d DECIMAL(20,6))`);
    await p.startCapture();
    const dpu = await p.startDpu();
    await p.src.query(`INSERT INTO ${q(p.db)}.t1 VALUES (1, 'a', 1), (2, 'b', 2)`);
    await p.src.query(`INSERT INTO ${q(p.db)}.t2 VALUES (1, x'00ff', 1.5)`);
    await p.converged("t1");
    await p.converged("t2");
    const reals = await realMessages(p);
    assert.ok(
      reals.some((m) => m.kind === "batch"),
      "capture's batches are on the stream",
    );

    // The source is written while foreign messages arrive between capture's.
    const js = jetstream(p.nc);
    const sent = new Map<number, Foreign>();
    const publishForeign = async () => {
      for (let n = 0; n < FOREIGN; n++) {
        const f = foreign(r, p, reals, n);
        const h = natsHeaders();
        for (const [k, v] of Object.entries(f.headers)) if (v !== "") h.set(k, v);
        const ack = await js.publish(f.subject, f.data, { headers: h, msgID: `fuzz-${SEED}-${n}` });
        sent.set(ack.seq, f);
      }
    };
    await Promise.all([writeLoad(p, seededRandom(SEED + 1)), publishForeign()]);
    await p.src.query(`INSERT INTO ${q(p.db)}.t1 VALUES (1000, 'last', 0)`);

    await p.converged("t1", 90_000);
    await p.converged("t2", 90_000);
    await waitFor(async () => (await listDeadLetters(p.nc, p.id)).length >= sent.size, {
      timeoutMs: 30_000,
      what: "every foreign message dead-lettered",
    }).catch(() => {});
    const letters = await listDeadLetters(p.nc, p.id);
    const bySeq = new Map(letters.map((l) => [l.streamSeq, l]));
    const problems: string[] = [];
    for (const [seq, f] of sent) {
      const l = bySeq.get(seq);
      if (!l) problems.push(`seq ${seq} (${f.what}) was not dead-lettered`);
      else if (!f.reason.test(l.error))
        problems.push(`seq ${seq} (${f.what}): reason "${l.error}" !~ ${f.reason}`);
    }
    for (const l of letters)
      if (!sent.has(l.streamSeq))
        problems.push(`capture's message ${l.streamSeq} was dead-lettered: ${l.error}`);
    assert.deepEqual(problems, [], `seed ${SEED}`);
    const st = dpu.status();
    assert.equal(st.state, "running", `seed ${SEED}: the DPU keeps running (${st.lastError})`);
    assert.equal(st.deadLettered, sent.size, `seed ${SEED}: status().deadLettered`);
    const kinds = new Map<string, number>();
    for (const f of sent.values()) kinds.set(f.what, (kinds.get(f.what) ?? 0) + 1);
    t.diagnostic(
      `seed ${SEED}: ${sent.size} foreign messages dead-lettered (${[...kinds].map(([k, n]) => `${n} ${k}`).join(", ")}); ${st.rowsApplied} rows applied`,
    );
    const health = await fetch(`http://127.0.0.1:${dpu.endpoints.http}/healthz`);
    assert.equal(health.status, 200, "the DPU's /healthz");
  } finally {
    await p.close();
  }
});
