// A running pipeline for verify's tests: capture and the DPU in-process on the stack's servers,
// with a source database of the test's own and its target copy. Not part of the package's API.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CaptureService, startCapture } from "@dfs/capture";
import { createLogger, waitFor } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { type DpuService, startDpu } from "@dfs/dpu";
import { connectNats, type NatsConnection } from "@dfs/nats";
import { deleteStreams, sourceConnection, tempDir, testConfig, uniqueId, urls } from "@dfs/testkit";
import mysql from "mysql2/promise";

export const q = (name: string): string => `\`${name.replace(/`/g, "``")}\``;

export const quietLog = createLogger({ level: "warn", name: "verify-test", destination: 2 });

export function targetConnection(): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: "127.0.0.1",
    port: 13307,
    user: "root",
    multipleStatements: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  });
}

export interface Harness {
  id: string;
  db: string;
  targetDb: string;
  cfg: DfsConfig;
  /** The config as a file, for `dfs verify -c` (JSON is YAML). */
  configFile: string;
  src: mysql.Connection;
  dst: mysql.Connection;
  start(): Promise<void>;
  /** Waits until every listed table has as many rows on the target as on the source, and the same sum of CRC32s. */
  caughtUp(tables: string[], timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A source database `<id>_src` synced into `<id>_dst` (or, with `pipeline`, mapped). */
export async function openHarness(prefix: string, extra: Record<string, unknown> = {}): Promise<Harness> {
  // The stack's servers are expected to answer already (`dfs stack up`): a worktree may not own them.
  const id = uniqueId(prefix);
  const db = `${id}_src`;
  const targetDb = `${id}_dst`;
  const input = {
    target: { url: urls.targetUrl, database: targetDb },
    dpu: { retry: { initialMs: "50ms", maxMs: "1s" } },
    ...extra,
  };
  const cfg = testConfig(id, db, input);
  const dir = tempDir("dfs-verify-");
  const configFile = join(dir, "dfs.yaml");
  writeFileSync(
    configFile,
    JSON.stringify({
      source: { id, url: urls.sourceUrl, include: { databases: [db] } },
      nats: { url: urls.natsUrl },
      log: { level: "warn" },
      ...input,
    }),
  );
  const src = await sourceConnection();
  const dst = await targetConnection();
  await src.query(`CREATE DATABASE ${q(db)}`);
  let capture: CaptureService | null = null;
  let dpu: DpuService | null = null;
  let nc: NatsConnection | null = null;
  const digest = async (c: mysql.Connection, d: string, t: string) => {
    const [rows] = await c.query(
      `SELECT COUNT(*) AS n, COALESCE(SUM(CRC32(CONCAT_WS('#', id, ''))), 0) AS s FROM ${q(d)}.${q(t)}`,
    );
    const r = (rows as { n: string; s: string }[])[0]!;
    return `${r.n}:${r.s}`;
  };
  return {
    id,
    db,
    targetDb,
    cfg,
    configFile,
    src,
    dst,
    async start() {
      capture = await startCapture(cfg);
      dpu = await startDpu(cfg);
    },
    async caughtUp(tables, timeoutMs = 60_000) {
      await waitFor(
        async () => {
          for (const t of tables)
            if ((await digest(src, db, t)) !== (await digest(dst, targetDb, t).catch(() => "none")))
              return false;
          return true;
        },
        { timeoutMs, intervalMs: 200, what: `${tables.join(", ")} copied to the target` },
      );
    },
    async close() {
      await dpu?.stop().catch(() => {});
      await capture?.stop().catch(() => {});
      nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` }).catch(() => null);
      if (nc) await deleteStreams(nc, id).catch(() => {});
      await nc?.close().catch(() => {});
      await src.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
      await dst.query(`DROP DATABASE IF EXISTS ${q(targetDb)}`).catch(() => {});
      for (const table of ["_dfs_checkpoint", "_dfs_applied", "_dfs_verify"])
        await dst
          .query(
            `DELETE FROM \`_dfs\`.${q(table)} WHERE ${table === "_dfs_verify" ? "source_id" : "consumer"} LIKE ?`,
            [table === "_dfs_verify" ? id : `${id}:%`],
          )
          .catch(() => {});
      await src.end().catch(() => {});
      await dst.end().catch(() => {});
    },
  };
}
