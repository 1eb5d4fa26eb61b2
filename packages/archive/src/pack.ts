import { Position } from "@dfs/codec";
import type { ChangeBatch } from "@dfs/proto";
import { keyText } from "./keys.js";
import type { ArchivedChange } from "./writer.js";

/** A source transaction of a packed write, as its first change there describes it. */
export interface PackedTxn {
  /** Its identity within a write (capture group ordinal and first row): parts of one transaction share it. */
  key: string;
  /** Stream sequence of the message holding its first change. */
  seq: number;
  firstRow: number;
  gtid: string;
  file: string;
  pos: number;
  sortable: string;
  commitTime: number;
}

/** A table shape of a packed write (the `schemas` row its changes point at). */
export interface PackedSchema {
  db: string;
  tbl: string;
  version: number;
  /** JSON: [[name, type, charset], ...] and [key column, ...], as `schemas` stores them. */
  columns: string;
  pkey: string;
}

/**
 * Row changes in the form the writer stores them, cheap to hand to a worker thread: every
 * change's envelope bytes in one buffer (the thread's writes reuse shared memory for it), the rest
 * in arrays, the transactions and table shapes once each.
 */
export interface PackedChanges {
  count: number;
  txns: PackedTxn[];
  schemas: PackedSchema[];
  /** Per change: index into `txns`, into `schemas`, its row index in the capture group. */
  txn: Int32Array;
  schema: Int32Array;
  rowIndex: Int32Array;
  /** Per change, one letter: c, u, d or r. */
  ops: string;
  /** Per change: the key as text (`["42"]`), and an update's old key when it moved. */
  pk: (string | null)[];
  pkOld: (string | null)[];
  /** Per change: where its bytes end in `rows` (the first starts at 0). */
  ends: Int32Array;
  rows: Uint8Array;
}

/**
 * Changes (whole source transactions, in order) packed for the writer. `space(bytes)` gives the
 * buffer their envelope bytes go into (default: a new one).
 */
export function packChanges(
  changes: readonly ArchivedChange[],
  space: (bytes: number) => Uint8Array = (n) => new Uint8Array(n),
): PackedChanges {
  const n = changes.length;
  const txns: PackedTxn[] = [];
  const schemas: PackedSchema[] = [];
  const txnIndex = new Map<string, number>();
  const schemaIndex = new Map<ChangeBatch, number>();
  const txn = new Int32Array(n);
  const schema = new Int32Array(n);
  const rowIndex = new Int32Array(n);
  const ends = new Int32Array(n);
  const pk: (string | null)[] = new Array(n);
  const pkOld: (string | null)[] = new Array(n);
  const raws: Uint8Array[] = new Array(n);
  let ops = "";
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const c = changes[i]!;
    const b = c.batch;
    const src = b.sourceTxns[c.sourceTxn];
    const key = `${b.txnOrdinal}:${src?.firstRow ?? -1}`;
    let t = txnIndex.get(key);
    if (t === undefined) {
      t = txns.length;
      txnIndex.set(key, t);
      const file = src?.startFile || b.position?.startFile || "";
      const pos = Number(src?.startFile ? src.startPos : (b.position?.startPos ?? 0));
      txns.push({
        key,
        seq: c.seq,
        firstRow: src?.firstRow ?? 0,
        gtid: src?.gtid ?? b.position?.gtid ?? "",
        file,
        pos,
        sortable: file ? Position.fromRecord({ file, pos }).sortable : "",
        commitTime: Number(src?.commitTime ?? b.commitTime),
      });
    }
    let s = schemaIndex.get(b);
    if (s === undefined) {
      s = schemas.length;
      schemaIndex.set(b, s);
      schemas.push({
        db: b.db,
        tbl: b.table,
        version: b.schemaVersion,
        columns: JSON.stringify(b.columns.map((col) => [col.name, col.type, col.charset])),
        pkey: JSON.stringify(b.primaryKey),
      });
    }
    txn[i] = t;
    schema[i] = s;
    rowIndex[i] = c.rowIndex;
    ops += c.op;
    const after = c.op === "d" ? null : keyText(b.primaryKey, c.after);
    const before = c.op === "c" || c.op === "r" ? null : keyText(b.primaryKey, c.before);
    pk[i] = after ?? before;
    pkOld[i] = after !== null && before !== null && after !== before ? before : null;
    const raw = c.raw;
    raws[i] = raw;
    bytes += raw.byteLength;
    ends[i] = bytes;
  }
  const rows = space(bytes).subarray(0, bytes);
  let at = 0;
  for (const r of raws) {
    rows.set(r, at);
    at += r.byteLength;
  }
  return { count: n, txns, schemas, txn, schema, rowIndex, ops, pk, pkOld, ends, rows };
}
