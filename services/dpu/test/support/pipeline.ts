// Shared helpers of the DPU data-path tests (roundtrip, dlq, ddl-backlog). Not part of the service's API.

import assert from "node:assert/strict";
import { type CaptureService, startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import mysql from "mysql2/promise";
import { type DpuService, startDpu } from "../../dist/index.js";

/** A connection to the stack's target MariaDB, with the same options as `sourceConnection`. */
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

export const q = (name: string): string => `\`${name.replace(/`/g, "``")}\``;

/** A table's rows as one comparable string: every column as HEX, rows ordered; TIMESTAMP in UTC. */
export async function tableDump(conn: mysql.Connection, db: string, table: string): Promise<string> {
  await conn.query("SET time_zone = '+00:00'");
  const [cols] = await conn.query(
    "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    [db, table],
  );
  // NULL and '' differ: CONCAT_WS skips NULLs, so NULL is spelled out.
  const names = (cols as { c: string }[]).map((r) => `IFNULL(HEX(${q(r.c)}), 'NULL')`);
  if (names.length === 0) return "<missing>";
  const [rows] = await conn.query(
    `SELECT CONCAT_WS('|', ${names.join(",")}) AS r FROM ${q(db)}.${q(table)} ORDER BY r`,
  );
  return (rows as { r: string }[]).map((r) => r.r).join("\n");
}

/**
 * Removes what a test run of source `id` left: its streams, its databases on both servers, and the
 * DPU's checkpoint rows (low-water mark and applied records) of every consumer of that source.
 */
export async function forgetRun(
  o: { src: mysql.Connection; dst: mysql.Connection; nc: NatsConnection; id: string },
  databases: { source: string; target: string },
): Promise<void> {
  await deleteStreams(o.nc, o.id).catch(() => {});
  await o.src.query(`DROP DATABASE IF EXISTS ${q(databases.source)}`).catch(() => {});
  await o.dst.query(`DROP DATABASE IF EXISTS ${q(databases.target)}`).catch(() => {});
  for (const table of ["_dfs_checkpoint", "_dfs_applied"])
    await o.dst
      .query(`DELETE FROM \`_dfs\`.${q(table)} WHERE consumer LIKE ?`, [`${o.id}:%`])
      .catch(() => {});
  await o.dst
    .query("DELETE FROM `_dfs`.`_dfs_keymap` WHERE target_table LIKE ?", [`${databases.target}.%`])
    .catch(() => {});
}

/** SHOW CREATE TABLE, or "<missing>". */
export async function showCreate(conn: mysql.Connection, db: string, table: string): Promise<string> {
  const [rows] = await conn.query(`SHOW CREATE TABLE ${q(db)}.${q(table)}`).catch(() => [[]]);
  return (rows as Record<string, string>[])[0]?.["Create Table"] ?? "<missing>";
}

/** One test's pipeline: its own source id, source database, target database and streams. */
export interface Pipeline {
  id: string;
  db: string;
  targetDb: string;
  cfg: DfsConfig;
  src: mysql.Connection;
  dst: mysql.Connection;
  nc: NatsConnection;
  capture: CaptureService | null;
  dpu: DpuService | null;
  startCapture(): Promise<CaptureService>;
  startDpu(): Promise<DpuService>;
  stopDpu(): Promise<void>;
  /** Waits until the target table equals the source table (tableDump); fails with the difference. */
  converged(table: string, timeoutMs?: number): Promise<void>;
  /** Stops the services, deletes the streams, drops both databases. */
  close(): Promise<void>;
}

/** Opens a pipeline and creates its (empty) source database; nothing is started. */
export async function openPipeline(
  prefix: string,
  dpu: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
  o: { targetUrl?: string } = {},
): Promise<Pipeline> {
  await ensureStack();
  const id = uniqueId(prefix);
  const db = `${id}_src`;
  const targetDb = `${id}_dst`;
  const cfg = testConfig(id, db, {
    target: { url: o.targetUrl ?? urls.targetUrl, database: targetDb },
    dpu: { http: { port: 0 }, grpc: { port: 0 }, retry: { initialMs: "50ms", maxMs: "1s" }, ...dpu },
    ...extra,
  });
  const src = await sourceConnection();
  const dst = await targetConnection();
  const nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
  await src.query(`CREATE DATABASE ${q(db)}`);
  const p: Pipeline = {
    id,
    db,
    targetDb,
    cfg,
    src,
    dst,
    nc,
    capture: null,
    dpu: null,
    async startCapture() {
      p.capture = await startCapture(cfg);
      return p.capture;
    },
    async startDpu() {
      p.dpu = await startDpu(cfg);
      return p.dpu;
    },
    async stopDpu() {
      await p.dpu?.stop();
      p.dpu = null;
    },
    async converged(table, timeoutMs = 30_000) {
      const expected = await tableDump(src, db, table);
      await waitFor(async () => (await tableDump(dst, targetDb, table)) === expected, {
        timeoutMs,
        what: `${targetDb}.${table} to equal the source`,
      }).catch(async (err: Error) => {
        const status = p.dpu ? JSON.stringify(p.dpu.status()) : "no dpu";
        assert.equal(await tableDump(dst, targetDb, table), expected, `${table}: ${err.message}; ${status}`);
      });
    },
    async close() {
      await p.dpu?.stop().catch(() => {});
      await p.capture?.stop().catch(() => {});
      await forgetRun({ src, dst, nc, id }, { source: db, target: targetDb });
      await nc.close().catch(() => {});
      await src.end().catch(() => {});
      await dst.end().catch(() => {});
    },
  };
  return p;
}
