// Fuzz under load: a running pipeline (capture, relmgr publishing the table-group plan, a DPU
// applying the plan's group, and the monitor watching all three) takes a steady small write load
// on the source WHILE every endpoint gets seeded bad input from a few clients at once: raw TCP
// garbage; truncated, oversized and malformed HTTP/2 frames and gRPC calls with random protobuf,
// bad message frames and messages above the receive limit on the gRPC ports of capture, the DPU
// and relmgr; malformed, truncated and oversized HTTP/1 requests on every HTTP port; malformed
// and truncated WebSocket frames and bad messages on the monitor's socket. Each input gets an
// error status, a GOAWAY, a close code or a closed connection within a deadline. Bounded: INPUTS
// inputs or FUZZ_MS, whichever comes first. Afterwards every /healthz answers 200, Status with the
// token succeeds on capture, the DPU and relmgr (and relmgr's Groups still names the plan), the
// monitor's own gRPC polling shows all three running, no service stopped, the DPU applied rows
// while the fuzz ran, and every table of the target equals the source by checksum (COUNT and
// SUM(CRC32) over every column). DFS_TEST_SEED=<seed> repeats a run; every failure names it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CaptureService, startCapture } from "@dfs/capture";
import { type Random, seededRandom, testSeed, waitFor } from "@dfs/common";
import { type ControlClient, connectControl } from "@dfs/control";
import { type DpuService, startDpu } from "@dfs/dpu";
import { connectNats } from "@dfs/nats";
import { type RelmgrService, startRelmgr } from "@dfs/relmgr";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import mysql from "mysql2/promise";
import { WebSocket } from "ws";
import { type MonitorService, startMonitor } from "../../dist/index.js";
import { quiet } from "../support/fakes.js";
import {
  DEADLINE_MS,
  frame,
  grpcCall,
  h2Bad,
  h2Raw,
  hasMessage,
  httpRaw,
  type Outcome,
  q,
  randomPath,
  raw,
  tableChecksum,
  wsBad,
  wsExchange,
  wsRaw,
  wsUpgrade,
} from "../support/fuzz.js";
import { schemaSql, startLoad } from "../support/load.js";

const SEED = testSeed();
const TOKEN = "fuzz-pipeline-token-7c2e";
/** At most this many inputs... */
const INPUTS = Number(process.env.DFS_FUZZ_INPUTS) || 2_000;
/** ...started within this long. */
const FUZZ_MS = 30_000;
/** Clients sending inputs at once. */
const CLIENTS = 4;
const TABLES = ["acct", "line", "kv"] as const;
const GROUP = "fz";

/** One endpoint under fuzz. */
type Grpc = { svc: "Capture" | "Dpu" | "Relmgr"; port: number };

/** Control calls that change nothing (the only ones sent with the token) and what each service leaves out. */
const READ_ONLY: Record<Grpc["svc"], string[]> = {
  Capture: ["Status", "Health", "ListDlq", "Activity"],
  Dpu: ["Status", "Health", "ListDlq", "Activity"],
  Relmgr: ["Status", "Health", "Graph", "Groups", "LookupKey", "Orphans", "Activity"],
};
const CHANGING = ["Pause", "Resume", "Snapshot", "SetPosition", "ReplayDlq"];
const UNSERVED: Record<Grpc["svc"], string[]> = {
  Capture: ["ListDlq", "ReplayDlq"],
  Dpu: [],
  Relmgr: ["Pause", "Resume", "Snapshot", "SetPosition", "ListDlq", "ReplayDlq"],
};

interface Stack {
  capture: CaptureService;
  relmgr: RelmgrService;
  dpu: DpuService;
  monitor: MonitorService;
  controls: ControlClient[];
  stopped: string[];
}

/** One input: what it is, and its outcome checked (a message when it is not what the input should get). */
type Input = { what: string; run: () => Promise<Outcome>; check: (out: Outcome) => string | null };

const expect =
  (re: RegExp) =>
  (out: Outcome): string | null =>
    re.test(out) ? null : `expected ${re}`;

/** A gRPC call of random bytes to a random method, with the token only for calls that change nothing. */
function grpcInput(r: Random, g: Grpc): Input {
  const bytes = r.bytes(r.int(2048));
  const kind = r.int(7);
  const method = kind === 0 ? r.pick(READ_ONLY[g.svc]) : r.pick([...READ_ONLY[g.svc], ...CHANGING]);
  const token = kind === 0 ? TOKEN : r.pick([undefined, "wrong", "x".repeat(r.int(9000))]);
  const path =
    kind === 1
      ? r.pick([`/dfs.v1.${g.svc}/Nope`, "/x/y", `/${r.bytes(8).toString("hex")}`])
      : `/dfs.v1.${g.svc}/${method}`;
  const body =
    kind === 2
      ? frame(bytes, { compressed: true })
      : kind === 3
        ? frame(bytes, { length: 0xffff_ffff })
        : kind === 4
          ? bytes
          : frame(bytes);
  const headers: Record<string, string> =
    kind === 5
      ? { "grpc-encoding": r.pick(["gzip", "br", "zzz"]), "grpc-timeout": r.pick(["1n", "99999999H", "x"]) }
      : {};
  return {
    what: `gRPC ${path} kind ${kind}${token === TOKEN ? " with the token" : ""}`,
    run: () => grpcCall(g.port, path, body, { ...(token ? { token } : {}), headers }),
    check: (out) => {
      if (!/^grpc \d+$|closed|stream error/.test(out)) return "expected a gRPC status or a closed stream";
      // grpc-js answers UNIMPLEMENTED itself, before any method runs, to a request with no complete
      // message (the body ends inside the 5-byte header or the length it declares, or a frame is
      // flagged compressed without an encoding it has); an unknown method too.
      const noMessage = !hasMessage(body, headers["grpc-encoding"]);
      if (kind === 1) return out === "grpc 12" ? null : "expected UNIMPLEMENTED for an unknown method";
      if (token === TOKEN && UNSERVED[g.svc].includes(method)) return null;
      if (!noMessage && out === "grpc 12") return "a served method answered UNIMPLEMENTED";
      // Random bytes may decode as a request (unknown fields are skipped); without the token only Health answers.
      if (token !== TOKEN && method !== "Health" && out === "grpc 0") return "succeeded without the token";
      return null;
    },
  };
}

/** A malformed or oversized HTTP/1 request to an HTTP port. */
function httpInput(r: Random, port: number, name: string): Input {
  const kind = r.int(7);
  const method = r.pick([
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "TRACE",
    "BREW",
    "G\u00e9T",
    "",
    "GET GET",
  ]);
  const any = /^http [2345]\d\d$|closed|reset|answered/;
  const what = `${name} HTTP/1 kind ${kind}`;
  if (kind === 0)
    return {
      what: `${what}: random bytes`,
      run: () => raw(port, r.bytes(1 + r.int(8192))),
      check: expect(any),
    };
  if (kind === 1) {
    const n = 20_000 + r.int(100_000);
    const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(n)}\r\n\r\n`;
    return {
      what: `${what}: a ${n}-byte header`,
      run: () => httpRaw(port, head),
      check: expect(/^http 431$|closed|reset/),
    };
  }
  if (kind === 2) {
    const n = 1024 * 1024 * (1 + r.int(8));
    const head = `POST ${randomPath(r)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${n}\r\n\r\n`;
    return {
      what: `${what}: a ${n}-byte body`,
      run: () => httpRaw(port, head, Buffer.alloc(n, 0x62)),
      check: expect(any),
    };
  }
  if (kind === 3) {
    // A body cut short: the server cannot know until the client leaves; then it closes.
    const n = 1 + r.int(100_000);
    const head = `POST ${randomPath(r)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${n}\r\n\r\n`;
    return {
      what: `${what}: body cut at ${n >> 1}/${n}`,
      run: () => httpRaw(port, head, r.bytes(n >> 1), { end: true }),
      check: expect(any),
    };
  }
  if (kind === 4) {
    const chunk = r.pick(["zz", "ffffffffffffffffff", "-1", `1;${"x".repeat(20_000)}`, "5\r\nab"]);
    const head = `POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}\r\n`;
    return {
      what: `${what}: chunk size ${JSON.stringify(chunk.slice(0, 20))}`,
      run: () => httpRaw(port, head, Buffer.alloc(0), { end: true }),
      check: expect(any),
    };
  }
  if (kind === 5) {
    // HTTP/2 with prior knowledge to an HTTP/1 server, then a bad frame.
    const bad = h2Bad(r);
    return {
      what: `${what}: HTTP/2 ${bad.what}`,
      run: () => raw(port, bad.bytes, { end: bad.end }),
      check: expect(any),
    };
  }
  const head = `${method} ${randomPath(r)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  return { what: `${what}: ${method} request`, run: () => httpRaw(port, head), check: expect(any) };
}

/** Bad input to the monitor's WebSocket. */
function wsInput(r: Random, port: number): Input {
  const kind = r.int(4);
  if (kind === 0) {
    // Malformed frames: the server closes with 1002 (protocol error), 1007 (invalid UTF-8) or 1009
    // (too big); a frame cut short is closed when the client leaves.
    const bad = wsBad(r);
    return {
      what: `WebSocket ${bad.what}`,
      run: () => wsRaw(port, Buffer.concat([wsUpgrade(r), bad.bytes]), { end: bad.truncated }),
      check: expect(
        bad.truncated
          ? /^101, (close 100[0-9], )?(closed|reset)$/
          : /^101, close 10(02|07|09), (closed|reset)$/,
      ),
    };
  }
  if (kind === 1) {
    const junk = [r.bytes(r.int(500)).toString("latin1"), "null", "[1,2]", "{", "1e999"];
    return {
      what: "WebSocket messages that are not JSON objects",
      run: async () => {
        const res = await wsExchange(port, junk, junk.length);
        return res.messages.map((m) => (/"type":"error"/.test(m) ? "error" : m.slice(0, 40))).join(",");
      },
      check: expect(/^error(,error){4}$/),
    };
  }
  if (kind === 2) {
    const n = 64 * 1024 + 1 + r.int(1024 * 1024);
    return {
      what: `WebSocket message of ${n} bytes`,
      run: async () => `close ${(await wsExchange(port, ["x".repeat(n)], 1)).closed}`,
      check: expect(/^close 1009$/),
    };
  }
  const logins = Array.from({ length: 5 }, () =>
    JSON.stringify({
      type: "login",
      token: r.pick([r.bytes(20).toString("hex"), 5, null, { a: 1 }, "x".repeat(60_000)]),
    }),
  );
  return {
    what: "WebSocket logins with wrong tokens",
    run: async () => `close ${(await wsExchange(port, logins, 99)).closed}`,
    check: expect(/^close 1008$/),
  };
}

/** Input `i`, from its own generator (so a seed gives the same inputs whatever order the clients run them in). */
function inputOf(s: Stack, i: number): Input {
  const r = seededRandom((SEED ^ Math.imul(i + 1, 0x9e37_79b1)) >>> 0);
  const grpc: Grpc[] = [
    { svc: "Capture", port: s.capture.endpoints.grpc },
    { svc: "Dpu", port: s.dpu.endpoints.grpc },
    { svc: "Relmgr", port: s.relmgr.endpoints.grpc },
  ];
  const http: [string, number][] = [
    ["capture", s.capture.endpoints.http],
    ["dpu", s.dpu.endpoints.http],
    ["relmgr", s.relmgr.endpoints.http],
    ["monitor", s.monitor.port],
  ];
  const g = r.pick(grpc);
  const [name, port] = r.pick(http);
  const kind = r.int(20);
  if (kind < 2) {
    const junk = r.bytes(1 + r.int(r.chance(0.2) ? 1024 * 1024 : 4096));
    return {
      what: `${g.svc} gRPC port: TCP garbage`,
      run: () => raw(g.port, junk),
      check: expect(/closed|reset|answered/),
    };
  }
  if (kind < 6) {
    // Protocol errors in an HTTP/2 connection: a GOAWAY naming the error (RFC 9113 section 5.4.1),
    // or for a header block that decodes, a stream refused or answered (see h2Bad).
    const bad = h2Bad(r);
    return {
      what: `${g.svc} gRPC port: HTTP/2 ${bad.what}`,
      run: () => h2Raw(g.port, bad.bytes, { end: bad.end }),
      check: expect(bad.answer),
    };
  }
  if (kind < 11) return grpcInput(r, g);
  if (kind === 11)
    return {
      what: `${g.svc} Health with a message above the 4 MB limit`,
      run: () =>
        grpcCall(
          g.port,
          `/dfs.v1.${g.svc}/Health`,
          frame(Buffer.alloc(4 * 1024 * 1024 + 1 + r.int(1024 * 1024), 7)),
        ),
      check: expect(/^grpc 8$/),
    };
  if (kind < 17) return httpInput(r, port, name);
  return wsInput(r, s.monitor.port);
}

/**
 * Logs in on the monitor's socket and resolves with the services (name and state) of the first
 * state it pushes that was polled after `sinceMs`; a refused login or the deadline rejects.
 */
function monitorView(port: number, sinceMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const done = (err: Error | null, view: string[] = []) => {
      clearTimeout(timer);
      ws.terminate();
      if (err) reject(err);
      else resolve(view);
    };
    const timer = setTimeout(
      () => done(new Error(`seed ${SEED}: no state from the monitor after ${sinceMs}`)),
      DEADLINE_MS,
    );
    ws.on("open", () => ws.send(JSON.stringify({ type: "login", token: TOKEN })));
    ws.on("message", (d) => {
      const m = JSON.parse(d.toString()) as {
        type: string;
        ok?: boolean;
        state?: { timeMs: number; services: { name: string; state: string; error: string }[] };
      };
      if (m.type === "login" && !m.ok) done(new Error(`seed ${SEED}: WS login refused`));
      if (m.type === "state" && m.state && m.state.timeMs > sinceMs)
        done(
          null,
          m.state.services.map((x) => `${x.name} ${x.state}${x.error ? ` (${x.error})` : ""}`).sort(),
        );
    });
    ws.on("error", (e) => done(e));
  });
}

describe(`pipeline fuzz under load (seed ${SEED})`, () => {
  const id = uniqueId("fzpl");
  const db = `${id}_src`;
  const dstDb = `${id}_dst`;
  let src: mysql.Connection;
  let loader: mysql.Connection;
  let dst: mysql.Connection;
  let nc: NatsConnection;
  let s: Stack;

  before(async () => {
    await ensureStack();
    const cfg = testConfig(id, db, {
      target: { url: urls.targetUrl, database: dstDb },
      control: { token: TOKEN },
      dpu: { group: GROUP },
      relmgr: {
        http: { port: 0 },
        grpc: { port: 0 },
        groups: [{ name: GROUP, tables: [`${db}.acct`, `${db}.kv`] }],
      },
    });
    src = await sourceConnection();
    loader = await sourceConnection();
    dst = await mysql.createConnection({
      host: "127.0.0.1",
      port: 13307,
      user: "root",
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    await src.query(schemaSql(db));
    const capture = await startCapture(cfg, { log: quiet });
    const relmgr = await startRelmgr(cfg, { log: quiet });
    const dpu = await startDpu(cfg, { log: quiet });
    const at = (port: number) => `127.0.0.1:${port}`;
    const watched = (kind: string, e: { grpc: number; http: number }) => ({
      kind,
      grpc: at(e.grpc),
      http: `http://${at(e.http)}`,
    });
    const monitor = await startMonitor(
      testConfig(id, db, {
        control: { token: TOKEN },
        monitor: {
          http: { port: 0 },
          pollIntervalMs: 200,
          services: [
            watched("capture", capture.endpoints),
            watched("relmgr", relmgr.endpoints),
            watched("dpu", dpu.endpoints),
          ],
        },
      }),
      { log: quiet },
    );
    const controls = [
      connectControl("capture", at(capture.endpoints.grpc), { token: TOKEN }),
      connectControl("relmgr", at(relmgr.endpoints.grpc), { token: TOKEN }),
      connectControl("dpu", at(dpu.endpoints.grpc), { token: TOKEN }),
    ];
    s = { capture, relmgr, dpu, monitor, controls, stopped: [] };
    // A service whose done settles has stopped (by itself: the test stops them only in after()).
    for (const [name, svc] of [
      ["capture", capture],
      ["relmgr", relmgr],
      ["dpu", dpu],
      ["monitor", monitor],
    ] as const)
      void svc.done.then(
        () => s.stopped.push(`${name} stopped`),
        (e: Error) => s.stopped.push(`${name} failed: ${e.message}`),
      );
    await assertAlive("start", 0);
  });

  after(async () => {
    s.stopped.push("after"); // what stops from here on is the test's doing
    for (const c of s?.controls ?? []) c.close();
    await s?.monitor.stop().catch(() => {});
    await s?.dpu.stop().catch(() => {});
    await s?.relmgr.stop().catch(() => {});
    await s?.capture.stop().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc?.close().catch(() => {});
    await src?.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
    await dst?.query(`DROP DATABASE IF EXISTS ${q(dstDb)}`).catch(() => {});
    for (const c of [src, loader, dst]) await c?.end().catch(() => {});
  });

  /** Every service answers: /healthz, Status with the token, relmgr's plan, the monitor's polling of all three, a WS login. */
  async function assertAlive(when: string, sinceMs: number): Promise<void> {
    assert.deepEqual(s.stopped, [], `seed ${SEED}: a service stopped by ${when}`);
    for (const [name, port] of [
      ["capture", s.capture.endpoints.http],
      ["relmgr", s.relmgr.endpoints.http],
      ["dpu", s.dpu.endpoints.http],
      ["monitor", s.monitor.port],
    ] as const) {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
        signal: AbortSignal.timeout(DEADLINE_MS),
      });
      assert.equal(res.status, 200, `seed ${SEED}: ${name} /healthz after ${when}`);
    }
    for (const c of s.controls) {
      const st = await c.status();
      assert.equal(st.state, "running", `seed ${SEED}: ${c.kind} Status after ${when}: ${st.lastError}`);
    }
    const groups = await s.controls[1]!.groups();
    assert.deepEqual(
      groups.groups.map((g) => `${g.name}: ${[...g.tables].sort().join(",")}`),
      [`${GROUP}: ${db}.acct,${db}.kv,${db}.line`],
      `seed ${SEED}: relmgr's plan after ${when}`,
    );
    // The monitor's own gRPC polling: a state polled after `sinceMs` with all three services running.
    const want = ["capture running", "dpu running", "relmgr running"];
    let seen: string[] = [];
    await waitFor(
      async () => {
        seen = await monitorView(s.monitor.port, sinceMs);
        return seen.join() === want.join();
      },
      { timeoutMs: 15_000, what: `the monitor's view after ${when}` },
    ).catch(() => {});
    assert.deepEqual(seen, want, `seed ${SEED}: the monitor's view after ${when}`);
  }

  test("a steady write load flows while every endpoint is fuzzed; every service stays up; the target equals the source", {
    timeout: 300_000,
  }, async () => {
    const load = startLoad(loader, db, seededRandom(SEED ^ 0x1ead));
    await waitFor(() => s.dpu.status().rowsApplied > 0, {
      timeoutMs: 30_000,
      what: "the DPU to apply the first rows",
    });
    // The DPU's applied rows, sampled while the fuzz runs: a running pipeline moves in most samples
    // (a paused or stuck one in at most the first, with what it had in hand).
    const applied = [s.dpu.status().rowsApplied];
    const sampler = setInterval(() => applied.push(s.dpu.status().rowsApplied), 200);
    const txnsBefore = load.txns();

    const started = Date.now();
    const outcomes: string[] = [];
    const bad: string[] = [];
    let nextInput = 0;
    const client = async () => {
      while (nextInput < INPUTS && Date.now() - started < FUZZ_MS) {
        const i = nextInput++;
        const input = inputOf(s, i);
        const t0 = Date.now();
        const out = await input.run();
        const ms = Date.now() - t0;
        outcomes.push(`${i} ${input.what}: ${out}`);
        const problem = input.check(out) ?? (ms > DEADLINE_MS + 1000 ? `took ${ms} ms` : null);
        if (problem) bad.push(`input ${i} (${input.what}): ${out}: ${problem}`);
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const fuzzEnd = Date.now();
    clearInterval(sampler);
    applied.push(s.dpu.status().rowsApplied);
    const moved = applied.filter((n, i) => i > 0 && n > applied[i - 1]!).length;
    const txnsDuring = load.txns() - txnsBefore;
    if (process.env.DFS_FUZZ_PRINT) console.log(outcomes.join("\n"));

    assert.deepEqual(bad, [], `seed ${SEED}: inputs without the answer they should get`);
    assert.ok(
      outcomes.length >= Math.min(INPUTS, 200),
      `seed ${SEED}: only ${outcomes.length} inputs in ${FUZZ_MS} ms`,
    );
    // The load and the pipeline kept going while the endpoints were fuzzed.
    assert.ok(txnsDuring >= 20, `seed ${SEED}: only ${txnsDuring} source transactions during the fuzz`);
    assert.ok(moved >= 3, `seed ${SEED}: the DPU's applied rows during the fuzz: ${applied.join(" ")}`);

    const txns = await load.stop();
    await assertAlive("the fuzz", fuzzEnd);
    const want: Record<string, string> = {};
    const got: Record<string, string> = {};
    await waitFor(
      async () => {
        for (const t of TABLES) {
          want[t] = await tableChecksum(src, db, t);
          got[t] = await tableChecksum(dst, dstDb, t);
        }
        return TABLES.every((t) => want[t] === got[t]);
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `the target to equal the source (seed ${SEED})` },
    ).catch(() => {});
    assert.deepEqual(got, want, `seed ${SEED}: target checksums after ${txns} source transactions`);
    assert.match(want.acct ?? "", /n=[1-9]/, "the load wrote rows");
    assert.deepEqual(s.stopped, [], `seed ${SEED}: a service stopped`);
  });
});
