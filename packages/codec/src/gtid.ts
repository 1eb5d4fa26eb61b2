/**
 * GTID sets as text. MySQL: "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7,<uuid>:tag:1-3" (tags
 * since 8.3); MariaDB: "domain-server-sequence" per domain, comma-separated ("0-1-100,1-2-7").
 * The one definition of what a GTID set looks like, for the config, the control plane and capture.
 */

const UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const MYSQL_PART = `${UUID}(?::(?:[A-Za-z_][A-Za-z0-9_]{0,31}|\\d+(?:-\\d+)?))+`;
const MYSQL_SET = new RegExp(`^\\s*${MYSQL_PART}(?:\\s*,\\s*${MYSQL_PART})*\\s*$`);
const MARIADB_SET = /^\s*\d+-\d+-\d+(?:\s*,\s*\d+-\d+-\d+)*\s*$/;

export type GtidFlavor = "mysql" | "mariadb";

/** Which server's GTID syntax `text` is in, or null when it is neither. */
export function gtidFlavor(text: string): GtidFlavor | null {
  if (MARIADB_SET.test(text)) return "mariadb";
  if (MYSQL_SET.test(text)) return "mysql";
  return null;
}

/** Whether `text` is a GTID set of the given flavor (or of either). */
export function isGtidSet(text: string, flavor?: GtidFlavor): boolean {
  const f = gtidFlavor(text);
  return f !== null && (flavor === undefined || f === flavor);
}
