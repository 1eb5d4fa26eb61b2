// The monitor's HTTP side and WebSocket: token login (wrong, right, none configured), state
// pushed after login only, control calls over the socket, the page and /metrics.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { waitFor } from "@dfs/common";
import { parseMetrics, sumOf } from "@dfs/metrics";
import { testConfig } from "@dfs/testkit";
import { NO_TOKEN_MESSAGE } from "../../dist/hub.js";
import { type MonitorService, startMonitor } from "../../dist/index.js";
import type { MonitorState } from "../../dist/view.js";
import { type FakeService, fakeService, quiet, TestSocket } from "../support/fakes.js";

const TOKEN = "hub-test-token-3f9a";

function monitorConfig(capture: FakeService, dpu: FakeService, token: string | undefined) {
  return testConfig("monhub", "monhub", {
    ...(token ? { control: { token } } : {}),
    monitor: {
      http: { port: 0 },
      pollIntervalMs: "200ms",
      services: [
        { kind: "capture", grpc: capture.grpc, http: capture.http },
        { kind: "dpu", grpc: dpu.grpc, http: dpu.http },
      ],
    },
  });
}

describe("monitor websocket", () => {
  let capture: FakeService;
  let dpu: FakeService;
  let monitor: MonitorService;
  const sockets: TestSocket[] = [];
  const open = async () => {
    const s = await TestSocket.open(monitor.port);
    sockets.push(s);
    return s;
  };

  before(async () => {
    capture = await fakeService("capture", TOKEN);
    dpu = await fakeService("dpu", TOKEN);
    monitor = await startMonitor(monitorConfig(capture, dpu, TOKEN), { log: quiet });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await monitor?.stop();
    await capture?.close();
    await dpu?.close();
  });

  test("a wrong token is refused and no state is sent; the right one gets history and states", async () => {
    const s = await open();
    s.send({ type: "login", token: "not-the-token" });
    const refused = await s.next((m) => m.type === "login", "the login answer");
    assert.deepEqual(refused, { type: "login", ok: false, message: "wrong token" });
    s.send({ type: "call", service: "capture", method: "pause" });
    await s.next((m) => m.type === "error", "the refusal of a call before login");
    assert.equal(
      s.messages.find((m) => m.type === "error")?.message,
      "log in first",
      "a call before login is refused",
    );
    assert.equal(capture.calls.length, 0);
    // Nothing flows to an unauthenticated socket, even over several polls.
    await waitFor(() => monitor.clients().open >= 1, { timeoutMs: 2000, what: "the socket to be counted" });
    assert.equal(monitor.clients().authenticated, 0);

    const from = s.messages.length;
    s.send({ type: "login", token: TOKEN });
    const ok = await s.next((m) => m.type === "login" && m.ok === true, "the login", 5000, from);
    assert.ok(Array.isArray(ok.history));
    assert.equal(ok.pollIntervalMs, 200);
    const st = (await s.next((m) => m.type === "state", "a state", 5000, from)).state as MonitorState;
    assert.deepEqual(
      st.services.map((x) => [x.name, x.kind, x.state]),
      [
        ["capture", "capture", "running"],
        ["dpu", "dpu", "running"],
      ],
    );
    assert.equal(monitor.clients().authenticated, 1);
    assert.equal(s.messages.slice(0, from).filter((m) => m.type === "state").length, 0);
  });

  test("too many wrong tokens close the socket", async () => {
    const s = await open();
    for (let i = 0; i < 5; i++) s.send({ type: "login", token: `wrong-${i}` });
    await waitFor(() => s.closed, { timeoutMs: 5000, what: "the socket to be closed" });
    assert.equal(s.closed?.code, 1008);
    assert.equal(s.messages.filter((m) => m.type === "state").length, 0);
  });

  test("control calls run with the configured token and answer with a result", async () => {
    const s = await open();
    s.send({ type: "login", token: TOKEN });
    await s.next((m) => m.type === "login" && m.ok === true, "the login");
    s.send({ type: "call", id: 1, service: "capture", method: "pause", args: {} });
    assert.deepEqual(await s.next((m) => m.type === "result" && m.id === 1, "the pause result"), {
      type: "result",
      id: 1,
      ok: true,
      message: "capture: paused",
    });
    await s.next(
      (m) => m.type === "state" && (m.state as MonitorState).services[0]?.state === "paused",
      "a state showing capture paused",
    );
    s.send({ type: "call", id: 2, service: "capture", method: "resume" });
    await s.next((m) => m.type === "result" && m.id === 2 && m.ok === true, "the resume result");
    s.send({ type: "call", id: 3, service: "dpu", method: "replayDlq", args: { seqs: [4, 5] } });
    assert.equal(
      (await s.next((m) => m.id === 3, "the replay result")).message,
      "dpu: 2 dead letters replayed",
    );
    s.send({ type: "call", id: 4, service: "dpu", method: "setPosition", args: { position: "earliest" } });
    const refused = await s.next((m) => m.id === 4, "the refusal of a method the page may not call");
    assert.equal(refused.ok, false);
    s.send({ type: "call", id: 5, service: "capture", method: "replayDlq" });
    assert.match(
      String((await s.next((m) => m.id === 5, "an UNIMPLEMENTED answer")).message),
      /UNIMPLEMENTED/,
    );
    s.send("not json at all");
    await s.next((m) => m.type === "error" && /JSON/.test(String(m.message)), "the answer to garbage");
    assert.deepEqual(
      capture.calls.map((c) => c.method),
      ["pause", "resume"],
    );
    assert.deepEqual(dpu.calls, [{ method: "replayDlq", args: [4, 5] }]);
  });

  test("the page, its scripts and /metrics, /healthz, /readyz are served", async () => {
    const base = `http://127.0.0.1:${monitor.port}`;
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const html = await page.text();
    assert.match(html, /data-testid="login-token"/);
    for (const f of ["app.js", "chart.js", "format.js", "pipeline.js", "style.css"])
      assert.equal((await fetch(`${base}/${f}`)).status, 200, f);
    assert.equal((await fetch(`${base}/nope.js`)).status, 404);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, {
      timeoutMs: 5000,
      what: "ready",
    });
    const samples = parseMetrics(await (await fetch(`${base}/metrics`)).text());
    assert.ok(sumOf(samples, "dfs_monitor_polls_total", { target: "capture", outcome: "ok" }) > 0);
    assert.ok(sumOf(samples, "dfs_monitor_clients") >= 1);
    assert.equal(sumOf(samples, "dfs_service_state", { state: "running", service: "monitor" }), 1);
  });
});

test("without control.token every login is refused with a message saying so", async () => {
  const capture = await fakeService("capture", TOKEN);
  const dpu = await fakeService("dpu", TOKEN);
  const monitor = await startMonitor(monitorConfig(capture, dpu, undefined), { log: quiet });
  const s = await TestSocket.open(monitor.port);
  try {
    s.send({ type: "login", token: "" });
    assert.deepEqual(await s.next((m) => m.type === "login", "the refusal"), {
      type: "login",
      ok: false,
      message: NO_TOKEN_MESSAGE,
    });
    s.send({ type: "login", token: TOKEN });
    await waitFor(() => s.messages.filter((m) => m.type === "login").length === 2, {
      timeoutMs: 5000,
      what: "the second refusal",
    });
    assert.equal(s.messages[1]?.ok, false);
  } finally {
    s.close();
    await monitor.stop();
    await capture.close();
    await dpu.close();
  }
});
