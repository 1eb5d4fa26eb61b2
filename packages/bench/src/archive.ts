/**
 * `dfs bench archive`: how fast the backup use's archive takes row changes. Real envelope batches
 * (a table of the types that must round-trip: BIGINT UNSIGNED, DECIMAL(65,30), DATETIME(6),
 * VARCHAR, JSON, BLOB) are encoded and decoded with the DPU's decoder first (not timed); then they
 * are written as the archive sink writes them: groups of 2,500 row changes (dpu.batch.maxRows),
 * each one SQLite transaction with its checkpoint, into a fresh archive folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ArchivedChange, ArchiveReader, ArchiveWriter, archiveStats } from "@dfs/archive";
import { decodeBatchChanges, encodeBatch, toValue, ValueKind } from "@dfs/codec";
import { ChangeBatch, Op } from "@dfs/proto";

export interface ArchiveBenchResult {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  /** CPU seconds the writing took (user + system): on a busy machine, wall time is mostly waiting. */
  cpuSeconds: number;
  files: number;
  bytes: number;
  /** Rows read back afterwards (must equal `rows`). */
  rowsRead: number;
}

const COLUMNS: [string, ValueKind, string][] = [
  ["id", ValueKind.Uint, "bigint(20) unsigned"],
  ["amount", ValueKind.Decimal, "decimal(65,30)"],
  ["at", ValueKind.Temporal, "datetime(6)"],
  ["name", ValueKind.Text, "varchar(100)"],
  ["doc", ValueKind.Json, "json"],
  ["blob", ValueKind.Bytes, "blob"],
];
const GROUP_ROWS = 2_500;
const BATCH_ROWS = 500;

function batches(rows: number): ArchivedChange[][] {
  const groups: ArchivedChange[][] = [];
  let group: ArchivedChange[] = [];
  for (let first = 0, seq = 1; first < rows; first += BATCH_ROWS, seq++) {
    const n = Math.min(BATCH_ROWS, rows - first);
    const image = (id: number, v: number) =>
      [
        BigInt("18446744073709551615") - BigInt(id),
        `${v}.123456789012345678901234567890`,
        "2024-02-29 23:59:59.999999",
        `customer ${id}`,
        `{"id": ${id}, "tags": ["a", "b"]}`,
        Buffer.from([id & 255, 0, 255, v & 255]),
      ].map((x, i) => toValue(COLUMNS[i]![1], x));
    const b = ChangeBatch.fromPartial({
      db: "bench",
      table: "archive",
      columns: COLUMNS.map(([name, , type]) => ({ name, type, charset: "" })),
      primaryKey: ["id"],
      txnOrdinal: BigInt(seq),
      txnLast: true,
      commitTime: BigInt(1_700_000_000 + seq),
      sourceTxns: Array.from({ length: n / 10 }, (_, t) => ({
        gtid: `0-1-${seq * 100 + t}`,
        startFile: "mysql-bin.000001",
        startPos: BigInt(seq * 100_000 + t * 500),
        commitTime: BigInt(1_700_000_000 + seq),
        firstRow: t * 10,
      })),
      rows: Array.from({ length: n }, (_, r) => {
        const id = first + r;
        const op = r % 10 < 6 ? Op.OP_CREATE : r % 10 < 9 ? Op.OP_UPDATE : Op.OP_DELETE;
        return {
          op,
          rowIndex: r,
          sourceTxn: Math.floor(r / 10),
          before: op === Op.OP_CREATE ? [] : image(id, 1),
          after: op === Op.OP_DELETE ? [] : image(id, 2),
        };
      }),
    });
    for (const c of decodeBatchChanges(encodeBatch(b)).changes) group.push(Object.assign(c, { seq }));
    if (group.length >= GROUP_ROWS) {
      groups.push(group);
      group = [];
    }
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

export async function benchArchive(rows: number, log: (s: string) => void): Promise<ArchiveBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "dfs-bench-archive-"));
  try {
    log(`encoding and decoding ${rows} row changes (not timed)`);
    const groups = batches(rows);
    const w = ArchiveWriter.open({
      dir,
      period: "day",
      maxFileBytes: 1 << 30,
      retention: {},
      consumer: "bench",
    });
    log(`writing ${groups.length} groups into ${dir}`);
    const started = performance.now();
    const cpu = process.cpuUsage();
    for (const g of groups) w.write(g, { lowWater: g[g.length - 1]!.seq });
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    w.close();
    const stats = archiveStats(new ArchiveReader(dir));
    const rowsRead = stats.files.reduce((n, f) => n + f.changes, 0);
    if (rowsRead !== rows) throw new Error(`the archive holds ${rowsRead} row changes, expected ${rows}`);
    return {
      rows,
      seconds,
      rowsPerSecond: rows / seconds,
      cpuSeconds,
      files: stats.files.length,
      bytes: stats.files.reduce((n, f) => n + f.bytes, 0),
      rowsRead,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
