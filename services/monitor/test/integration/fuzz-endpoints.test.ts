// Fuzz: bad input at every endpoint of a running pipeline. A real capture and DPU on the test stack
// and the monitor watching them get seeded bursts of: raw TCP garbage, an HTTP/2 preface then
// garbage, gRPC calls with random protobuf bytes, bad frames and messages above the receive limit
// on the gRPC ports; random methods, paths, malformed request lines, huge headers and bodies on the
// HTTP ports; random, oversized, binary and malformed WebSocket frames and messages on the monitor's
// socket. Each gets an error status or a closed connection within a deadline; after each burst every
// /healthz answers 200, a Status call with the token succeeds on capture and the DPU, and a new
// WebSocket login works. DFS_TEST_SEED=<seed> repeats a run.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CaptureService, startCapture } from "@dfs/capture";
import { seededRandom, testSeed } from "@dfs/common";
import { type ControlClient, connectControl } from "@dfs/control";
import { type DpuService, startDpu } from "@dfs/dpu";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import type mysql from "mysql2/promise";
import { type MonitorService, startMonitor } from "../../dist/index.js";
import { quiet } from "../support/fakes.js";
import {
  DEADLINE_MS,
  frame,
  grpcCall,
  httpRaw,
  type Outcome,
  q,
  randomPath,
  raw,
  wsExchange,
} from "../support/fuzz.js";

const SEED = testSeed();
const TOKEN = "fuzz-endpoints-token-51ab";
/** Inputs per burst. */
const BURST = 25;

interface Stack {
  capture: CaptureService;
  dpu: DpuService;
  monitor: MonitorService;
  controls: ControlClient[];
}

/** Every service answers: /healthz 200 everywhere, Status with the token on capture and the DPU, a WS login. */
async function assertAlive(s: Stack, after: string): Promise<void> {
  for (const [name, port] of [
    ["capture", s.capture.endpoints.http],
    ["dpu", s.dpu.endpoints.http],
    ["monitor", s.monitor.port],
  ] as const) {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(DEADLINE_MS) });
    assert.equal(res.status, 200, `seed ${SEED}: ${name} /healthz after ${after}`);
  }
  for (const c of s.controls) {
    const st = await c.status();
    assert.ok(st.state === "running", `seed ${SEED}: ${c.kind} Status after ${after}: ${st.state}`);
  }
  const login = await wsExchange(s.monitor.port, [JSON.stringify({ type: "login", token: TOKEN })], 1);
  assert.match(login.messages[0] ?? "", /"type":"login","ok":true/, `seed ${SEED}: WS login after ${after}`);
}

describe(`endpoint fuzz (seed ${SEED})`, () => {
  const id = uniqueId("fzep");
  const db = `${id}_src`;
  let src: mysql.Connection;
  let nc: NatsConnection;
  let s: Stack;
  const r = seededRandom(SEED);

  before(async () => {
    await ensureStack();
    const cfg = testConfig(id, db, {
      target: { url: urls.targetUrl, database: `${id}_dst` },
      control: { token: TOKEN },
    });
    src = await sourceConnection();
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    await src.query(`CREATE DATABASE ${q(db)}`);
    const capture = await startCapture(cfg, { log: quiet });
    const dpu = await startDpu(cfg, { log: quiet });
    const at = (port: number) => `127.0.0.1:${port}`;
    const monitor = await startMonitor(
      testConfig(id, db, {
        control: { token: TOKEN },
        monitor: {
          http: { port: 0 },
          services: [
            {
              kind: "capture",
              grpc: at(capture.endpoints.grpc),
              http: `http://${at(capture.endpoints.http)}`,
            },
            { kind: "dpu", grpc: at(dpu.endpoints.grpc), http: `http://${at(dpu.endpoints.http)}` },
          ],
        },
      }),
      { log: quiet },
    );
    const controls = [
      connectControl("capture", at(capture.endpoints.grpc), { token: TOKEN }),
      connectControl("dpu", at(dpu.endpoints.grpc), { token: TOKEN }),
    ];
    s = { capture, dpu, monitor, controls };
    await assertAlive(s, "start");
  });

  after(async () => {
    for (const c of s?.controls ?? []) c.close();
    await s?.monitor.stop().catch(() => {});
    await s?.dpu.stop().catch(() => {});
    await s?.capture.stop().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc?.close().catch(() => {});
    await src?.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
    await src?.end().catch(() => {});
  });

  const grpcPorts = () => [s.capture.endpoints.grpc, s.dpu.endpoints.grpc];
  const httpPorts = () => [s.capture.endpoints.http, s.dpu.endpoints.http, s.monitor.port];

  test("gRPC ports: raw TCP garbage and an HTTP/2 preface then garbage", async () => {
    const outcomes: Outcome[] = [];
    for (let i = 0; i < BURST; i++) {
      const port = r.pick(grpcPorts());
      const junk = r.bytes(1 + r.int(r.chance(0.2) ? 1024 * 1024 : 4096));
      const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      outcomes.push(await raw(port, r.chance(0.5) ? junk : Buffer.concat([preface, junk])));
    }
    // Each is closed, or answered by the server's GOAWAY and then closed; none is left hanging.
    for (const o of outcomes)
      assert.match(o, /closed|reset|answered/, `seed ${SEED}: ${outcomes.join(", ")}`);
    await assertAlive(s, "gRPC TCP garbage");
  });

  test("gRPC calls: random protobuf bytes, bad frames, unknown methods, messages above the limit", async () => {
    const services = [
      ["Capture", s.capture.endpoints.grpc],
      ["Dpu", s.dpu.endpoints.grpc],
    ] as const;
    const readOnly = ["Status", "Health", "ListDlq", "Activity"];
    const all = [...readOnly, "Pause", "Resume", "Snapshot", "SetPosition", "ReplayDlq"];
    const results: string[] = [];
    for (let i = 0; i < BURST * 2; i++) {
      const [svc, port] = r.pick(services);
      const bytes = r.bytes(r.int(2048));
      const kind = r.int(7);
      // With the token only calls that change nothing; the others go without it (refused first).
      const method = kind === 0 ? r.pick(readOnly) : r.pick(all);
      const token = kind === 0 ? TOKEN : r.pick([undefined, "wrong", "x".repeat(r.int(9000))]);
      const path =
        kind === 1
          ? r.pick([`/dfs.v1.${svc}/Nope`, "/x/y", `/${r.bytes(8).toString("hex")}`])
          : `/dfs.v1.${svc}/${method}`;
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
          ? {
              "grpc-encoding": r.pick(["gzip", "br", "zzz"]),
              "grpc-timeout": r.pick(["1n", "99999999H", "x"]),
            }
          : {};
      const out = await grpcCall(port, path, body, { ...(token ? { token } : {}), headers });
      results.push(`${kind}:${method}:${out}`);
      // Every call ends with a gRPC status; random bytes are refused as undecodable (INTERNAL),
      // a call without the token as UNAUTHENTICATED, an unknown method as UNIMPLEMENTED.
      assert.match(out, /^grpc \d+$|closed|stream error/, `seed ${SEED}: ${results.at(-1)}`);
      // Capture keeps no dead letters: with the token its ListDlq and ReplayDlq answer UNIMPLEMENTED
      // (the proto's rule for what does not apply to a service) once the request decodes, INTERNAL
      // before; without the token they are refused first.
      const unserved =
        svc === "Capture" && (method === "ListDlq" || method === "ReplayDlq") && token === TOKEN;
      // gRPC itself answers UNIMPLEMENTED, before any method runs, to a request with no complete
      // message (the body ends inside the 5-byte header or the length it declares) and to a frame
      // flagged compressed without an encoding the server has (gzip, deflate).
      const encoding = headers["grpc-encoding"] ?? "identity";
      const complete = body.length >= 5 && body.readUInt32BE(1) <= body.length - 5;
      const decompressable = body[0] === 0 || encoding === "gzip" || encoding === "deflate";
      const noMessage = !complete || !decompressable;
      if (kind === 1) assert.equal(out, "grpc 12", `seed ${SEED}: unknown method ${path}`);
      else if (unserved)
        assert.match(out, /^grpc 1[23]$|closed|stream error/, `seed ${SEED}: ${path} unserved`);
      else if (!noMessage)
        assert.notEqual(out, "grpc 12", `seed ${SEED}: ${path} is served (${results.at(-1)})`);
      // Random bytes may decode as a request (unknown fields are skipped); without the token only Health answers.
      if (kind !== 0 && kind !== 1 && method !== "Health")
        assert.notEqual(out, "grpc 0", `seed ${SEED}: ${results.at(-1)} succeeded without the token`);
    }
    // Above the 4 MB receive limit: RESOURCE_EXHAUSTED, whoever sends it.
    for (const [svc, port] of services) {
      const out = await grpcCall(port, `/dfs.v1.${svc}/Health`, frame(Buffer.alloc(5 * 1024 * 1024, 7)));
      assert.equal(out, "grpc 8", `seed ${SEED}: ${svc} Health with a 5 MB message`);
    }
    await assertAlive(s, "gRPC calls");
  });

  test("HTTP ports: random methods and paths, malformed request lines, huge headers and bodies", async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < BURST * 2; i++) {
      const port = r.pick(httpPorts());
      const method = r.pick([
        "GET",
        "POST",
        "PUT",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "TRACE",
        "BREW",
        "G\u00e9T",
        "",
        "GET GET",
      ]);
      const kind = r.int(5);
      let out: Outcome;
      if (kind === 0) out = await raw(port, r.bytes(1 + r.int(8192)));
      else if (kind === 1)
        out = await httpRaw(
          port,
          `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000 + r.int(100_000))}\r\n\r\n`,
        );
      else if (kind === 2) {
        const n = 1024 * 1024 * (1 + r.int(16));
        out = await httpRaw(
          port,
          `POST ${randomPath(r)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${n}\r\n\r\n`,
          Buffer.alloc(n, 0x62),
        );
      } else if (kind === 3)
        out = await httpRaw(
          port,
          `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
        );
      else
        out = await httpRaw(
          port,
          `${method} ${randomPath(r)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        );
      outcomes.push(`${kind}:${method}:${out}`);
      // An answer (a 4xx/5xx for what is not a page, 200 for a page) or a closed connection.
      assert.match(out, /^http [2345]\d\d$|closed|reset|answered/, `seed ${SEED}: ${outcomes.at(-1)}`);
      if (kind === 1) assert.match(out, /^http 431$|closed|reset/, `seed ${SEED}: huge header: ${out}`);
    }
    await assertAlive(s, "HTTP requests");
  });

  test("the monitor's WebSocket: random, binary, oversized and malformed messages", async () => {
    for (let i = 0; i < BURST; i++) {
      const kind = r.int(6);
      if (kind === 0) {
        // Not JSON objects: each answered with an error message, the socket stays open.
        const junk = [r.bytes(r.int(500)).toString("latin1"), "null", "[1,2]", '"x"', "{", "1e999"];
        const res = await wsExchange(s.monitor.port, junk, junk.length);
        assert.equal(res.messages.length, junk.length, `seed ${SEED}: ${JSON.stringify(res)}`);
        for (const m of res.messages) assert.match(m, /"type":"error"/);
      } else if (kind === 1) {
        const res = await wsExchange(s.monitor.port, [r.bytes(1 + r.int(1000))], 1);
        assert.match(res.messages[0] ?? "", /"type":"error"/, `seed ${SEED}: binary frame`);
      } else if (kind === 2) {
        // Above the 64 KB limit: the server closes with 1009 (message too big).
        const res = await wsExchange(s.monitor.port, ["x".repeat(64 * 1024 + 1 + r.int(1024 * 1024))], 1);
        assert.equal(res.closed, 1009, `seed ${SEED}: oversized message: ${JSON.stringify(res)}`);
      } else if (kind === 3) {
        // Calls before login, and logins with wrong tokens of every shape: refused; the fifth closes.
        const msgs = [
          JSON.stringify({ type: "call", service: "dpu", method: "pause" }),
          ...Array.from({ length: 5 }, () =>
            JSON.stringify({
              type: "login",
              token: r.pick([r.bytes(20).toString("hex"), 5, null, { a: 1 }, [], "x".repeat(60_000)]),
            }),
          ),
        ];
        const res = await wsExchange(s.monitor.port, msgs, 99);
        assert.match(res.messages[0] ?? "", /log in first/);
        assert.equal(res.closed, 1008, `seed ${SEED}: too many wrong tokens: ${JSON.stringify(res)}`);
      } else if (kind === 4) {
        // Logged in: calls to services that do not exist, unknown methods and types, odd args.
        const msgs = [
          JSON.stringify({ type: "login", token: TOKEN }),
          JSON.stringify({
            type: "call",
            id: 1,
            service: `nope-${r.int(99)}`,
            method: "pause",
            args: { x: r.bytes(9).toString("hex") },
          }),
          JSON.stringify({
            type: "call",
            id: 2,
            service: "dpu",
            method: r.pick(["drop", "__proto__", "", "status"]),
          }),
          JSON.stringify({ type: r.pick(["nope", 7, null]) }),
          JSON.stringify({ type: "call", id: { a: 1 }, service: ["dpu"], method: "pause" }),
        ];
        const res = await wsExchange(s.monitor.port, msgs, msgs.length);
        assert.equal(res.messages.length, msgs.length, `seed ${SEED}: ${JSON.stringify(res)}`);
        // Replies to calls come when the call is done, so in any order.
        const got = res.messages.map((m) => JSON.parse(m) as { type: string; id?: unknown; ok?: boolean });
        assert.ok(got.some((m) => m.type === "login" && m.ok === true));
        for (const id of [1, 2, null])
          assert.ok(
            got.some((m) => m.type === "result" && m.id === id && m.ok === false),
            `seed ${SEED}: call ${id}: ${res.messages.join(" ")}`,
          );
        assert.ok(
          got.some((m) => m.type === "error"),
          `seed ${SEED}: ${res.messages.join(" ")}`,
        );
      } else {
        // A raw upgrade, then frames no browser sends: unmasked, reserved bits, bad opcodes, a
        // length of 2^63. The server closes the connection.
        const key = Buffer.from(r.bytes(16)).toString("base64");
        const upgrade = `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
        const bad = r.pick([
          Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]),
          Buffer.from([0xf3, 0x80, 0, 0, 0, 0]),
          Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]),
        ]);
        const out = await raw(s.monitor.port, Buffer.concat([Buffer.from(upgrade), bad]), {
          untilClose: true,
        });
        assert.match(out, /closed|reset/, `seed ${SEED}: raw frames: ${out}`);
        // Random bytes may be the start of a frame the server waits to see the rest of (then the
        // login timeout closes the socket): answered or closed, either way the server stays up.
        const junk = await raw(
          s.monitor.port,
          Buffer.concat([Buffer.from(upgrade), r.bytes(1 + r.int(200))]),
          {
            untilClose: true,
          },
        );
        assert.match(junk, /closed|reset|answered/, `seed ${SEED}: raw junk frames: ${junk}`);
      }
    }
    await assertAlive(s, "WebSocket messages");
  });
});
