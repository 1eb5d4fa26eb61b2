// The control plane and metrics of capture and the DPU, on a real pipeline: gRPC calls change
// what Status reports, a wrong token is refused, metrics move when rows flow.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { waitFor } from "@dfs/common";
import { type ControlClient, connectControl } from "@dfs/control";
import { parseMetrics, sumOf } from "@dfs/metrics";
import { openPipeline, type Pipeline, q } from "../support/pipeline.js";

const TOKEN = "test-token-of-the-control-plane";

/** Fails if `happened` becomes true within `ms` (polled): for "nothing moves while paused". */
async function staysFalse(happened: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    assert.equal(await happened(), false, what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function scrape(port: number) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return parseMetrics(await res.text());
}

describe("control plane", () => {
  let p: Pipeline;
  let capture: ControlClient;
  let dpu: ControlClient;
  const targetHas = async (id: number) => {
    const [rows] = await p.dst.query(`SELECT COUNT(*) AS n FROM ${q(p.targetDb)}.t WHERE id = ?`, [id]);
    return Number((rows as { n: number }[])[0]?.n) === 1;
  };

  before(async () => {
    p = await openPipeline("ctl", {}, { control: { token: TOKEN } });
    await p.src.query(`CREATE TABLE ${q(p.db)}.t (id INT PRIMARY KEY, v VARCHAR(20))`);
    const c = await p.startCapture();
    const d = await p.startDpu();
    capture = connectControl("capture", `127.0.0.1:${c.endpoints.grpc}`, { token: TOKEN });
    dpu = connectControl("dpu", `127.0.0.1:${d.endpoints.grpc}`, { token: TOKEN });
  });
  after(async () => {
    capture?.close();
    dpu?.close();
    await p?.close();
  });

  test("a wrong or missing token is refused; Health needs none", async () => {
    for (const [kind, port] of [
      ["capture", p.capture!.endpoints.grpc],
      ["dpu", p.dpu!.endpoints.grpc],
    ] as const) {
      const wrong = connectControl(kind, `127.0.0.1:${port}`, { token: "not-the-token" });
      const none = connectControl(kind, `127.0.0.1:${port}`);
      try {
        await assert.rejects(wrong.status(), /UNAUTHENTICATED: wrong token/);
        await assert.rejects(wrong.pause(), /UNAUTHENTICATED/);
        await assert.rejects(none.status(), /UNAUTHENTICATED: missing authorization/);
        const health = await none.health();
        assert.equal(health.live, true);
        assert.equal(health.ready, true);
      } finally {
        wrong.close();
        none.close();
      }
    }
    // The refused pause changed nothing.
    assert.equal((await capture.status()).state, "running");
    assert.equal((await dpu.status()).state, "running");
    await assert.rejects(capture.listDlq(), /UNIMPLEMENTED: capture does not serve listDlq/);
  });

  test("Status reports rows; Pause stops and Resume restarts each stage", async () => {
    await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (1,'a'),(2,'b'),(3,'c')`);
    await p.converged("t");
    const cs = await capture.status();
    assert.equal(cs.service, "capture");
    assert.equal(cs.state, "running");
    assert.ok(cs.changesTotal >= 3n, `capture changesTotal ${cs.changesTotal}`);
    assert.match(cs.position, /^mysql-bin\.\d+:\d+$/);
    const ds = await dpu.status();
    assert.equal(ds.state, "running");
    assert.ok(
      ds.changesTotal >= 3n && ds.streamSeq > 0n && /^mysql-bin\.\d+:\d+$/.test(ds.position),
      JSON.stringify(ds, (_, v) => String(v)),
    );

    // Capture paused: the source moves on, nothing reaches the stream or the target.
    const paused = await capture.pause();
    assert.equal(paused.state, "paused");
    assert.equal(paused.details.readerPaused, "true");
    const before = (await capture.status()).changesTotal;
    await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (4,'d')`);
    await staysFalse(() => targetHas(4), 1500, "row 4 reached the target while capture was paused");
    assert.equal((await capture.status()).changesTotal, before);
    assert.equal((await capture.resume()).state, "running");
    await waitFor(() => targetHas(4), { timeoutMs: 15_000, what: "row 4 after resume" });

    // DPU paused: capture goes on, the target does not.
    assert.equal((await dpu.pause()).state, "paused");
    await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (5,'e')`);
    await waitFor(async () => (await capture.status()).changesTotal > before + 1n, {
      timeoutMs: 10_000,
      what: "capture to read row 5",
    });
    await staysFalse(() => targetHas(5), 1500, "row 5 reached the target while the dpu was paused");
    assert.ok((await dpu.status()).backlog >= 1n, "the paused dpu reports a backlog");
    assert.equal((await dpu.resume()).state, "running");
    await p.converged("t");
  });

  test("SetPosition needs a pause, checks the position, and moves the reader", async () => {
    await assert.rejects(capture.setPosition("latest"), /INVALID_ARGUMENT: .*pause capture/);
    await capture.pause();
    try {
      await assert.rejects(capture.setPosition("nonsense"), /INVALID_ARGUMENT: position "nonsense"/);
      await assert.rejects(capture.setPosition("mysql-bin.999999:4"), /no binlog mysql-bin.999999/);
      const moved = await capture.setPosition("latest");
      assert.equal(moved.state, "paused");
    } finally {
      await capture.resume();
    }
    // The DPU re-applies from the start of the stream: idempotent, the target stays equal.
    await dpu.pause();
    try {
      const s = await dpu.setPosition("earliest");
      assert.equal(s.streamSeq, 0n, "the checkpoint is at the start of the stream");
    } finally {
      await dpu.resume();
    }
    await waitFor(async () => (await dpu.status()).streamSeq > 0n, {
      timeoutMs: 15_000,
      what: "the dpu to apply again from the start",
    });
    await p.src.query(`UPDATE ${q(p.db)}.t SET v = 'z' WHERE id = 1`);
    await p.converged("t");
  });

  test("ListDlq shows a refused change; ReplayDlq applies it once fixed", async () => {
    await p.dst.query(`ALTER TABLE ${q(p.targetDb)}.t MODIFY v VARCHAR(3)`);
    await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (6,'longer')`);
    const listed = await waitFor(
      async () => {
        const r = await dpu.listDlq();
        return r.entries.length > 0 ? r : null;
      },
      { timeoutMs: 15_000, what: "a dead letter" },
    );
    const entry = listed.entries[0]!;
    assert.equal(entry.table, "t");
    assert.match(entry.error, /errno 1406/);
    assert.equal((await dpu.listDlq({ table: { db: p.db, table: "other" } })).entries.length, 0);
    const dlqMetric = sumOf(await scrape(p.dpu!.endpoints.http), "dfs_dpu_dlq_total", { table: "t" });
    assert.equal(dlqMetric, 1);

    await p.dst.query(`ALTER TABLE ${q(p.targetDb)}.t MODIFY v VARCHAR(20)`);
    const replayed = await dpu.replayDlq([Number(entry.seq)]);
    assert.equal(replayed.replayed, 1);
    assert.equal(await targetHas(6), true);
    assert.equal((await dpu.listDlq()).entries.length, 0);
  });

  test("Activity lists the rows read and the statements run, without values", async () => {
    await p.src.query(`INSERT INTO ${q(p.db)}.t VALUES (7,'secret-ish')`);
    await waitFor(() => targetHas(7), { timeoutMs: 15_000, what: "row 7" });
    const changes = (await capture.activity(0, 500)).items.filter((i) => i.kind === "change");
    assert.ok(
      changes.some((i) => i.table === "t" && i.text === "id=7" && i.op === "c"),
      JSON.stringify(changes.slice(-3), (_, v) => (typeof v === "bigint" ? String(v) : v)),
    );
    const dml = (await dpu.activity(0, 500)).items.filter((i) => i.kind === "dml");
    const insert = dml.find((i) => i.op === "INSERT" && i.table === "t");
    assert.ok(insert, "an INSERT statement is listed");
    assert.match(insert.text, /\?/);
    assert.ok(!dml.some((i) => i.text.includes("secret-ish")), "no values in the statements");
    const newest = changes[changes.length - 1]!.id;
    assert.equal(
      (await capture.activity(Number(newest), 10)).items.filter((i) => i.kind === "change").length,
      0,
    );
  });
});

describe("metrics", () => {
  test("move when rows flow; health endpoints answer", async () => {
    const p = await openPipeline("met");
    try {
      await p.src.query(`CREATE TABLE ${q(p.db)}.m (id INT PRIMARY KEY, v INT)`);
      const c = await p.startCapture();
      const d = await p.startDpu();
      for (const port of [c.endpoints.http, d.endpoints.http]) {
        for (const path of ["/healthz", "/readyz"]) {
          const res = await fetch(`http://127.0.0.1:${port}${path}`);
          assert.equal(res.status, 200, `${path} on ${port}`);
        }
      }
      const t = { db: p.db, table: "m" };
      const dt = { db: p.targetDb, table: "m" };
      const c0 = await scrape(c.endpoints.http);
      const d0 = await scrape(d.endpoints.http);
      const values = Array.from({ length: 50 }, (_, i) => `(${i + 1}, ${i})`).join(",");
      await p.src.query(`INSERT INTO ${q(p.db)}.m VALUES ${values}`);
      await p.src.query(`UPDATE ${q(p.db)}.m SET v = v + 1 WHERE id <= 10`);
      await p.src.query(`DELETE FROM ${q(p.db)}.m WHERE id > 45`);
      await p.converged("m");
      const c1 = await waitFor(
        async () => {
          const s = await scrape(c.endpoints.http);
          return sumOf(s, "dfs_capture_published_changes_total", t) >= 65 ? s : null;
        },
        { timeoutMs: 10_000, what: "published counts" },
      );
      const d1 = await scrape(d.endpoints.http);
      const delta = (a: typeof c0, b: typeof c0, name: string, labels: Record<string, string>) =>
        sumOf(b, name, labels) - sumOf(a, name, labels);
      for (const [op, n] of [
        ["c", 50],
        ["u", 10],
        ["d", 5],
      ] as const) {
        assert.equal(delta(c0, c1, "dfs_capture_changes_total", { ...t, op }), n, `captured ${op}`);
        assert.equal(
          delta(c0, c1, "dfs_capture_published_changes_total", { ...t, op }),
          n,
          `published ${op}`,
        );
        assert.equal(delta(d0, d1, "dfs_dpu_changes_applied_total", { ...dt, op }), n, `applied ${op}`);
      }
      assert.ok(delta(c0, c1, "dfs_capture_transactions_total", {}) >= 3);
      assert.ok(delta(d0, d1, "dfs_dpu_apply_seconds_count", {}) >= 1);
      assert.ok(delta(d0, d1, "dfs_dpu_end_to_end_seconds_count", {}) >= 1);
      assert.ok(delta(d0, d1, "dfs_dpu_apply_batch_rows_sum", {}) >= 65);
      assert.ok(sumOf(c1, "dfs_capture_binlog_position_bytes") > 0);
      assert.ok(sumOf(c1, "dfs_capture_binlog_file_number") >= 1);
      assert.equal(sumOf(c1, "dfs_service_state", { state: "running" }), 1);
      assert.ok(sumOf(d1, "dfs_dpu_applied_sequence") > 0);
      assert.ok(
        c1.every((s) => s.name.startsWith("dfs_")),
        "every metric name starts with dfs_",
      );
      assert.ok(d1.every((s) => s.name.startsWith("dfs_")));
      // The heartbeat crosses the whole pipeline: the lag is known and small when idle.
      const lag = await waitFor(
        async () => {
          const s = await scrape(d.endpoints.http);
          const v = sumOf(s, "dfs_pipeline_lag_seconds");
          return v > 0 ? v : null;
        },
        { timeoutMs: 10_000, what: "a heartbeat to reach the dpu" },
      );
      assert.ok(lag < 5, `pipeline lag ${lag} s when idle`);
      assert.ok(sumOf(await scrape(c.endpoints.http), "dfs_capture_lag_seconds") < 5);

      // Paused, the readiness stays (the service works), the state metric says paused.
      c.pause();
      const paused = await scrape(c.endpoints.http);
      assert.equal(sumOf(paused, "dfs_service_state", { state: "paused" }), 1);
      assert.equal(sumOf(paused, "dfs_capture_reader_paused"), 1);
      c.resume();
    } finally {
      await p.close();
    }
  });
});
