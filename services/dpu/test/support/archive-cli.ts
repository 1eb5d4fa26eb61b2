// Helpers of archive-cli.test.ts: `dfs` run as a child process (exit code and output, never
// throwing), an archiving pipeline (capture and the archiving DPU in this process, a config file
// for `dfs archive -c`), the source's clock and binlog position. Not part of the service's API.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ArchiveEntry, type ArchiveFilter, ArchiveReader } from "@dfs/archive";
import { type CaptureService, startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { loadConfig } from "@dfs/config";
import { connectNats } from "@dfs/nats";
import {
  deleteStreams,
  ensureStack,
  sourceConnection,
  tempDir,
  uniqueId,
  urls,
  writeConfig,
} from "@dfs/testkit";
import type { Connection } from "mysql2/promise";
import { type DpuService, startDpu } from "../../dist/index.js";
import { q } from "./archive-load.js";

export const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
export const DFS = join(ROOT, "packages/cli/bin/dfs.js");

export interface DfsResult {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** `dfs ARGS` run to its end: its exit code (or signal) and output. */
export function dfs(args: string[]): Promise<DfsResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [DFS, ...args],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: string }) | null;
        resolve({ code: e ? (e.signal ?? e.code ?? -1) : 0, stdout, stderr });
      },
    );
  });
}

/** `dfs archive query ARGS --json`: one object per line; fails with the output unless it exits 0. */
export async function queryJson(args: string[]): Promise<Record<string, unknown>[]> {
  const r = await dfs(["archive", "query", ...args, "--json"]);
  if (r.code !== 0) throw new Error(`dfs archive query exited ${r.code}: ${r.stderr}`);
  return r.stdout
    .trim()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** `dfs archive query ARGS` as a table: the rows after the header, split at tabs. */
export async function queryTable(args: string[]): Promise<string[][]> {
  const r = await dfs(["archive", "query", ...args]);
  if (r.code !== 0) throw new Error(`dfs archive query exited ${r.code}: ${r.stderr}`);
  const [header, ...lines] = r.stdout.trimEnd().split("\n");
  if (!header?.startsWith("COMMIT TIME\tPOSITION")) throw new Error(`no header: ${r.stdout.slice(0, 300)}`);
  return lines.map((l) => l.split("\t"));
}

/** The source's clock, seconds since the epoch (commit times in the binlog are its seconds). */
export async function sourceNow(src: Connection): Promise<number> {
  const [rows] = await src.query("SELECT UNIX_TIMESTAMP() AS t");
  return Number((rows as { t: string | number }[])[0]!.t);
}

/** Waits (polling the source's clock) until its clock shows `second` or later. */
export async function untilSecond(src: Connection, second: number): Promise<void> {
  await waitFor(async () => (await sourceNow(src)) >= second, {
    timeoutMs: 5_000,
    intervalMs: 20,
    what: `the source's clock to reach ${second}`,
  });
}

/** Where the source's next transaction starts (file:pos). */
export async function binlogPosition(src: Connection): Promise<string> {
  const [rows] = await src.query("SHOW MASTER STATUS");
  const at = (rows as { File: string; Position: number }[])[0]!;
  return `${at.File}:${at.Position}`;
}

/** A binlog position as [file, offset]. */
export function splitPos(p: string): [string, number] {
  const i = p.lastIndexOf(":");
  return [p.slice(0, i), Number(p.slice(i + 1))];
}

/**
 * Where a statement's event ends in the binlog (End_log_pos of the first Query event from `from`
 * whose text contains `needle`): the position right after it, in the same file.
 */
export async function queryEventEnd(src: Connection, from: string, needle: string): Promise<string> {
  const [file, pos] = splitPos(from);
  const [rows] = await src.query("SHOW BINLOG EVENTS IN ? FROM ? LIMIT 500", [file, pos]);
  const ev = (rows as { Event_type: string; Info: string; End_log_pos: number }[]).find(
    (e) => e.Event_type === "Query" && String(e.Info).includes(needle),
  );
  if (!ev) throw new Error(`no Query event with "${needle}" in ${file} from ${pos}`);
  return `${file}:${ev.End_log_pos}`;
}

/** The archive's entries that match `filter`, read now. */
export function archived(dir: string, filter: ArchiveFilter = {}): ArchiveEntry[] {
  return [...new ArchiveReader(dir).entries(filter)];
}

/** Waits until the archive holds a change of `db.table` with key `key` (`["42"]`) and `op`. */
export async function waitArchived(
  dir: string,
  ref: { db: string; table: string },
  key: string,
  op: string,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    () => archived(dir, { tables: [ref], key }).some((e) => e.kind === "change" && e.change.op === op),
    { timeoutMs, intervalMs: 100, what: `${ref.db}.${ref.table} ${key} (${op}) in the archive` },
  );
}

/** Rows of a two-column test table, ordered by id, as `id=v` strings. */
export async function rowsOf(c: Connection, db: string, table: string): Promise<string[]> {
  const [rows] = await c.query(`SELECT id, v FROM ${q(db)}.${q(table)} ORDER BY id`);
  return (rows as { id: number; v: string | null }[]).map((r) => `${r.id}=${r.v}`);
}

/** Capture and the archiving DPU of one source database, in this process, with a config file. */
export interface Archiving {
  id: string;
  db: string;
  dir: string;
  config: string;
  src: Connection;
  /** The archiving DPU (to pause it while the source moves on). */
  dpu: DpuService;
  close(): Promise<void>;
}

export async function openArchiving(prefix: string): Promise<Archiving> {
  await ensureStack();
  const id = uniqueId(prefix);
  const db = `${id}_src`;
  const tmp = tempDir("dfs-archive-cli-");
  const dir = join(tmp, "archive");
  const config = writeConfig(tmp, {
    source: {
      id,
      url: urls.sourceUrl,
      serverId: 5000 + Math.floor(Math.random() * 50_000),
      include: { databases: [db] },
    },
    nats: { url: urls.natsUrl },
    capture: {
      journal: { path: join(tmp, "journal.db") },
      heartbeatIntervalMs: 500,
      http: { port: 0 },
      grpc: { port: 0 },
    },
    dpu: { http: { port: 0 }, grpc: { port: 0 } },
    archive: { dir },
    log: { level: "warn" },
  });
  const src = await sourceConnection();
  await src.query(`CREATE DATABASE ${q(db)}`);
  let capture: CaptureService | null = null;
  let dpu: DpuService | null = null;
  try {
    const cfg = loadConfig(config);
    capture = await startCapture(cfg);
    dpu = await startDpu(cfg);
  } catch (err) {
    await capture?.stop().catch(() => {});
    await src.end().catch(() => {});
    throw err;
  }
  return {
    id,
    db,
    dir,
    config,
    src,
    dpu: dpu!,
    async close() {
      await dpu?.stop().catch(() => {});
      await capture?.stop().catch(() => {});
      const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
      await deleteStreams(nc, id).catch(() => {});
      await nc.close().catch(() => {});
      await src.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
      await src.end().catch(() => {});
    },
  };
}
