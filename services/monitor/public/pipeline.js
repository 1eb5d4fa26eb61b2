// The pipeline diagram: source -> capture -> JetStream -> dpu group(s) -> target, as inline SVG.
// Each service box is coloured by its health and shows its position, lag, backlog and rate.

import { bytes, count, rate, seconds } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const BOX_H = 148;
const GAP_Y = 18;
const GAP_X = 50;
/** Box widths of the five columns: source, capture, JetStream, dpu, target. */
const WIDTHS = [196, 248, 224, 248, 196];
const COLS = WIDTHS.map((_, i) => 12 + WIDTHS.slice(0, i).reduce((a, w) => a + w + GAP_X, 0));
const WIDTH = COLS[4] + WIDTHS[4] + 12;

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

function text(parent, x, y, value, cls, max = 26) {
  const t = el("text", { x, y, class: cls }, parent);
  const s = String(value ?? "");
  t.textContent = s.length > max ? `${s.slice(0, max - 1)}…` : s;
  if (s.length > max) el("title", {}, t).textContent = s;
  return t;
}

/** One box: a coloured header band with a title and state, then label/value lines. */
function box(svg, col, y, o) {
  const x = COLS[col];
  const w = WIDTHS[col];
  const g = el("g", { class: `stage ${o.cls}`, "data-testid": o.testid, "data-state": o.state ?? "" }, svg);
  el("rect", { x, y, width: w, height: BOX_H, rx: 10, class: "stage-body" }, g);
  el(
    "path",
    {
      d: `M${x} ${y + 10}a10 10 0 0 1 10 -10h${w - 20}a10 10 0 0 1 10 10v20h-${w}z`,
      class: "stage-band",
    },
    g,
  );
  text(g, x + 12, y + 20, o.title, "stage-title", 18);
  if (o.state) text(g, x + w - 12, y + 20, o.state, "stage-state");
  let ly = y + 50;
  for (const [label, value, testid] of o.lines) {
    text(g, x + 12, ly, label, "stage-label");
    // Room left of the label, at about 7 px per character of an 11.5 px bold value.
    const room = Math.floor((w - 32 - label.length * 6.5) / 7);
    const v = text(g, x + w - 12, ly, value, "stage-value", room);
    if (testid) v.setAttribute("data-testid", testid);
    ly += 20;
  }
  if (o.tooltip) el("title", {}, g).textContent = o.tooltip;
  return g;
}

/** An arrow between two points (a gentle S-curve), animated while rows flow, with a label. */
function arrow(svg, x1, y1, x2, y2, flowing, label) {
  const mx = (x1 + x2) / 2;
  el(
    "path",
    { d: `M${x1} ${y1}C${mx} ${y1} ${mx} ${y2} ${x2 - 8} ${y2}`, class: `flow${flowing ? " flowing" : ""}` },
    svg,
  );
  el("path", { d: `M${x2 - 9} ${y2 - 5}L${x2} ${y2}L${x2 - 9} ${y2 + 5}z`, class: "flow-head" }, svg);
  if (label) {
    const t = el("text", { x: mx, y: Math.min(y1, y2) - 8, class: "flow-label" }, svg);
    t.textContent = label;
  }
}

function serviceLines(s) {
  const id = s.name;
  if (s.kind === "capture")
    return [
      ["binlog", s.position || "–", `position-${id}`],
      ["lag", seconds(s.lagSeconds), `lag-${id}`],
      ["backlog", `${count(s.backlog)} · ${bytes(s.backlogBytes)}`, `backlog-${id}`],
      ["captured", rate(s.rate), `rate-${id}`],
    ];
  if (s.kind === "dpu")
    return [
      ["applied to", s.position || (s.streamSeq ? `seq ${count(s.streamSeq)}` : "–"), `position-${id}`],
      ["behind capture", s.behind || "–", `behind-${id}`],
      ["lag", seconds(s.lagSeconds), `lag-${id}`],
      ["pending", count(s.backlog), `backlog-${id}`],
      ["applied", rate(s.rate), `rate-${id}`],
    ];
  return [
    ["position", s.position || "–", `position-${id}`],
    ["lag", seconds(s.lagSeconds), `lag-${id}`],
    ["backlog", count(s.backlog), `backlog-${id}`],
  ];
}

/** Redraws the diagram for one state message. */
export function renderPipeline(svg, state) {
  const captures = state.services.filter((s) => s.kind === "capture");
  const dpus = state.services.filter((s) => s.kind !== "capture");
  const rows = Math.max(1, captures.length, dpus.length);
  const height = rows * BOX_H + (rows - 1) * GAP_Y + 40;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
  const top = (n, i) => 20 + ((rows - n) * (BOX_H + GAP_Y)) / 2 + i * (BOX_H + GAP_Y);
  const mid = top(1, 0) + BOX_H / 2;
  const sum = (list, f) => list.reduce((a, s) => a + f(s), 0);
  const published = sum(captures, (s) => s.publishedRate);
  const applied = sum(dpus, (s) => (s.kind === "dpu" ? s.rate : 0));
  const pending = sum(dpus, (s) => (s.kind === "dpu" ? s.backlog : 0));

  box(svg, 0, top(1, 0), {
    cls: "fixed",
    testid: "stage-source",
    title: "Source",
    lines: [
      ["server", "MySQL / MariaDB"],
      ["source id", state.sourceId],
      ["read", rate(sum(captures, (s) => s.rate))],
    ],
  });
  box(svg, 2, top(1, 0), {
    cls: "fixed",
    testid: "stage-jetstream",
    title: "JetStream",
    lines: [
      ["stream", `DFS_${state.sourceId.toUpperCase().replaceAll("-", "_")}`],
      ["published", rate(published), "rate-jetstream"],
      ["pending", count(pending)],
    ],
  });
  box(svg, 4, top(1, 0), {
    cls: "fixed",
    testid: "stage-target",
    title: "Target",
    lines: [
      ["applied", rate(applied), "rate-target"],
      ["lag", seconds(Math.max(0, ...dpus.map((s) => s.lagSeconds)))],
    ],
  });

  captures.forEach((s, i) => {
    const y = top(captures.length, i);
    arrow(svg, COLS[0] + WIDTHS[0], mid, COLS[1], y + BOX_H / 2, s.rate > 0, "binlog");
    arrow(svg, COLS[1] + WIDTHS[1], y + BOX_H / 2, COLS[2], mid, s.publishedRate > 0, rate(s.publishedRate));
    stageBox(svg, 1, y, s);
  });
  dpus.forEach((s, i) => {
    const y = top(dpus.length, i);
    arrow(svg, COLS[2] + WIDTHS[2], mid, COLS[3], y + BOX_H / 2, s.rate > 0, s.kind === "dpu" ? "pull" : "");
    if (s.kind === "dpu")
      arrow(svg, COLS[3] + WIDTHS[3], y + BOX_H / 2, COLS[4], mid, s.rate > 0, rate(s.rate));
    stageBox(svg, 3, y, s);
  });
  if (captures.length === 0) text(svg, COLS[1] + 10, mid, "no capture watched", "stage-none");
  if (dpus.length === 0) text(svg, COLS[3] + 10, mid, "no dpu watched", "stage-none");
}

function stageBox(svg, col, y, s) {
  const x = COLS[col];
  const g = box(svg, col, y, {
    cls: s.state,
    testid: `stage-${s.name}`,
    title: s.name,
    state: s.state,
    lines: serviceLines(s),
    tooltip: [`${s.kind} ${s.name}`, `gRPC ${s.grpc}`, `HTTP ${s.http}`, s.error].filter(Boolean).join("\n"),
  });
  if (s.error) el("circle", { cx: x + WIDTHS[col] - 10, cy: y + BOX_H - 10, r: 4, class: "stage-alert" }, g);
}
