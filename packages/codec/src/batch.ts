import { ChangeBatch, DdlEvent, Heartbeat, Op, type SourcePosition } from "@dfs/proto";
import { fromValue, type SqlValue } from "./values.js";

export type OpCode = "c" | "u" | "d" | "r";

const OP_CODES: Record<number, OpCode> = {
  [Op.OP_CREATE]: "c",
  [Op.OP_UPDATE]: "u",
  [Op.OP_DELETE]: "d",
  [Op.OP_READ]: "r",
};

export function opCode(op: Op): OpCode {
  const c = OP_CODES[op];
  if (!c) throw new Error(`unknown op ${op}`);
  return c;
}

/** One row change with everything a consumer needs, flattened out of its batch. */
export interface ChangeEvent {
  sourceId: string;
  serverUuid: string;
  db: string;
  table: string;
  op: OpCode;
  gtid: string;
  file: string;
  pos: bigint;
  scn: bigint;
  txnOrdinal: bigint;
  rowIndex: number;
  commitTime: number;
  captureTimeMs: number;
  schemaVersion: number;
  primaryKey: string[];
  /** Column name -> value; null for an absent image. */
  before: Record<string, SqlValue> | null;
  after: Record<string, SqlValue> | null;
}

export function encodeBatch(batch: ChangeBatch): Uint8Array {
  return ChangeBatch.encode(batch).finish();
}

export function decodeBatch(bytes: Uint8Array): ChangeBatch {
  return ChangeBatch.decode(bytes);
}

export function encodeDdl(ev: DdlEvent): Uint8Array {
  return DdlEvent.encode(ev).finish();
}

export function decodeDdl(bytes: Uint8Array): DdlEvent {
  return DdlEvent.decode(bytes);
}

export function encodeHeartbeat(hb: Heartbeat): Uint8Array {
  return Heartbeat.encode(hb).finish();
}

export function decodeHeartbeat(bytes: Uint8Array): Heartbeat {
  return Heartbeat.decode(bytes);
}

function image(
  names: string[],
  values: ChangeBatch["rows"][number]["after"],
): Record<string, SqlValue> | null {
  if (values.length === 0) return null;
  const out: Record<string, SqlValue> = {};
  for (let i = 0; i < names.length; i++) out[names[i]!] = fromValue(values[i]);
  return out;
}

/** Flattens a batch into one event per row, in order. */
export function expandBatch(batch: ChangeBatch): ChangeEvent[] {
  const names = batch.columns.map((c) => c.name);
  const pos: SourcePosition | undefined = batch.position;
  return batch.rows.map((r) => ({
    sourceId: batch.sourceId,
    serverUuid: batch.serverUuid,
    db: batch.db,
    table: batch.table,
    op: opCode(r.op),
    gtid: pos?.gtid ?? "",
    file: pos?.file ?? "",
    pos: pos?.pos ?? 0n,
    scn: batch.scn,
    txnOrdinal: batch.txnOrdinal,
    rowIndex: r.rowIndex,
    commitTime: Number(batch.commitTime),
    captureTimeMs: Number(batch.captureTimeMs),
    schemaVersion: batch.schemaVersion,
    primaryKey: batch.primaryKey,
    before: image(names, r.before),
    after: image(names, r.after),
  }));
}
