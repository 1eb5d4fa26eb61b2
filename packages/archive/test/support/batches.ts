// Archive test data: row changes of one table as capture publishes them, decoded as the DPU decodes them.
import { decodeBatchChanges, encodeBatch, toValue, ValueKind } from "@dfs/codec";
import { ChangeBatch, type Op } from "@dfs/proto";
import type { ArchivedChange } from "../../dist/index.js";

export const COLUMNS: [string, ValueKind, string][] = [
  ["id", ValueKind.Uint, "bigint(20) unsigned"],
  ["d", ValueKind.Decimal, "decimal(65,30)"],
  ["dt", ValueKind.Temporal, "datetime(6)"],
  ["j", ValueKind.Json, "json"],
  ["b", ValueKind.Bytes, "blob"],
  ["s", ValueKind.Text, "varchar(20)"],
];
export const MAX = 18446744073709551615n;
export const DEC = "-12345678901234567890123456789012345.123456789012345678901234567890";

/** A batch of one table's row changes, as capture publishes it, decoded as the DPU decodes it. */
export function batch(
  seq: number,
  commitTime: number,
  pos: number,
  rows: { op: Op; before?: unknown[]; after?: unknown[] }[],
  table = "t",
): ArchivedChange[] {
  const values = (img?: unknown[]) => (img ? img.map((v, i) => toValue(COLUMNS[i]![1], v)) : []);
  const b = ChangeBatch.fromPartial({
    db: "shop",
    table,
    columns: COLUMNS.map(([name, , type]) => ({ name, type, charset: "" })),
    primaryKey: table === "nokey" ? [] : ["id"],
    txnOrdinal: BigInt(seq),
    txnLast: true,
    commitTime: BigInt(commitTime),
    sourceTxns: [
      {
        gtid: `0-1-${seq}`,
        startFile: "mysql-bin.000001",
        startPos: BigInt(pos),
        commitTime: BigInt(commitTime),
        firstRow: 0,
      },
    ],
    rows: rows.map((r, i) => ({
      op: r.op,
      rowIndex: i,
      before: values(r.before),
      after: values(r.after),
      sourceTxn: 0,
    })),
  });
  return decodeBatchChanges(encodeBatch(b)).changes.map((c) => Object.assign(c, { seq }));
}

export const row = (id: bigint, s: string | null) => [
  id,
  DEC,
  "2024-02-29 23:59:59.999999",
  '{"a": [1]}',
  Buffer.from([0, 255, 39]),
  s,
];
