import { ConfigError, ErrorCode } from "@dfs/common";
import type { Connection } from "mysql2/promise";
import { listBinlogs, type SourceFacts } from "./checks.js";

const FILE_POS = /^([^\s/\\:]+\.\d+):(\d+)$/;
const MARIADB_GTID = /^\s*\d+-\d+-\d+(\s*,\s*\d+-\d+-\d+)*\s*$/;
const MYSQL_GTID = /^\s*[0-9a-fA-F-]{36}(:[^,\s]+)+(\s*,\s*[0-9a-fA-F-]{36}(:[^,\s]+)+)*\s*$/;

/**
 * Resolves a position given to the control plane ("earliest", "latest", "mysql-bin.000042:1234"
 * or a GTID set) against the server's binlogs now; names what is wrong otherwise.
 */
export async function resolvePosition(
  conn: Connection,
  position: string,
  facts: SourceFacts,
): Promise<{ file: string; pos: number; gtid: string | null }> {
  const binlogs = await listBinlogs(conn);
  const p = position.trim();
  if (p === "earliest" || p === "latest") return edgePosition(conn, p, binlogs, facts.isMariaDb);
  const m = FILE_POS.exec(p);
  if (m) {
    const file = binlogs.find((b) => b.name === m[1]);
    const pos = Number(m[2]);
    if (!file)
      throw new ConfigError(ErrorCode.CHECKPOINT_PURGED, [
        `position ${p}: the server has no binlog ${m[1]} (it has ${binlogs[0]?.name} to ${binlogs.at(-1)?.name})`,
      ]);
    if (pos < 4 || pos > file.size)
      throw new ConfigError(ErrorCode.CONFIG_INVALID, [
        `position ${p}: the offset must be between 4 and ${file.size}, the size of ${file.name}`,
      ]);
    return { file: file.name, pos, gtid: null };
  }
  if ((facts.isMariaDb ? MARIADB_GTID : MYSQL_GTID).test(p)) return { file: "", pos: 0, gtid: p };
  throw new ConfigError(ErrorCode.CONFIG_INVALID, [
    `position ${JSON.stringify(p)}: must be "earliest", "latest", "file:pos" (e.g. mysql-bin.000042:1234) or a ${facts.isMariaDb ? "MariaDB" : "MySQL"} GTID set`,
  ]);
}

/**
 * The oldest position the server still has, or the current end of its binlog together with the
 * GTID state there (null where the server has none).
 */
export async function edgePosition(
  conn: Connection,
  which: "earliest" | "latest",
  binlogs: readonly { name: string; size: number }[],
  isMariaDb: boolean,
): Promise<{ file: string; pos: number; gtid: string | null }> {
  const first = binlogs[0];
  const last = binlogs[binlogs.length - 1];
  if (!first || !last)
    throw new ConfigError(ErrorCode.SOURCE_SETTINGS, [
      "the source has no binary logs (SHOW BINARY LOGS is empty)",
    ]);
  if (which === "earliest") return { file: first.name, pos: 4, gtid: null };
  const gtidVar = isMariaDb ? "gtid_binlog_pos" : "gtid_executed";
  const [rows] = await conn.query(`SELECT @@GLOBAL.${gtidVar} AS g`).catch(() => [[{ g: null }]]);
  return { file: last.name, pos: last.size, gtid: ((rows as { g: string | null }[])[0]?.g ?? null) || null };
}
