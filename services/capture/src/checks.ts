import { ConfigError, type DfsError, ErrorCode } from "@dfs/common";
import type { MysqlSession } from "@dfs/mysql";
import type { Checkpoint } from "./journal.js";

export interface SourceFacts {
  version: string;
  isMariaDb: boolean;
  /** server_uuid on MySQL; "mariadb:<server_id>" on MariaDB (which has no server uuid). */
  identity: string;
  serverUuid: string;
  binlogs: { name: string; size: number }[];
}

/** The server's binlog files, oldest first, with their sizes (SHOW BINARY LOGS). */
export async function listBinlogs(conn: MysqlSession): Promise<{ name: string; size: number }[]> {
  const rows = await conn.query<{ Log_name: string; File_size: number | string }[]>("SHOW BINARY LOGS");
  return rows.map((r) => ({
    name: r.Log_name,
    size: Number(r.File_size),
  }));
}

/** A global server variable as text; null when the server has no such variable. */
export async function variable(conn: MysqlSession, name: string): Promise<string | null> {
  try {
    const rows = await conn.query<{ v: unknown }[]>(`SELECT @@GLOBAL.${name} AS v`);
    const v = rows[0]?.v;
    return v === null || v === undefined ? null : String(v);
  } catch (err) {
    if ((err as DfsError).errno === 1193) return null; // ER_UNKNOWN_SYSTEM_VARIABLE
    throw err;
  }
}

/** Privileges granted to the current user on *.*, upper-cased. */
async function globalPrivileges(conn: MysqlSession): Promise<Set<string>> {
  const rows = await conn.query<Record<string, string>[]>("SHOW GRANTS FOR CURRENT_USER()");
  const out = new Set<string>();
  for (const row of rows) {
    const grant = Object.values(row)[0] ?? "";
    const m = /^GRANT\s+(.+?)\s+ON\s+\*\.\*\s+TO/i.exec(grant);
    if (!m) continue;
    for (const p of m[1]!.split(",")) out.add(p.trim().toUpperCase());
  }
  return out;
}

/**
 * Checks everything capture needs from the source and reports every problem at once, each
 * naming the setting and how to fix it. Returns what it learned about the server.
 */
export async function checkSource(conn: MysqlSession, checkpoint: Checkpoint | null): Promise<SourceFacts> {
  const problems: string[] = [];
  const version = (await variable(conn, "version")) ?? "";
  const isMariaDb = /mariadb/i.test(version);
  const logBin = await variable(conn, "log_bin");
  if (logBin !== "1" && logBin?.toUpperCase() !== "ON") {
    problems.push(
      "log_bin is OFF: start the source with --log-bin (binary logging) so capture has a binlog to read",
    );
  }
  const format = await variable(conn, "binlog_format");
  if (format?.toUpperCase() !== "ROW") {
    problems.push(
      `binlog_format is ${format}, must be ROW: SET GLOBAL binlog_format = 'ROW' (and in the server config)`,
    );
  }
  const image = await variable(conn, "binlog_row_image");
  if (image !== null && image.toUpperCase() !== "FULL") {
    problems.push(
      `binlog_row_image is ${image}, must be FULL: SET GLOBAL binlog_row_image = 'FULL' (and in the server config)`,
    );
  }
  const metadata = await variable(conn, "binlog_row_metadata");
  if (metadata !== null && metadata.toUpperCase() !== "FULL") {
    problems.push(
      `binlog_row_metadata is ${metadata}, must be FULL so rows decode with the columns they were written with: SET GLOBAL binlog_row_metadata = 'FULL'`,
    );
  }
  // Compressed events are ones the binlog reader cannot decode: their rows would never arrive.
  const compressed = await variable(conn, "log_bin_compress");
  if (compressed === "1" || compressed?.toUpperCase() === "ON")
    problems.push(
      "log_bin_compress is ON: MariaDB then writes compressed row events, which capture cannot decode; SET GLOBAL log_bin_compress = OFF (and in the server config), and start capture after the last compressed event",
    );
  const txnCompression = await variable(conn, "binlog_transaction_compression");
  if (txnCompression === "1" || txnCompression?.toUpperCase() === "ON")
    problems.push(
      "binlog_transaction_compression is ON: MySQL then writes transaction payload events, which capture cannot decode; SET GLOBAL binlog_transaction_compression = OFF (and in the server config)",
    );
  const privileges = await globalPrivileges(conn);
  const has = (...names: string[]) =>
    privileges.has("ALL PRIVILEGES") || names.some((n) => privileges.has(n));
  if (!has("REPLICATION SLAVE", "REPLICATION REPLICA")) {
    problems.push("the source user lacks REPLICATION SLAVE: GRANT REPLICATION SLAVE ON *.* TO <user>");
  }
  if (!has("REPLICATION CLIENT", "BINLOG MONITOR", "SUPER")) {
    problems.push(
      `the source user lacks ${isMariaDb ? "BINLOG MONITOR" : "REPLICATION CLIENT"}: GRANT ${isMariaDb ? "BINLOG MONITOR" : "REPLICATION CLIENT"} ON *.* TO <user>`,
    );
  }
  if (!has("SELECT"))
    problems.push("the source user lacks SELECT on *.* (needed for snapshots and table metadata)");

  const serverUuid = (await variable(conn, "server_uuid")) ?? "";
  const identity = serverUuid || `mariadb:${await variable(conn, "server_id")}`;
  let binlogs: { name: string; size: number }[] = [];
  try {
    binlogs = await listBinlogs(conn);
  } catch (err) {
    if (problems.length === 0) problems.push(`SHOW BINARY LOGS failed: ${(err as Error).message}`);
  }
  const at = checkpoint?.position;
  if (at?.hasFile) {
    if (at.server && at.server !== identity) {
      throw new ConfigError(ErrorCode.SOURCE_CHANGED, [
        `the journal was read from server ${at.server} but the source is now ${identity}: positions do not carry over; start with a new journal (and a snapshot)`,
      ]);
    }
    const file = binlogs.find((b) => b.name === at.file);
    if (binlogs.length > 0 && !file) {
      throw new ConfigError(ErrorCode.CHECKPOINT_PURGED, [
        `the checkpoint ${at} is no longer on the server (oldest binlog is ${binlogs[0]!.name}): it was purged; re-snapshot or set a new position`,
      ]);
    }
  }
  if (problems.length > 0) {
    const privilegeOnly = problems.every((p) => p.includes("lacks"));
    throw new ConfigError(privilegeOnly ? ErrorCode.SOURCE_PRIVILEGES : ErrorCode.SOURCE_SETTINGS, problems);
  }
  return { version, isMariaDb, identity, serverUuid: serverUuid || identity, binlogs };
}
