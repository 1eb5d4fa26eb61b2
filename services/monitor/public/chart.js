// Line charts on <canvas>, drawn by hand: a fixed time window ending now, y from 0 to a rounded
// maximum, one line per series with a light fill under the first.

const WINDOW_MS = 5 * 60 * 1000;
const PAD = { left: 52, right: 12, top: 10, bottom: 24 };

/** 0.83 -> 1, 3.2 -> 4, 73 -> 100: a round upper bound for the y axis, and its grid steps. */
function niceScale(v) {
  if (!(v > 0)) return { max: 1, steps: 4 };
  const p = 10 ** Math.floor(Math.log10(v));
  for (const [m, steps] of [
    [1, 4],
    [2, 4],
    [2.5, 5],
    [4, 4],
    [5, 5],
    [8, 4],
    [10, 5],
  ])
    if (v <= m * p) return { max: m * p, steps };
  return { max: 10 * p, steps: 5 };
}

function label(v) {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(Math.round(v * 100) / 100);
}

/**
 * Draws `points` (objects with t and one key per series) into `canvas`.
 * series: [{ key, label, color }]; unit: appended to the y labels ("", " s").
 */
export function drawChart(canvas, points, series, unit = "") {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (w === 0 || h === 0) return;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const css = getComputedStyle(canvas);
  const grid = css.getPropertyValue("--grid").trim() || "#e5e7eb";
  const ink = css.getPropertyValue("--ink-soft").trim() || "#6b7280";
  ctx.font = "11px system-ui, -apple-system, Segoe UI, sans-serif";

  const end = points.length > 0 ? points[points.length - 1].t : Date.now();
  const start = end - WINDOW_MS;
  const shown = points.filter((p) => p.t >= start);
  let top = 0;
  for (const p of shown) for (const s of series) top = Math.max(top, p[s.key] || 0);
  const { max: ymax, steps } = niceScale(top);
  const pw = w - PAD.left - PAD.right;
  const ph = h - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + ((t - start) / WINDOW_MS) * pw;
  const y = (v) => PAD.top + ph - (Math.min(v, ymax) / ymax) * ph;

  // Grid and axes.
  ctx.strokeStyle = grid;
  ctx.fillStyle = ink;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= steps; i++) {
    const v = (ymax * i) / steps;
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(PAD.left, yy);
    ctx.lineTo(w - PAD.right, yy);
    ctx.stroke();
    ctx.fillText(`${label(v)}${unit}`, PAD.left - 6, yy);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let m = 0; m <= 5; m++) {
    const t = start + m * 60_000;
    ctx.fillText(m === 5 ? "now" : `-${5 - m} min`, x(t), h - PAD.bottom + 6);
  }

  // Lines, the first with a fill.
  series.forEach((s, i) => {
    if (shown.length === 0) return;
    ctx.beginPath();
    shown.forEach((p, j) => {
      const px = x(p.t);
      const py = y(p[s.key] || 0);
      if (j === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.stroke();
    if (i === 0) {
      ctx.lineTo(x(shown[shown.length - 1].t), y(0));
      ctx.lineTo(x(shown[0].t), y(0));
      ctx.closePath();
      ctx.globalAlpha = 0.08;
      ctx.fillStyle = s.color;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
  });
}

/** Fills a legend element: a swatch, the label and the latest value of each series. */
export function renderLegend(elem, points, series, format) {
  const last = points[points.length - 1] || {};
  elem.replaceChildren(
    ...series.map((s) => {
      const span = document.createElement("span");
      span.className = "legend-item";
      const sw = document.createElement("i");
      sw.style.background = s.color;
      const b = document.createElement("b");
      b.textContent = format(last[s.key] || 0);
      span.append(sw, `${s.label} `, b);
      return span;
    }),
  );
}
