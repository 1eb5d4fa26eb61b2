// Number and time formatting shared by the page's modules.

const grouped = new Intl.NumberFormat("en-US");

/** 1234 -> "1,234"; 1234567 -> "1.23M". */
export function count(n) {
  const v = Number(n) || 0;
  if (Math.abs(v) >= 1e7) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  return grouped.format(Math.round(v));
}

/** Rows per second, short. */
export function rate(n) {
  const v = Number(n) || 0;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M/s`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k/s`;
  if (v >= 100) return `${Math.round(v)}/s`;
  if (v > 0) return `${v.toFixed(1)}/s`;
  return "0/s";
}

export function bytes(n) {
  let v = Number(n) || 0;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function seconds(n) {
  const v = Number(n) || 0;
  if (v >= 3600) return `${(v / 3600).toFixed(1)} h`;
  if (v >= 120) return `${(v / 60).toFixed(1)} min`;
  if (v >= 10) return `${Math.round(v)} s`;
  return `${v.toFixed(1)} s`;
}

/** ms since epoch -> "14:03:27" (local time). */
export function clock(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
