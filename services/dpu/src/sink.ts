import type { DecodedChange, Position, TableRef } from "@dfs/codec";

/** What the DPU knows of a target table. */
export interface TargetTable {
  /** Target database and table names (after mapping). */
  ref: TableRef;
  /** Columns a change may write (generated columns left out). */
  columns: Set<string>;
  /** Columns that identify a row: the primary key, else a unique key of NOT NULL columns, else none. */
  key: string[];
  keyKind: "primary" | "unique" | "none";
  /** The identity key and every other unique key: what two changes conflict on (conflicts.ts). */
  uniqueKeys: string[][];
}

/** One row change in stream order: the decoded change, its stream message and its target table. */
export interface Change extends DecodedChange {
  /** Stream sequence of the message; with rowIndex, the change's identity. */
  seq: number;
  target: TargetTable;
  /** The columns of its images the target has, in image order (shared by a batch's changes). */
  columns: readonly string[];
  /** The keys it writes (conflicts.ts writeSet), worked out once when first needed. */
  keys: string[] | null;
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
  /** Its GTID and start position in the source's history (the archive records them). */
  gtid?: string;
  position?: Position;
  /** Commit time on the source, seconds since the epoch. */
  commitTime?: number;
}

/**
 * One source transaction: `seq` is the stream sequence of the last message of its capture group
 * (the stream "transaction" that carries it), `row` the group-wide index of its first row. The
 * pair identifies it across re-reads (unitKey).
 */
export interface TxnChanges {
  seq: number;
  row: number;
  changes: Change[];
}

/** A source transaction's identity as a string: "<seq>:<row>". */
export function unitKey(seq: number, row: number): string {
  return `${seq}:${row}`;
}

/** The stream sequence of a unitKey. */
export function unitSeq(key: string): number {
  return Number(key.slice(0, key.indexOf(":")));
}

/**
 * Source transactions as an applied record: "seq:row,row;seq:row" (rows of one stream
 * transaction after its sequence), in order.
 */
export function formatUnits(units: readonly { seq: number; row: number }[]): string {
  let out = "";
  let seq = -1;
  for (const u of units) {
    if (u.seq !== seq) {
      out += `${out ? ";" : ""}${u.seq}:${u.row}`;
      seq = u.seq;
    } else out += `,${u.row}`;
  }
  return out;
}

/** The unitKeys of an applied record. */
export function parseUnits(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(";")) {
    const colon = part.indexOf(":");
    if (colon < 0) continue;
    const seq = Number(part.slice(0, colon));
    for (const row of part.slice(colon + 1).split(",")) out.push(unitKey(seq, Number(row)));
  }
  return out;
}

/** One connection's share of a group: source transactions that share no key with other lanes'. */
export interface Lane {
  /** Their changes, in source order. */
  changes: Change[];
  /** The source transactions, in source order. */
  units: { seq: number; row: number }[];
  rows: number;
}

/** Source transactions applied together: one target transaction per lane, lanes in parallel. */
export interface ApplyGroup {
  lanes: Lane[];
  /** Once every lane committed, every message up to this stream sequence is applied. */
  lastSeq: number;
  /**
   * Whether the lanes' transactions are exactly the messages up to lastSeq (so one lane can move
   * the low-water mark itself); false when the group ends inside a capture group, whose other
   * source transactions follow: then each lane records the transactions it committed.
   */
  whole: boolean;
}

/**
 * Where the DPU resumes: every message up to `lowWater` is applied, and so are the source
 * transactions in `applied` (unitKey), which lanes committed above it.
 */
export interface SinkCheckpoint {
  lowWater: number;
  applied: Set<string>;
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
 * Where the DPU writes. Every write moves the consumer's checkpoint in the same atomic step as
 * the changes, so that after a crash nothing is applied twice: with one lane, the low-water mark
 * itself; with several, each lane records the source transactions it committed, and the
 * low-water mark follows once every lane of a group has. Implementations retry passing failures
 * themselves until the DPU stops; what they throw is final.
 */
export interface Sink {
  /** How many lanes a group may be split into (connections applying in parallel). */
  readonly parallelism: number;
  /** Connects and reads where to resume. */
  open(): Promise<SinkCheckpoint>;
  /** The target of a source table, or null when there is none and none can be made. */
  describe(source: TableRef): Promise<TargetTable | null>;
  /** Work done ahead of `applyGroup` (planning), so it overlaps the previous group's round trips. */
  prepare(group: ApplyGroup): void;
  /**
   * Applies a group: each lane's changes in one transaction with its checkpoint record, lanes in
   * parallel. Changes refused for good are handed to `deadLetter` before their lane commits, and
   * returned.
   */
  applyGroup(group: ApplyGroup): Promise<Rejected[]>;
  /** Applies a schema change (a barrier: everything before it is applied), then the checkpoint. */
  applyDdl(ddl: DdlChange, seq: number): Promise<void>;
  /** Moves the low-water mark alone (heartbeats, a control call). */
  advance(seq: number): Promise<void>;
  /** Writes a low-water mark every lane has passed but no transaction has recorded yet (an idle DPU). */
  flush(): Promise<void>;
  /**
   * A source transaction larger than a group, streamed: `part` applies its changes inside one
   * open target transaction, `commitLarge` commits it with the checkpoint. A failure loses the
   * open transaction: the caller reads the stream again from the checkpoint.
   */
  applyLargePart(changes: readonly Change[]): Promise<Rejected[]>;
  commitLarge(seq: number): Promise<void>;
  /** Applies changes without touching the checkpoint (dead-letter replay). */
  replay(changes: readonly Change[]): Promise<void>;
  readonly stats: SinkStats;
  close(): Promise<void>;
}

/** What a sink reports as it works (metrics, the monitor's recent DML). */
export interface SinkEvents {
  statement?(st: { sql: string; changes: readonly Change[] }, ms: number): void;
  /** A group (or a lane of it) committed: the changes that are in the target now, and how long it took. */
  committed?(changes: readonly Change[], ms: number): void;
  rejected?(rejected: readonly Rejected[]): void;
  ddl?(db: string, statement: string, ms: number): void;
  retry?(what: string, err: unknown): void;
}
