import { DataError, ErrorCode } from "@dfs/common";
import { ChangeBatch, DdlEvent, Heartbeat, Op, type RowChange, type Value } from "@dfs/proto";
import { formatTableRef, type TableRef } from "./table-ref.js";
import { fromValue, type SqlValue } from "./values.js";

/** c = insert, u = update, d = delete, r = read by a snapshot (Debezium's letters). */
export type OpCode = "c" | "u" | "d" | "r";

const OP_CODES: Record<number, OpCode> = {
  [Op.OP_CREATE]: "c",
  [Op.OP_UPDATE]: "u",
  [Op.OP_DELETE]: "d",
  [Op.OP_READ]: "r",
};

/** The letter of an envelope op. An op this version does not know is a DataError, never a guess. */
export function opCode(op: Op): OpCode {
  const c = OP_CODES[op];
  if (!c)
    throw new DataError(ErrorCode.DATA_INVALID, `unknown op ${op} in a change (a newer capture?)`, {
      details: { op },
    });
  return c;
}

/** A row image: column name -> exact value. */
export type Row = Record<string, SqlValue>;

/**
 * One row change as every consumer sees it, decoded from its batch: the one decoded-change model
 * of the project. `batch` is the envelope's header (shared by its rows; its `rows` may be left
 * out), `raw` the row's encoded field as it came (dead letters carry it exactly).
 */
export interface DecodedChange {
  readonly ref: TableRef;
  readonly op: OpCode;
  /** Index of the row in its source transaction: (transaction, rowIndex) identifies a change. */
  readonly rowIndex: number;
  readonly before: Row | null;
  readonly after: Row | null;
  /** Index of its source transaction in batch.sourceTxns (GTID, position, commit time). */
  readonly sourceTxn: number;
  readonly batch: ChangeBatch;
  /** The RowChange as field 15 of a ChangeBatch (tag, length, body). */
  readonly raw: Uint8Array;
}

/** A RowChange as field 15 of a ChangeBatch: what `DecodedChange.raw` holds. */
export function rowField(row: RowChange): Uint8Array {
  return ChangeBatch.encode({ ...ChangeBatch.fromPartial({}), rows: [row] }).finish();
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

function image(names: readonly string[], values: readonly Value[]): Row | null {
  if (values.length === 0) return null;
  const out: Row = {};
  for (let i = 0; i < names.length; i++) out[names[i]!] = fromValue(values[i]);
  return out;
}

/**
 * The row changes of a batch, in order. Throws DataError (DATA_INVALID) for an unknown op or an
 * image whose length does not match the columns: such a batch cannot be applied as it is.
 */
export function decodeChanges(batch: ChangeBatch): DecodedChange[] {
  const names = batch.columns.map((c) => c.name);
  const ref: TableRef = { db: batch.db, table: batch.table };
  return batch.rows.map((row) => {
    for (const img of [row.before, row.after]) {
      if (img.length !== 0 && img.length !== names.length)
        throw new DataError(
          ErrorCode.DATA_INVALID,
          `row ${row.rowIndex} of ${formatTableRef(ref)} has ${img.length} values for ${names.length} columns`,
        );
    }
    return {
      ref,
      op: opCode(row.op),
      rowIndex: row.rowIndex,
      before: image(names, row.before),
      after: image(names, row.after),
      sourceTxn: row.sourceTxn,
      batch,
      raw: rowField(row),
    };
  });
}
