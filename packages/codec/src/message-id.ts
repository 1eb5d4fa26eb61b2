import type { Position } from "./position.js";

/**
 * Message ids (Nats-Msg-Id), built in this one place. An id must be the same every time the same
 * change is published again (after a crash, a reconnect, a re-read of the binlog), so JetStream's
 * duplicate window drops the replay; and it must differ between any two different messages.
 */
export const messageIds = {
  /**
   * The `index`-th message of the transaction that starts at `start`. Snapshot chunks are
   * transactions of their own at the same position, told apart by `snapshotChunk`.
   */
  batch(sourceId: string, start: Position, index: number, snapshotChunk = ""): string {
    return `${sourceId}:${start.sortable}:${snapshotChunk ? `s${snapshotChunk}.` : ""}${index}`;
  },
  /** A DDL statement read at `at`. */
  ddl(sourceId: string, at: Position): string {
    return `${sourceId}:${at.sortable}:ddl`;
  },
  /** The `index`-th statement of the schema snapshot a new journal starts with, at `at`. */
  schema(sourceId: string, at: Position, index: number): string {
    return `${sourceId}:${at.sortable}:schema:${index}`;
  },
  /** A heartbeat: unique per journal entry (heartbeats are never re-read from the binlog). */
  heartbeat(sourceId: string, journalId: string, scn: number): string {
    return `${sourceId}:hb:${journalId.slice(0, 8)}:${scn}`;
  },
  /** A change a consumer dead-lettered: the same change refused twice is stored once. */
  deadLetter(consumer: string, streamSeq: number, rowIndex: number): string {
    return `dlq:${consumer}:${streamSeq}:${rowIndex}`;
  },
};
