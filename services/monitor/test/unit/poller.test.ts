// The poller against stand-in services with real gRPC control planes and /metrics: what it
// gathers, rates from counters, per-table counts, DLQ, and a service that goes away and returns.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Position } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { binlogDistance, Poller, tableRows } from "../../dist/poller.js";
import type { MonitorState } from "../../dist/view.js";
import { type FakeService, fakeService, quiet } from "../support/fakes.js";

const TOKEN = "poller-test-token";

describe("poller", () => {
  let capture: FakeService;
  let dpu: FakeService;
  let poller: Poller;
  let last: MonitorState | null = null;
  let states = 0;

  before(async () => {
    capture = await fakeService("capture", TOKEN);
    dpu = await fakeService("dpu", TOKEN);
    poller = new Poller({
      sourceId: "src1",
      services: [
        { kind: "capture", name: "capture", grpc: capture.grpc, http: capture.http },
        { kind: "dpu", name: "dpu-default", grpc: dpu.grpc, http: dpu.http },
      ],
      token: TOKEN,
      intervalMs: 150,
      callTimeoutMs: 1000,
      log: quiet,
    });
    poller.subscribe((s) => {
      last = s;
      states++;
    });
    poller.start();
  });
  after(async () => {
    await poller?.stop();
    await capture?.close();
    await dpu?.close();
  });

  const until = (check: (s: MonitorState) => unknown, what: string, timeoutMs = 5000) =>
    waitFor((): MonitorState | null => (last && check(last) ? last : null), { timeoutMs, what });

  test("gathers Status, Activity, DLQ and metrics of each service into one state", async () => {
    capture.capture!.captured.inc({ db: "shop", table: "orders", op: "c" }, 5);
    capture.capture!.captured.inc({ db: "shop", table: "orders", op: "u" }, 2);
    capture.capture!.published.inc({ db: "shop", table: "orders", op: "c" }, 5);
    dpu.dpu!.applied.inc({ db: "shop_copy", table: "orders", op: "c" }, 4);
    capture.activity.add({ kind: "change", db: "shop", table: "orders", op: "c", text: "id=42", rows: 1 });
    dpu.activity.add({
      kind: "dml",
      db: "shop_copy",
      table: "orders",
      op: "INSERT",
      text: "INSERT INTO `shop_copy`.`orders` (`id`) VALUES (?)",
      rows: 1,
      durationMs: 0.8,
    });
    dpu.activity.add({ kind: "error", text: "target: connection lost (retrying)" });
    dpu.dlq = [
      {
        seq: 9n,
        subject: "dfs.src1._dlq.shop.orders",
        db: "shop",
        table: "orders",
        error: "Duplicate entry",
        timeMs: BigInt(Date.now()),
        rows: 1,
      },
    ];
    const s = await until((s) => s.changes.length > 0 && s.dml.length > 0 && s.dlq.length > 0, "activity");
    const [c, d] = s.services;
    assert.equal(c?.state, "running");
    assert.equal(c?.position, "mysql-bin.000003:4242");
    assert.equal(c?.backlog, 3);
    assert.equal(c?.backlogBytes, 1024);
    assert.equal(c?.lagSeconds, 0.25);
    assert.equal(d?.name, "dpu-default");
    assert.equal(d?.position, "mysql-bin.000003:4000", "the DPU's position is the source position applied");
    assert.equal(d?.streamSeq, 17);
    assert.equal(s.changes[0]?.text, "id=42");
    assert.equal(s.changes[0]?.service, "capture");
    assert.match(s.dml[0]?.text ?? "", /^INSERT INTO/);
    assert.equal(s.dlq[0]?.seq, 9);
    assert.ok(s.errors.some((e) => e.text.includes("connection lost") && !e.current));
    // The DPU writes shop_copy.orders: matched to the only captured table named orders.
    const row = s.tables.find((t) => t.table === "shop.orders");
    assert.deepEqual(row, {
      table: "shop.orders",
      target: "shop_copy.orders",
      captured: { c: 5, u: 2, d: 0, r: 0 },
      published: 5,
      applied: { c: 4, u: 0, d: 0, r: 0 },
    });
    // The state is JSON as it is (no bigints).
    assert.doesNotThrow(() => JSON.stringify(s));
  });

  test("activity is read incrementally, without repeats", async () => {
    const before = (await until((s) => s.changes.length > 0, "changes")).changes.length;
    capture.activity.add({ kind: "change", db: "shop", table: "orders", op: "d", text: "id=43", rows: 1 });
    const s = await until((s) => s.changes[0]?.text === "id=43", "the new change");
    assert.equal(s.changes.length, before + 1);
  });

  test("rates come from counter deltas; the chart history grows per poll", async () => {
    const n = states;
    capture.capture!.captured.inc({ db: "shop", table: "orders", op: "c" }, 1000);
    const s = await until((s) => s.point.captured > 0, "a captured rate");
    assert.ok(s.services[0]!.rate > 0);
    assert.ok(poller.points().length >= 2);
    assert.ok(states > n);
    await until((s) => s.point.captured === 0, "the rate to fall back to 0");
  });

  test("a service that goes away is unreachable, with an error; it comes back", async () => {
    await dpu.stopGrpc();
    const s = await until((s) => s.services[1]?.state === "unreachable", "dpu unreachable");
    assert.match(s.services[1]!.error, /UNAVAILABLE|DEADLINE/);
    assert.ok(s.errors.some((e) => e.current && e.service === "dpu-default" && /unreachable/.test(e.text)));
    // The other service still updates.
    assert.equal(s.services[0]?.state, "running");
    await dpu.startGrpc();
    await until((s) => s.services[1]?.state === "running", "dpu back", 10_000);
  });

  test("lastError and paused state are reported", async () => {
    capture.status = { ...capture.status, state: "paused", lastError: "source connection reset" };
    const s = await until((s) => s.services[0]?.state === "paused", "paused");
    assert.equal(s.services[0]?.error, "source connection reset");
    assert.ok(s.errors.some((e) => e.current && e.text === "source connection reset"));
    capture.status = { ...capture.status, state: "running", lastError: "" };
    await until((s) => s.services[0]?.state === "running" && s.errors.every((e) => !e.current), "clear");
  });

  test("calls go to the named service with the token", async () => {
    assert.equal(await poller.call("capture", "pause"), "capture: paused");
    assert.equal(await poller.call("capture", "resume"), "capture: running");
    assert.match(
      await poller.call("capture", "snapshot", { tables: ["shop.orders", "`my.db`.t"] }),
      /snap-1/,
    );
    assert.equal(
      await poller.call("dpu-default", "replayDlq", { seqs: [9] }),
      "dpu-default: 1 dead letter replayed",
    );
    assert.deepEqual(
      [...capture.calls, ...dpu.calls].map((c) => c.method),
      ["pause", "resume", "snapshot", "replayDlq"],
    );
    assert.deepEqual(dpu.calls[0]?.args, [9]);
    assert.deepEqual(capture.calls[2]?.args, [
      { db: "shop", table: "orders" },
      { db: "my.db", table: "t" },
    ]);
    await assert.rejects(poller.call("nope", "pause"), /no service named "nope"/);
    await assert.rejects(poller.call("capture", "replayDlq"), /UNIMPLEMENTED/);
    await assert.rejects(poller.call("dpu-default", "replayDlq", { seqs: ["x"] }), /seqs must be/);
  });
});

test("tableRows keeps tables apart when a target name is ambiguous", () => {
  const sample = (name: string, db: string, table: string, op: string, value: number) => ({
    name,
    labels: { db, table, op },
    value,
  });
  const rows = tableRows([
    {
      svc: { kind: "capture" },
      samples: [
        sample("dfs_capture_changes_total", "a", "t", "c", 1),
        sample("dfs_capture_changes_total", "b", "t", "c", 2),
        sample("dfs_capture_changes_total", "a", "u", "d", 3),
      ],
    },
    {
      svc: { kind: "dpu" },
      samples: [
        sample("dfs_dpu_changes_applied_total", "a", "t", "c", 1),
        sample("dfs_dpu_changes_applied_total", "x", "t", "c", 2),
        sample("dfs_dpu_changes_applied_total", "x", "u", "d", 3),
      ],
    },
  ]);
  assert.deepEqual(
    rows.map((r) => [r.table, r.target, r.captured.c + r.captured.d, r.applied.c + r.applied.d]),
    [
      ["a.t", "", 1, 1],
      ["a.u", "x.u", 3, 3],
      ["b.t", "", 2, 0],
      ["x.t", "", 0, 2],
    ],
  );
});

test("binlogDistance: bytes within a file, whole files across, nothing across servers", () => {
  const p = (f: number, pos: number, server = "s") =>
    Position.at(`mysql-bin.${String(f).padStart(6, "0")}`, pos, "", server);
  assert.equal(binlogDistance(p(3, 1000), p(3, 1500)), "500 B");
  assert.equal(binlogDistance(p(3, 0), p(3, 3 * 1024 * 1024)), "3.0 MiB");
  assert.equal(binlogDistance(p(3, 1000), p(5, 4)), "2 binlog files");
  assert.equal(binlogDistance(p(3, 1500), p(3, 1500)), "0 B");
  assert.equal(binlogDistance(p(3, 1), p(4, 1, "other")), "", "positions of two servers do not compare");
  assert.equal(binlogDistance(Position.NONE, p(3, 1)), "");
});

test("tableRows shows a mapped table's target tables (the pipeline use)", () => {
  const rows = tableRows(
    [
      {
        svc: { kind: "capture" },
        samples: [
          { name: "dfs_capture_changes_total", labels: { db: "shop", table: "orders", op: "c" }, value: 4 },
        ],
      },
      {
        svc: { kind: "dpu" },
        samples: [
          {
            name: "dfs_dpu_changes_applied_total",
            labels: { db: "shop", table: "orders", op: "c" },
            value: 4,
          },
        ],
      },
    ],
    new Map([["shop.orders", "crm.sales, crm.audit"]]),
  );
  assert.deepEqual(
    rows.map((r) => [r.table, r.target, r.captured.c, r.applied.c]),
    [["shop.orders", "crm.sales, crm.audit", 4, 4]],
  );
});
