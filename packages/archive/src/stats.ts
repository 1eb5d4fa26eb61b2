import type { ArchiveFile } from "./format.js";
import type { ArchiveReader } from "./reader.js";

/** One file of the archive, summarised. */
export interface FileStats {
  file: string;
  bytes: number;
  transactions: number;
  changes: number;
  ddl: number;
  /** Commit times (seconds since the epoch) of its first and last transaction; null when empty. */
  firstCommit: number | null;
  lastCommit: number | null;
  /** Start positions ("file:pos") of its first and last transaction. */
  firstPosition: string;
  lastPosition: string;
  /** Stream sequences of its first and last message. */
  firstSeq: number | null;
  lastSeq: number | null;
  /** The DPU's low-water mark recorded in it, if any. */
  checkpoint: number | null;
}

/** Row changes of one table, by op. */
export interface TableStats {
  db: string;
  table: string;
  inserts: number;
  updates: number;
  deletes: number;
  reads: number;
}

export interface ArchiveStats {
  dir: string;
  files: FileStats[];
  tables: TableStats[];
}

/** Files, rows per table and op, and the time, position and stream ranges of each file. */
export function archiveStats(reader: ArchiveReader): ArchiveStats {
  const files: FileStats[] = [];
  const tables = new Map<string, TableStats>();
  const all = [
    ...reader.eachFile((db, f: ArchiveFile) => {
      const one = <T>(sql: string) => db.prepare(sql).get() as T;
      const t = one<{
        n: number;
        ddl: number;
        t0: number | null;
        t1: number | null;
        s0: number | null;
        s1: number | null;
      }>(
        "SELECT COUNT(*) AS n, IFNULL(SUM(kind = 1), 0) AS ddl, MIN(commit_time) AS t0, MAX(commit_time) AS t1, MIN(seq) AS s0, MAX(seq) AS s1 FROM txns",
      );
      const pos = (order: string) =>
        one<{ p: string } | undefined>(
          `SELECT file || ':' || pos AS p FROM txns WHERE sortable <> '' ORDER BY sortable ${order} LIMIT 1`,
        )?.p ?? "";
      const cp = one<{ w: number | null }>("SELECT MAX(low_water) AS w FROM checkpoint");
      const ops = db
        .prepare(
          "SELECT s.db AS db, s.tbl AS tbl, c.op AS op, COUNT(*) AS n FROM changes c JOIN schemas s ON s.id = c.schema GROUP BY s.db, s.tbl, c.op",
        )
        .all() as { db: string; tbl: string; op: string; n: number }[];
      const changes = ops.reduce((n, o) => n + o.n, 0);
      return [
        {
          stats: {
            file: f.name,
            bytes: f.bytes,
            transactions: t.n - t.ddl,
            changes,
            ddl: t.ddl,
            firstCommit: t.t0,
            lastCommit: t.t1,
            firstPosition: pos("ASC"),
            lastPosition: pos("DESC"),
            firstSeq: t.s0,
            lastSeq: t.s1,
            checkpoint: cp.w,
          } satisfies FileStats,
          ops,
        },
      ];
    }),
  ];
  for (const { stats, ops } of all) {
    files.push(stats);
    for (const o of ops) {
      const key = `${o.db}\u0000${o.tbl}`;
      let s = tables.get(key);
      if (!s) {
        s = { db: o.db, table: o.tbl, inserts: 0, updates: 0, deletes: 0, reads: 0 };
        tables.set(key, s);
      }
      if (o.op === "c") s.inserts += o.n;
      else if (o.op === "u") s.updates += o.n;
      else if (o.op === "d") s.deletes += o.n;
      else s.reads += o.n;
    }
  }
  const sorted = [...tables.values()].sort((a, b) => (a.db + a.table < b.db + b.table ? -1 : 1));
  return { dir: reader.dir, files, tables: sorted };
}
