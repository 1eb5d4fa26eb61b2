import { rmSync } from "node:fs";
import { startCapture } from "@dfs/capture";
import { decodeBatch, decodeChanges, Headers, type SqlValue } from "@dfs/codec";
import { createLogger, ErrorCode, waitFor } from "@dfs/common";
import { type DfsConfig, loadConfig } from "@dfs/config";
import { startDpu } from "@dfs/dpu";
import { startMonitor } from "@dfs/monitor";
import { connectionOptions } from "@dfs/mysql";
import { connectNats, subjects } from "@dfs/nats";
import { stackUp } from "@dfs/stack";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import mysql from "mysql2/promise";
import { ExitCode } from "../exit.js";
import { ensureControlToken, type Hosted, monitorConfigFor } from "./hosted.js";

const DEMO_DB = "demo_shop";

function show(v: SqlValue): string {
  if (v === null) return "NULL";
  if (v instanceof Uint8Array) return `0x${Buffer.from(v).toString("hex")}`;
  return String(v);
}

/** A small, steady load on the source: orders come in, get paid, and some are cancelled. */
async function driveLoad(conn: mysql.Connection, signal: AbortSignal): Promise<void> {
  let n = 0;
  while (!signal.aborted) {
    n++;
    await conn.query("INSERT INTO orders (customer, amount, status) VALUES (?, ?, 'new')", [
      `customer-${n % 7}`,
      (n * 7.25).toFixed(2),
    ]);
    if (n % 3 === 0)
      await conn.query("UPDATE orders SET status = 'paid' WHERE status = 'new' ORDER BY id LIMIT 1");
    if (n % 5 === 0) await conn.query("DELETE FROM orders WHERE status = 'paid' ORDER BY id LIMIT 1");
    await new Promise((r) => setTimeout(r, 400));
  }
}

/** Capture, the DPU (with a target) and the monitor of a demo config, in this process. */
export async function startDemoServices(cfg: DfsConfig) {
  const captureLog = createLogger({ level: "warn", name: "capture" });
  const capture = await startCapture(cfg, { log: captureLog }).catch(async (err: unknown) => {
    // A demo journal whose binlogs are gone (purged since the last run) starts over from now.
    if ((err as { code?: string }).code !== ErrorCode.CHECKPOINT_PURGED) throw err;
    console.log(`  ${(err as Error).message}\n  the demo starts a new journal from the binlog's end`);
    rmSync(cfg.capture.journal.path, { force: true });
    for (const ext of ["-wal", "-shm"]) rmSync(cfg.capture.journal.path + ext, { force: true });
    return startCapture(cfg, { log: captureLog });
  });
  const dpu = cfg.target ? await startDpu(cfg, { log: createLogger({ level: "warn", name: "dpu" }) }) : null;
  const hosted: Hosted[] = [{ kind: "capture", endpoints: capture.endpoints }];
  if (dpu) hosted.push({ kind: "dpu", endpoints: dpu.endpoints });
  const monitor = await startMonitor(monitorConfigFor(cfg, hosted), {
    log: createLogger({ level: "warn", name: "monitor" }),
  });
  return { capture, dpu, monitor };
}

/**
 * `dfs demo [-c FILE] [--seconds N]`: starts the stack and capture, writes a small load to the
 * source and prints every change as it arrives in JetStream.
 */
export async function runDemo(values: { config: string; seconds: number }): Promise<number> {
  const seconds = values.seconds;
  console.log("starting the local stack (source :13306, target :13307, NATS :14222)...");
  await stackUp({ log: (line) => console.log(`  ${line}`) });
  const { cfg, generated } = ensureControlToken(loadConfig(values.config));
  if (cfg.pipeline) {
    const { runPipelineDemo } = await import("./demo-pipeline.js");
    return runPipelineDemo(cfg, { configPath: values.config, seconds, tokenMade: generated });
  }
  const { capture, dpu, monitor } = await startDemoServices(cfg);
  console.log(
    `monitor: ${cfg.monitor.http.tls ? "https" : "http"}://127.0.0.1:${monitor.port}/  (token: ${generated ? `${cfg.control.token}, made for this run` : "control.token"})`,
  );
  // Opened from the endpoints, so a password given apart from the URL and TLS settings apply.
  const conn = await mysql.createConnection(connectionOptions(cfg.source.endpoint));
  const target = cfg.target ? await mysql.createConnection(connectionOptions(cfg.target.endpoint)) : null;
  const targetDb = cfg.target?.database ?? DEMO_DB;
  /** Row count and checksum of the orders table on one server, for the "target follows" line. */
  const summary = async (c: mysql.Connection, db: string) => {
    const [rows] = await c
      .query(
        `SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CRC32(CONCAT_WS('|', id, customer, amount, status, created))), 0) AS sum FROM \`${db}\`.orders`,
      )
      .catch(() => [[{ n: 0, sum: "-" }]]);
    const r = (rows as { n: number; sum: string }[])[0]!;
    return `${r.n} rows, checksum ${r.sum}`;
  };
  await conn.query(`CREATE DATABASE IF NOT EXISTS \`${DEMO_DB}\``);
  await conn.query(`USE \`${DEMO_DB}\``);
  await conn.query(
    "CREATE TABLE IF NOT EXISTS orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(40) NOT NULL, amount DECIMAL(10,2) NOT NULL, status ENUM('new','paid') NOT NULL, created TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
  );
  const nc = await connectNats({ ...cfg.nats, name: "dfs-demo" });
  const stop = new AbortController();
  const consumer = await jetstream(nc).consumers.get(subjects.streamName(cfg.source.id), {
    deliver_policy: DeliverPolicy.New,
  });
  const messages = await consumer.consume();
  let changes = 0;
  const printing = (async () => {
    for await (const m of messages) {
      const kind = m.headers?.get(Headers.kind);
      if (kind !== "batch") continue;
      const events = decodeChanges(decodeBatch(m.data));
      changes += events.length;
      // Bulk statements arrive as batches of many rows: show the first few of each.
      for (const e of events.slice(0, 3)) {
        const img = e.after ?? e.before ?? {};
        const cols = Object.entries(img)
          .map(([k, v]) => `${k}=${show(v)}`)
          .join(" ");
        console.log(`${m.subject}  ${e.op}  ${cols}`);
      }
      if (events.length > 3)
        console.log(`${m.subject}  ... and ${events.length - 3} more rows in this message`);
    }
  })();
  console.log(
    `capturing ${cfg.source.url.replace(/:[^:@/]*@/, ":***@")} -> stream ${subjects.streamName(cfg.source.id)}; writing orders to ${DEMO_DB}.orders${seconds > 0 ? ` for ${seconds} s` : " (Ctrl-C to stop)"}\n`,
  );
  const load = driveLoad(conn, stop.signal);
  const follow = target
    ? setInterval(async () => {
        console.log(
          `  -- source ${DEMO_DB}.orders: ${await summary(conn, DEMO_DB)} | target ${targetDb}.orders: ${await summary(target, targetDb)}`,
        );
      }, 2000)
    : null;
  const finish = new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    if (seconds > 0) setTimeout(resolve, seconds * 1000);
  });
  await finish;
  stop.abort();
  await load;
  if (follow) clearInterval(follow);
  await waitFor(() => capture.status().journal.entries === 0, {
    timeoutMs: 10_000,
    what: "the journal to drain",
  }).catch(() => {});
  await messages.close();
  await printing;
  const st = capture.status();
  console.log(
    `\n${changes} changes shown; capture read ${st.rowsCaptured} rows in ${st.txnsCaptured} transactions, position ${st.position}`,
  );
  let same = true;
  if (target) {
    const want = await summary(conn, DEMO_DB);
    same = await waitFor(async () => (await summary(target, targetDb)) === want, {
      timeoutMs: 30_000,
      what: "the target to catch up",
    })
      .then(() => true)
      .catch(() => false);
    console.log(
      `source ${DEMO_DB}.orders: ${want}\ntarget ${targetDb}.orders: ${await summary(target, targetDb)}`,
    );
    console.log(same ? "the target equals the source" : "the target does NOT equal the source");
    await target.end();
  }
  await monitor.stop();
  await dpu?.stop();
  await capture.stop();
  await nc.close();
  await conn.end();
  return changes > 0 && same ? ExitCode.OK : ExitCode.DATAERR;
}
