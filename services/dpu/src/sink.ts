import type { DecodedChange, TableRef } from "@dfs/codec";

/** What the DPU knows of a target table. */
export interface TargetTable {
  /** Target database and table names (after mapping). */
  ref: TableRef;
  /** Columns a change may write (generated columns left out). */
  columns: Set<string>;
  /** Columns that identify a row: the primary key, else a unique key of NOT NULL columns, else none. */
  key: string[];
  keyKind: "primary" | "unique" | "none";
}

/** One row change in stream order: the decoded change, its stream message and its target table. */
export interface Change extends DecodedChange {
  /** Stream sequence of the message; with rowIndex, the change's identity. */
  seq: number;
  target: TargetTable;
}

/** A change the target refused for a reason that retrying will not fix. */
export interface Rejected {
  change: Change;
  error: string;
  errno: number | undefined;
}

/** A schema change from the stream. */
export interface DdlChange {
  /** Default database of the statement's session on the source. */
  db: string;
  statement: string;
  /** Tables the statement touches, when known. */
  tables: readonly TableRef[];
}

/** What a sink has done so far, for status and metrics. */
export interface SinkStats {
  rowsApplied: number;
  /** Changes dead-lettered by the sink. */
  rejected: number;
  retries: number;
  lastError: string;
  /** What the sink waits for while it retries ("" when it does not). */
  waitingFor: string;
}

/**
 * Where the DPU writes. Every write moves the consumer's checkpoint (the last stream sequence whose
 * effect is in the sink) in the same atomic step, so that after a crash nothing is applied twice.
 * Implementations retry passing failures themselves until the DPU stops; what they throw is final.
 */
export interface Sink {
  /** The last stream sequence applied (0 when none). */
  checkpoint(): Promise<number>;
  /** The target of a source table, or null when there is none and none can be made. */
  describe(source: TableRef): Promise<TargetTable | null>;
  /**
   * Applies changes (in order) and moves the checkpoint to `seq`, atomically. Changes the sink
   * refuses for good are handed to `deadLetter` before the rest commit, and returned.
   */
  apply(changes: readonly Change[], seq: number): Promise<Rejected[]>;
  /** Applies a schema change (a barrier: everything before it is applied), then the checkpoint. */
  applyDdl(ddl: DdlChange, seq: number): Promise<void>;
  /** Moves the checkpoint alone (heartbeats, a control call). */
  advance(seq: number): Promise<void>;
  /** Applies changes without touching the checkpoint (dead-letter replay). */
  replay(changes: readonly Change[]): Promise<void>;
  readonly stats: SinkStats;
  close(): Promise<void>;
}

/** What a sink reports as it works (metrics, the monitor's recent DML). */
export interface SinkEvents {
  statement?(st: { sql: string; changes: readonly Change[] }, ms: number): void;
  /** A unit committed: the changes that are in the target now, and how long it took. */
  committed?(changes: readonly Change[], ms: number): void;
  rejected?(rejected: readonly Rejected[]): void;
  ddl?(db: string, statement: string, ms: number): void;
  retry?(what: string, err: unknown): void;
}
