import { ConfigError, ErrorCode } from "@dfs/common";
import type { Connection } from "mysql2/promise";
import type { SourceFacts } from "./checks.js";

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
  const [rows] = await conn.query("SHOW BINARY LOGS");
  const binlogs = (rows as { Log_name: string; File_size: number | string }[]).map((r) => ({
    name: r.Log_name,
    size: Number(r.File_size),
  }));
  const first = binlogs[0];
  const last = binlogs[binlogs.length - 1];
  if (!first || !last)
    throw new ConfigError(ErrorCode.SOURCE_SETTINGS, [
      "the source has no binary logs (SHOW BINARY LOGS is empty)",
    ]);
  const p = position.trim();
  if (p === "earliest") return { file: first.name, pos: 4, gtid: null };
  if (p === "latest") {
    const gtidVar = facts.isMariaDb ? "gtid_binlog_pos" : "gtid_executed";
    const [g] = await conn.query(`SELECT @@GLOBAL.${gtidVar} AS g`);
    return { file: last.name, pos: last.size, gtid: (g as { g: string | null }[])[0]?.g || null };
  }
  const m = FILE_POS.exec(p);
  if (m) {
    const file = binlogs.find((b) => b.name === m[1]);
    const pos = Number(m[2]);
    if (!file)
      throw new ConfigError(ErrorCode.CHECKPOINT_PURGED, [
        `position ${p}: the server has no binlog ${m[1]} (it has ${first.name} to ${last.name})`,
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
