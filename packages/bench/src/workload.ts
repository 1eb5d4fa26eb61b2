import { Position } from "@dfs/codec";
import { connectNats, type NatsConnection, subjects } from "@dfs/nats";
import { stackUrls } from "@dfs/stack";
import { jetstreamManager } from "@nats-io/jetstream";
import mysql from "mysql2/promise";

/** Where the binlog ends right now: the position just after the last event. */
export async function binlogEnd(conn: mysql.Connection): Promise<Position> {
  const [rows] = await conn.query("SHOW BINARY LOGS");
  const list = rows as { Log_name: string; File_size: number | string }[];
  const last = list[list.length - 1]!;
  return Position.at(last.Log_name, Number(last.File_size));
}

export const BENCH_TABLE = `CREATE TABLE IF NOT EXISTS bench_rows (
  id BIGINT PRIMARY KEY,
  k INT NOT NULL,
  name VARCHAR(64) NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  ts DATETIME(6) NOT NULL,
  score DOUBLE NULL
) ENGINE=InnoDB`;

function insertSql(from: number, count: number): string {
  const values: string[] = [];
  for (let id = from; id < from + count; id++) {
    values.push(
      `(${id},${id % 1000},'name-${id}-abcdefghij',${(id % 100000) / 100},'2026-01-01 00:00:00.${String(id % 1000000).padStart(6, "0")}',${id * 0.5})`,
    );
  }
  return `INSERT INTO bench_rows (id,k,name,amount,ts,score) VALUES ${values.join(",")}`;
}

export interface WorkloadResult {
  rows: number;
  inserts: number;
  updates: number;
  deletes: number;
  seconds: number;
}

/**
 * Writes `rows` row changes: 70 % inserts, 20 % updates, 10 % deletes, 1,000 rows per statement.
 * `singleTransaction` puts them all in one transaction (the memory case); otherwise each
 * statement commits on its own.
 */
export async function writeMixedWorkload(
  conn: mysql.Connection,
  rows: number,
  singleTransaction: boolean,
): Promise<WorkloadResult> {
  const started = performance.now();
  const chunk = 1000;
  const inserts = Math.floor((rows * 0.7) / chunk) * chunk;
  const updates = Math.floor((rows * 0.2) / chunk) * chunk;
  const deletes = rows - inserts - updates;
  if (singleTransaction) await conn.query("BEGIN");
  for (let done = 0; done < inserts; done += chunk)
    await conn.query(insertSql(done + 1, Math.min(chunk, inserts - done)));
  for (let done = 0; done < updates; done += chunk) {
    const n = Math.min(chunk, updates - done);
    await conn.query("UPDATE bench_rows SET k = k + 1, score = score * 2 WHERE id BETWEEN ? AND ?", [
      done + 1,
      done + n,
    ]);
  }
  for (let done = 0; done < deletes; done += chunk) {
    const n = Math.min(chunk, deletes - done);
    await conn.query("DELETE FROM bench_rows WHERE id BETWEEN ? AND ?", [
      inserts - done - n + 1,
      inserts - done,
    ]);
  }
  if (singleTransaction) await conn.query("COMMIT");
  return { rows, inserts, updates, deletes, seconds: (performance.now() - started) / 1000 };
}

/** A bench's own source database (holding the bench table) and NATS connection, and their cleanup. */
export interface BenchSource {
  /** Source id of the run; its streams are DFS_<ID> and DFS_<ID>_DLQ. */
  id: string;
  db: string;
  conn: mysql.Connection;
  nc: NatsConnection;
  /** Deletes the run's streams and database and closes both connections. */
  close(): Promise<void>;
}

export async function openBenchSource(prefix: string): Promise<BenchSource> {
  const id = `${prefix}${Date.now().toString(36)}`;
  const db = `dfs_bench_${id}`;
  const conn = await mysql.createConnection({ host: "127.0.0.1", port: 13306, user: "root" });
  const nc = await connectNats({ url: stackUrls().natsUrl, name: `dfs-${prefix}` });
  const close = async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(subjects.streamName(id)).catch(() => {});
    await jsm.streams.delete(subjects.dlqStreamName(id)).catch(() => {});
    await conn.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await conn.end();
    await nc.close();
  };
  try {
    await conn.query(`CREATE DATABASE \`${db}\``);
    await conn.query(`USE \`${db}\``);
    await conn.query(BENCH_TABLE);
  } catch (err) {
    await close();
    throw err;
  }
  return { id, db, conn, nc, close };
}
