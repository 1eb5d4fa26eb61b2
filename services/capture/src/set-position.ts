import { gtidFlavor, Position, parseStartPoint, type StartPoint } from "@dfs/codec";
import { ConfigError, ErrorCode } from "@dfs/common";
import type { MysqlSession } from "@dfs/mysql";
import { listBinlogs, type SourceFacts } from "./checks.js";

/**
 * Resolves a start point ("earliest", "latest", a file position or a GTID set) against the
 * server's binlogs now, into a concrete position of this server; names what is wrong otherwise.
 */
export async function resolveStartPoint(
  conn: MysqlSession,
  point: StartPoint,
  facts: SourceFacts,
): Promise<Position> {
  const binlogs = await listBinlogs(conn);
  if (point.kind !== "at") return edgePosition(conn, point.kind, binlogs, facts);
  const p = point.position;
  if (!p.hasFile) {
    const flavor = facts.isMariaDb ? "mariadb" : "mysql";
    if (gtidFlavor(p.gtid) !== flavor)
      throw new ConfigError(ErrorCode.CONFIG_INVALID, [
        `position ${JSON.stringify(p.gtid)}: not a ${facts.isMariaDb ? "MariaDB" : "MySQL"} GTID set`,
      ]);
    return p.withServer(facts.identity);
  }
  const file = binlogs.find((b) => b.name === p.file);
  if (!file)
    throw new ConfigError(ErrorCode.CHECKPOINT_PURGED, [
      `position ${p}: the server has no binlog ${p.file} (it has ${binlogs[0]?.name} to ${binlogs.at(-1)?.name})`,
    ]);
  if (p.pos < 4 || p.pos > file.size)
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `position ${p}: the offset must be between 4 and ${file.size}, the size of ${file.name}`,
    ]);
  return p.withServer(facts.identity);
}

/** A position named by a person (the control plane's SetPosition), resolved as above. */
export async function resolvePosition(
  conn: MysqlSession,
  text: string,
  facts: SourceFacts,
): Promise<Position> {
  return resolveStartPoint(conn, parseStartPoint(text), facts);
}

/**
 * The oldest position the server still has, or the current end of its binlog together with the
 * GTID state there.
 */
export async function edgePosition(
  conn: MysqlSession,
  which: "earliest" | "latest",
  binlogs: readonly { name: string; size: number }[],
  facts: Pick<SourceFacts, "isMariaDb" | "identity">,
): Promise<Position> {
  const first = binlogs[0];
  const last = binlogs[binlogs.length - 1];
  if (!first || !last)
    throw new ConfigError(ErrorCode.SOURCE_SETTINGS, [
      "the source has no binary logs (SHOW BINARY LOGS is empty)",
    ]);
  if (which === "earliest") return Position.at(first.name, 4, "", facts.identity);
  const gtidVar = facts.isMariaDb ? "gtid_binlog_pos" : "gtid_executed";
  const rows = await conn
    .query<{ g: string | null }[]>(`SELECT @@GLOBAL.${gtidVar} AS g`)
    .catch(() => [{ g: null }]);
  return Position.at(last.name, last.size, rows[0]?.g ?? "", facts.identity);
}
