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

/**
 * Runs a decoder over bytes from the wire: whatever it throws (the protobuf runtime's RangeError
 * "premature EOF", "illegal tag", a DataView bound) becomes a DataError naming what was decoded, so
 * that a consumer dead-letters the message instead of stopping. The runtime checks a length field
 * against the bytes present before it allocates, so a length saying 4 GB allocates nothing.
 */
export function decoding<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(
      ErrorCode.DATA_INVALID,
      `malformed ${what}: ${(err as Error)?.message ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
}

export function encodeBatch(batch: ChangeBatch): Uint8Array {
  return ChangeBatch.encode(batch).finish();
}

/** Throws DataError (DATA_INVALID) for bytes that are not a ChangeBatch. */
export function decodeBatch(bytes: Uint8Array): ChangeBatch {
  return decoding("change batch", () => ChangeBatch.decode(bytes));
}

export function encodeDdl(ev: DdlEvent): Uint8Array {
  return DdlEvent.encode(ev).finish();
}

/** Throws DataError (DATA_INVALID) for bytes that are not a DdlEvent. */
export function decodeDdl(bytes: Uint8Array): DdlEvent {
  return decoding("DDL event", () => DdlEvent.decode(bytes));
}

export function encodeHeartbeat(hb: Heartbeat): Uint8Array {
  return Heartbeat.encode(hb).finish();
}

/** Throws DataError (DATA_INVALID) for bytes that are not a Heartbeat. */
export function decodeHeartbeat(bytes: Uint8Array): Heartbeat {
  return decoding("heartbeat", () => Heartbeat.decode(bytes));
}

/**
 * Throws DataError (DATA_INVALID) unless a batch's header can name and describe its rows: a
 * database and a table, columns with distinct non-empty names (each names a property of an image).
 */
export function checkBatchHeader(b: ChangeBatch): void {
  const ref = formatTableRef({ db: b.db, table: b.table });
  const bad = (why: string) => new DataError(ErrorCode.DATA_INVALID, `change batch for ${ref}: ${why}`);
  if (b.db === "" || b.table === "") throw bad("no database or table name");
  const names = new Set<string>();
  for (const c of b.columns) {
    if (c.name === "") throw bad("a column without a name");
    if (names.has(c.name)) throw bad(`column ${JSON.stringify(c.name)} listed twice`);
    names.add(c.name);
  }
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
