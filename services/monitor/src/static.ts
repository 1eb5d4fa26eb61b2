/**
 * The page: services/monitor/public (index.html, style.css, app.js and its modules), served as it is, no build
 * step. Read once at start from the package folder (next to dist/, so the same in src and dist).
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";

export const PUBLIC_DIR = new URL("../public/", import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/chart.js": { file: "chart.js", type: "text/javascript; charset=utf-8" },
  "/format.js": { file: "format.js", type: "text/javascript; charset=utf-8" },
  "/pipeline.js": { file: "pipeline.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

/** Headers of every page response: nothing from elsewhere, no framing, no referrer. */
const SECURITY = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** A `handle` hook for serveHttp that answers GET for the page's files. */
export function staticHandler(dir: URL = PUBLIC_DIR): (req: IncomingMessage, res: ServerResponse) => boolean {
  const bodies = new Map<string, { body: Buffer; type: string }>();
  for (const [path, f] of Object.entries(FILES))
    bodies.set(path, { body: readFileSync(new URL(f.file, dir)), type: f.type });
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const found = bodies.get(path);
    if (!found || (req.method !== "GET" && req.method !== "HEAD")) return false;
    res.writeHead(200, {
      "content-type": found.type,
      "content-length": found.body.length,
      "cache-control": "no-cache",
      ...SECURITY,
    });
    res.end(req.method === "HEAD" ? undefined : found.body);
    return true;
  };
}
