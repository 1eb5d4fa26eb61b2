/**
 * Binlog positions as strings that sort: "0000000123:000000004567" for mysql-bin.000123 at 4567.
 * Comparing two of them with < gives binlog order on one server.
 */
export function binlogFileNumber(file: string): number {
  const m = /\.(\d+)$/.exec(file);
  if (!m) throw new Error(`not a binlog file name: "${file}"`);
  return Number(m[1]);
}

export function sortablePosition(file: string, pos: number | bigint): string {
  return `${String(binlogFileNumber(file)).padStart(10, "0")}:${String(pos).padStart(12, "0")}`;
}

/** Message headers capture sets on every message (besides Nats-Msg-Id). */
export const Headers = {
  /** "batch", "ddl" or "heartbeat": which message type the payload is. */
  kind: "Dfs-Kind",
  /** Journal sequence number of the message. */
  scn: "Dfs-Scn",
  /** Identity of the journal that wrote it; SCNs compare only within one journal. */
  journal: "Dfs-Journal",
  /** Sortable source position (see sortablePosition). */
  position: "Dfs-Pos",
  /** Rows in a batch. */
  rows: "Dfs-Rows",
} as const;

export type MessageKind = "batch" | "ddl" | "heartbeat";
