/**
 * The within-run reference for `dfs bench capture`: how fast zongji alone decodes the same binlog
 * range (no journal, no publishing). Run as a child process: prints one JSON line.
 * Usage: node zongji-baseline.js <host> <port> <file> <pos> <endFile> <endPos>
 */
import ZongJi from "@vlasky/zongji";

const [host, port, file, pos, endFile, endPos] = process.argv.slice(2);
const end = `${endFile}:${String(endPos).padStart(12, "0")}`;
const z = new ZongJi({
  host,
  port: Number(port),
  user: "root",
  password: "",
  dateStrings: true,
  jsonStrings: true,
  timezone: "Z",
  supportBigNumbers: true,
  bigNumberStrings: true,
} as never);
let rows = 0;
const started = performance.now();
let finished = false;
z.on("binlog", (ev: { getEventName(): string; rows?: unknown[] }) => {
  const name = ev.getEventName();
  if (name === "writerows" || name === "updaterows" || name === "deleterows") rows += ev.rows?.length ?? 0;
  if (finished) return;
  const at = `${z.get("filename")}:${String(z.get("position")).padStart(12, "0")}`;
  if (at >= end) {
    finished = true;
    const ms = performance.now() - started;
    process.stdout.write(`${JSON.stringify({ rows, ms })}\n`);
    z.stop();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
z.on("error", (err: Error) => {
  if (!finished) {
    console.error(err.message);
    process.exit(1);
  }
});
z.start({
  serverId: 4999,
  filename: file,
  position: Number(pos),
  includeEvents: ["tablemap", "writerows", "updaterows", "deleterows", "xid", "rotate", "query"],
} as never);
