// The monitor page: token login over the WebSocket, then one state message per poll, rendered
// into the pipeline diagram, the charts and the lists; control buttons send calls back.
// Plain browser JavaScript, no build step. The token is kept in memory only (never in a URL or
// in storage): a reload asks for it again.

import { drawChart, renderLegend } from "./chart.js";
import { clock, count, rate, seconds } from "./format.js";
import { renderPipeline } from "./pipeline.js";

const $ = (id) => document.getElementById(id);
const HISTORY_MS = 5 * 60 * 1000;
const RATE_SERIES = [
  { key: "captured", label: "captured", color: "#2563eb" },
  { key: "published", label: "published", color: "#7c3aed" },
  { key: "applied", label: "applied", color: "#059669" },
];
const LAG_SERIES = [
  { key: "captureLag", label: "capture", color: "#d97706" },
  { key: "pipelineLag", label: "source → target", color: "#dc2626" },
];
/** The calls each kind of service serves; the others' buttons are shown disabled. */
const SERVES = {
  capture: ["pause", "resume", "snapshot"],
  dpu: ["pause", "resume", "replayDlq"],
  relmgr: ["pause", "resume"],
};
const BUTTONS = [
  ["pause", "Pause", "pause"],
  ["resume", "Resume", "resume"],
  ["snapshot", "Snapshot", "snapshot"],
  ["replayDlq", "Replay DLQ", "replay"],
];

let token = null;
let ws = null;
let authenticated = false;
let reconnectTimer = null;
let attempt = 0;
let history = [];
let state = null;
let lastStateAt = 0;
let nextCallId = 1;
let serviceKeys = "";

// --- connection and login -------------------------------------------------------------------

function setConn(s, text) {
  const c = $("conn");
  c.dataset.state = s;
  c.textContent = text ?? s;
}

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function connect() {
  clearTimeout(reconnectTimer);
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const socket = new WebSocket(url);
  ws = socket;
  setConn("connecting", "connecting…");
  socket.onopen = () => {
    attempt = 0;
    if (token !== null) send({ type: "login", token });
  };
  socket.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    onMessage(msg);
  };
  socket.onclose = (ev) => {
    if (ws !== socket) return;
    ws = null;
    const wasIn = authenticated;
    authenticated = false;
    if (token !== null && wasIn) {
      // Lost after login (monitor restarted, network): log in again by itself.
      const wait = Math.min(5000, 500 * 2 ** attempt++);
      setConn("reconnecting", "reconnecting…");
      reconnectTimer = setTimeout(connect, wait);
    } else {
      setConn("disconnected");
      if (ev.reason) loginMessage(ev.reason);
    }
  };
}

function loginMessage(text) {
  $("login-message").textContent = text;
}

function showApp(on) {
  $("login").hidden = on;
  $("app").hidden = !on;
  $("logout").hidden = !on;
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("token");
  token = input.value;
  loginMessage("");
  if (ws && ws.readyState === WebSocket.OPEN) send({ type: "login", token });
  else connect();
});

$("logout").addEventListener("click", () => {
  token = null;
  authenticated = false;
  const socket = ws;
  ws = null;
  socket?.close();
  state = null;
  history = [];
  setConn("disconnected", "not signed in");
  showApp(false);
});

function onMessage(msg) {
  switch (msg.type) {
    case "login":
      if (msg.ok) {
        authenticated = true;
        $("token").value = "";
        history = Array.isArray(msg.history) ? msg.history : [];
        setConn("live");
        showApp(true);
      } else {
        token = null;
        loginMessage(msg.message || "login refused");
        setConn("disconnected", "not signed in");
      }
      break;
    case "state":
      onState(msg.state);
      break;
    case "result":
      showResult(msg.ok, msg.message);
      break;
    case "error":
      showResult(false, msg.message);
      break;
  }
}

// A socket that stays open but sends nothing (monitor stuck) shows as stale.
setInterval(() => {
  if (!authenticated || !state) return;
  const late = Date.now() - lastStateAt > Math.max(3000, 3 * state.pollIntervalMs);
  setConn(late ? "stale" : "live", late ? `stale (last ${clock(lastStateAt)})` : "live");
}, 1000);

// --- control calls ----------------------------------------------------------------------------

function call(service, method, args, button) {
  const id = nextCallId++;
  if (button) {
    button.disabled = true;
    button.classList.add("busy");
  }
  send({ type: "call", id, service, method, args: args ?? {} });
  showResult(null, `${service}: ${method}…`);
}

function showResult(ok, message) {
  const r = $("call-result");
  r.textContent = message || "";
  r.dataset.ok = ok === null ? "pending" : String(ok);
  r.classList.toggle("visible", Boolean(message));
  for (const b of document.querySelectorAll("button.busy")) b.classList.remove("busy");
  if (state) updateServiceRows(state.services);
}

// --- rendering ----------------------------------------------------------------------------------

function td(content, cls, testid) {
  const c = document.createElement("td");
  if (cls) c.className = cls;
  if (testid) c.dataset.testid = testid;
  if (content instanceof Node) c.append(content);
  else c.textContent = content ?? "";
  return c;
}

function tr(cells, testid) {
  const r = document.createElement("tr");
  if (testid) r.dataset.testid = testid;
  r.append(...cells);
  return r;
}

function badge(text, cls, title) {
  const s = document.createElement("span");
  s.className = `badge ${cls}`;
  s.textContent = text;
  if (title) s.title = title;
  return s;
}

function empty(body, cols, text) {
  const c = td(text, "empty");
  c.colSpan = cols;
  body.replaceChildren(tr([c]));
}

function button(text, cls, testid, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.dataset.testid = testid;
  b.addEventListener("click", () => onClick(b));
  return b;
}

function onState(s) {
  state = s;
  lastStateAt = Date.now();
  $("source-id").textContent = `source ${s.sourceId}`;
  $("updated").textContent = `updated ${clock(s.timeMs)}`;
  $("updated").dataset.time = String(s.timeMs);
  if (history.length === 0 || history[history.length - 1].t < s.point.t) history.push(s.point);
  while (history.length > 0 && history[0].t < s.point.t - HISTORY_MS) history.shift();
  renderPipeline($("pipeline"), s);
  renderCharts();
  renderServices(s.services);
  renderTables(s.tables);
  renderChanges(s.changes);
  renderDml(s.dml);
  renderErrors(s.errors);
  renderDlq(s.dlq);
}

function renderCharts() {
  drawChart($("chart-rates"), history, RATE_SERIES);
  drawChart($("chart-lag"), history, LAG_SERIES, " s");
  renderLegend($("legend-rates"), history, RATE_SERIES, rate);
  renderLegend($("legend-lag"), history, LAG_SERIES, seconds);
}
window.addEventListener("resize", () => state && renderCharts());

/** The services table: built when the set of services changes, updated in place otherwise. */
function renderServices(services) {
  const keys = services.map((s) => `${s.name}/${s.kind}`).join(",");
  const body = $("services-body");
  if (keys !== serviceKeys) {
    serviceKeys = keys;
    body.replaceChildren(
      ...services.map((s) => {
        const controls = document.createElement("div");
        controls.className = "controls";
        for (const [method, label, id] of BUTTONS) {
          const args = method === "snapshot" ? { tables: [] } : method === "replayDlq" ? { seqs: [] } : {};
          const b = button(label, `btn ${id}`, `btn-${id}-${s.name}`, (el) => call(s.name, method, args, el));
          b.dataset.method = method;
          controls.append(b);
        }
        const name = document.createElement("div");
        name.className = "svc-name";
        name.append(
          Object.assign(document.createElement("b"), { textContent: s.name }),
          badge(s.kind, "kind"),
        );
        const r = tr(
          [
            td(name),
            td("", "", `state-${s.name}`),
            td("", "mono", `svc-position-${s.name}`),
            td("", "num"),
            td("", "num"),
            td("", "num"),
            td("", "num"),
            td(controls),
          ],
          `service-${s.name}`,
        );
        r.dataset.name = s.name;
        return r;
      }),
    );
  }
  updateServiceRows(services);
}

function updateServiceRows(services) {
  const busy = new Set([...document.querySelectorAll("button.busy")].map((b) => b.dataset.testid));
  for (const s of services) {
    const row = document.querySelector(`tr[data-testid="service-${CSS.escape(s.name)}"]`);
    if (!row) continue;
    row.dataset.state = s.state;
    const c = row.children;
    c[1].replaceChildren(badge(s.state, `state ${s.state}`, s.error || ""));
    c[2].textContent = s.position || "–";
    c[2].title = s.gtid ? `GTID ${s.gtid}` : "";
    c[3].textContent = seconds(s.lagSeconds);
    c[4].textContent = count(s.backlog);
    c[5].textContent = rate(s.rate);
    c[6].textContent = count(s.changesTotal);
    for (const b of row.querySelectorAll("button[data-method]")) {
      const m = b.dataset.method;
      const served = (SERVES[s.kind] || []).includes(m);
      b.title = served ? "" : `${s.kind} does not serve ${m}`;
      b.disabled =
        busy.has(b.dataset.testid) ||
        !served ||
        s.state === "unreachable" ||
        (m === "pause" && s.state === "paused") ||
        (m === "resume" && s.state === "running");
    }
  }
}

function ops(op) {
  const wrap = document.createElement("span");
  const names = { c: "insert", u: "update", d: "delete", r: "read" };
  for (const ch of op || "") wrap.append(badge(names[ch] || ch, `op op-${ch}`));
  return wrap;
}

function renderTables(tables) {
  const body = $("tables-body");
  if (tables.length === 0) return empty(body, 4, "No changes counted yet");
  const capture = state.services.find((s) => s.kind === "capture");
  body.replaceChildren(
    ...tables.map((t) => {
      const name = document.createElement("div");
      name.className = "table-name";
      name.append(Object.assign(document.createElement("span"), { textContent: t.table }));
      if (capture)
        name.append(
          button("snapshot", "link", `btn-snapshot-table-${t.table}`, (el) =>
            call(capture.name, "snapshot", { tables: [t.table] }, el),
          ),
        );
      if (t.target)
        name.append(
          Object.assign(document.createElement("small"), {
            className: "target",
            textContent: `→ ${t.target}`,
          }),
        );
      const cud = (x) => {
        const text = `${count(x.c)} / ${count(x.u)} / ${count(x.d)}`;
        if (!x.r) return text;
        const reads = Object.assign(document.createElement("small"), { textContent: `+ ${count(x.r)} read` });
        const wrap = document.createElement("span");
        wrap.append(text, reads);
        return wrap;
      };
      return tr(
        [
          td(name),
          td(cud(t.captured), "num", `captured-${t.table}`),
          td(count(t.published), "num", `published-${t.table}`),
          td(cud(t.applied), "num", `applied-${t.table}`),
        ],
        `table-${t.table}`,
      );
    }),
  );
}

function renderChanges(items) {
  const body = $("changes-body");
  if (items.length === 0) return empty(body, 5, "No changes read yet");
  body.replaceChildren(
    ...items.map((a) =>
      tr(
        [
          td(clock(a.timeMs), "time"),
          td(ops(a.op), "ops"),
          td(a.text, "mono key"),
          td(`${a.db}.${a.table}`, "tbl"),
          td(`${count(a.rows)} row${a.rows === 1 ? "" : "s"}`, "num rows"),
        ],
        "change-row",
      ),
    ),
  );
}

function renderDml(items) {
  const body = $("dml-body");
  if (items.length === 0) return empty(body, 4, "No statements executed yet");
  body.replaceChildren(
    ...items.map((a) => {
      const sql = td(a.text, "mono sql");
      sql.title = a.text;
      return tr(
        [
          td(clock(a.timeMs), "time"),
          sql,
          td(`${count(a.rows)} row${a.rows === 1 ? "" : "s"}`, "num rows"),
          td(`${a.durationMs.toFixed(1)} ms`, "num ms"),
        ],
        "dml-row",
      );
    }),
  );
}

function renderErrors(items) {
  const body = $("errors-body");
  if (items.length === 0) return empty(body, 3, "No errors");
  body.replaceChildren(
    ...items.map((e) => {
      const r = tr(
        [td(e.current ? "now" : clock(e.timeMs), "time"), td(e.service, "tbl"), td(e.text, "err")],
        "error-row",
      );
      if (e.current) r.className = "current";
      return r;
    }),
  );
}

function renderDlq(items) {
  const body = $("dlq-body");
  if (items.length === 0) return empty(body, 5, "No dead letters");
  body.replaceChildren(
    ...items.map((d) => {
      const err = td(d.error, "err");
      err.title = d.subject;
      const replay = button("replay", "btn replay small", `btn-replay-seq-${d.seq}`, (el) =>
        call(d.service, "replayDlq", { seqs: [d.seq] }, el),
      );
      return tr(
        [
          td(`#${d.seq}`, "mono"),
          td(`${d.db}.${d.table}`, "tbl"),
          err,
          td(clock(d.timeMs), "time"),
          td(replay),
        ],
        `dlq-${d.seq}`,
      );
    }),
  );
}

showApp(false);
$("token").focus();
