import {
  type ArchiveEntry,
  type ArchiveFilter,
  ArchiveReader,
  archiveStats,
  FLASHBACK_SESSION,
  flashback,
  keyText,
  type LaterChange,
  laterChanges,
  parseKeyArg,
  txnComment,
} from "@dfs/archive";
import { formatTableRef, Position, parseTableRef, type Row, type SqlValue, tableKey } from "@dfs/codec";
import { createLogger, DataError, ErrorCode } from "@dfs/common";
import { type DfsConfig, loadConfig } from "@dfs/config";
import { APPLY_SESSION, describeTable, MysqlSession, parseMysqlUrl, runScript } from "@dfs/mysql";
import { ExitCode, UsageError } from "../exit.js";

/** Options every `dfs archive` command takes: where the archive is, and which part of it. */
export interface ArchiveArgs {
  config?: string;
  dir?: string;
  table?: string[];
  key?: string;
  since?: string;
  until?: string;
  fromPos?: string;
  toPos?: string;
  limit?: number;
  json?: boolean;
}

function configOf(o: ArchiveArgs, needed: boolean): DfsConfig | null {
  if (!o.config && !needed) return null;
  if (!o.config)
    throw new UsageError("-c FILE is required (the config names the source and the DPU's settings)");
  return loadConfig(o.config);
}

function dirOf(o: ArchiveArgs, cfg: DfsConfig | null): string {
  const dir = o.dir ?? cfg?.archive?.dir;
  if (!dir) throw new UsageError("where is the archive? give -c FILE with an archive section, or --dir DIR");
  return dir;
}

/** A time given as ISO 8601 (UTC unless it says otherwise) or seconds since the epoch. */
function seconds(text: string, flag: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const t = /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`;
  const ms = Date.parse(t.replace(" ", "T"));
  if (Number.isNaN(ms)) throw new UsageError(`${flag}: not a time: "${text}" (e.g. 2024-06-01T12:00:00Z)`);
  return Math.floor(ms / 1000);
}

function position(text: string, flag: string): Position {
  const p = Position.parse(text);
  if (!p.hasFile)
    throw new UsageError(`${flag}: give a binlog position (file:pos), e.g. mysql-bin.000042:1234`);
  return p;
}

/** The filter the options describe. */
export function filterOf(o: ArchiveArgs): ArchiveFilter {
  const f: ArchiveFilter = {};
  if (o.table && o.table.length > 0) f.tables = o.table.map((t) => parseTableRef(t));
  if (o.key !== undefined) f.key = parseKeyArg(o.key);
  if (o.since) f.since = seconds(o.since, "--since");
  if (o.until) f.until = seconds(o.until, "--until");
  if (o.fromPos) f.fromPos = position(o.fromPos, "--from-pos");
  if (o.toPos) f.toPos = position(o.toPos, "--to-pos");
  if (o.limit !== undefined) f.limit = o.limit;
  return f;
}

/** `dfs archive stats`: files, rows per table, ranges of time, position and stream. */
export async function runArchiveStats(o: ArchiveArgs): Promise<number> {
  const cfg = configOf(o, false);
  const stats = archiveStats(new ArchiveReader(dirOf(o, cfg)));
  if (o.json) {
    console.log(JSON.stringify(stats, null, 2));
    return ExitCode.OK;
  }
  const time = (s: number | null) =>
    s === null ? "-" : new Date(s * 1000).toISOString().replace(".000Z", "Z");
  console.log(`archive ${stats.dir}: ${stats.files.length} file(s)`);
  console.log(
    "FILE\tBYTES\tTXNS\tCHANGES\tDDL\tFIRST COMMIT\tLAST COMMIT\tFIRST POSITION\tLAST POSITION\tSTREAM SEQS\tCHECKPOINT",
  );
  for (const f of stats.files)
    console.log(
      [
        f.file,
        f.bytes,
        f.transactions,
        f.changes,
        f.ddl,
        time(f.firstCommit),
        time(f.lastCommit),
        f.firstPosition || "-",
        f.lastPosition || "-",
        f.firstSeq === null ? "-" : `${f.firstSeq}..${f.lastSeq}`,
        f.checkpoint ?? "-",
      ].join("\t"),
    );
  console.log("\nTABLE\tINSERTS\tUPDATES\tDELETES\tSNAPSHOT READS");
  for (const t of stats.tables)
    console.log(`${formatTableRef(t)}\t${t.inserts}\t${t.updates}\t${t.deletes}\t${t.reads}`);
  return ExitCode.OK;
}

/** A value in JSON without loss: integers beyond 2^53 and DECIMAL as strings, bytes as {hex}. */
function jsonValue(v: SqlValue | undefined): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array)
    return { hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
  return v;
}

function jsonRow(r: Row | null): Record<string, unknown> | null {
  if (!r) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) out[k] = jsonValue(v);
  return out;
}

/** One entry as a JSON object (one per line with --json). */
export function entryJson(e: ArchiveEntry): Record<string, unknown> {
  const where = {
    file: e.txn.archiveFile,
    seq: e.txn.seq,
    gtid: e.txn.gtid,
    position: e.txn.position.toString(),
    commitTime: new Date(e.txn.commitTime * 1000).toISOString(),
  };
  if (e.kind === "ddl") return { ...where, kind: "ddl", db: e.db, statement: e.statement };
  const c = e.change;
  const key = keyText(c.batch.primaryKey, c.op === "d" ? c.before : c.after);
  return {
    ...where,
    kind: "change",
    table: formatTableRef(c.ref),
    op: c.op,
    key: key === null ? null : JSON.parse(key),
    before: jsonRow(c.before),
    after: jsonRow(c.after),
  };
}

/** `dfs archive query`: the changes of a table, key, time or position range. */
export async function runArchiveQuery(o: ArchiveArgs): Promise<number> {
  const cfg = configOf(o, false);
  const reader = new ArchiveReader(dirOf(o, cfg));
  const filter = filterOf({ ...o, limit: o.limit ?? 1000 });
  let n = 0;
  if (!o.json) console.log("COMMIT TIME\tPOSITION\tGTID\tTABLE\tOP\tKEY\tBEFORE\tAFTER");
  for (const e of reader.entries(filter)) {
    const j = entryJson(e);
    if (o.json) console.log(JSON.stringify(j));
    else if (e.kind === "ddl")
      console.log(`${j.commitTime}\t${j.position}\t${j.gtid}\t${e.db}\tDDL\t\t${e.statement}\t`);
    else
      console.log(
        [
          j.commitTime,
          j.position,
          j.gtid,
          j.table,
          j.op,
          JSON.stringify(j.key),
          JSON.stringify(j.before),
          JSON.stringify(j.after),
        ].join("\t"),
      );
    if (e.kind === "change") n++;
  }
  console.error(`${n} change(s)${n === filter.limit ? ` (the first ${n}: raise --limit for more)` : ""}`);
  return ExitCode.OK;
}

/** `dfs archive replay`: a range into a database through the MySQL sink's apply path. */
export async function runArchiveReplay(
  o: ArchiveArgs & { url?: string; database?: string },
): Promise<number> {
  const cfg = configOf(o, true)!;
  if (!o.url)
    throw new UsageError("--url is required: the database to replay into (mysql://user:pass@host:port)");
  const { replayArchive } = await import("@dfs/dpu");
  const log = createLogger({ level: cfg.log.level, name: "archive-replay", destination: 2 });
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  const started = performance.now();
  const r = await replayArchive(cfg, {
    dir: dirOf(o, cfg),
    filter: filterOf(o),
    target: parseMysqlUrl(o.url),
    ...(o.database ? { database: o.database } : {}),
    log,
    signal: stop.signal,
  });
  const s = ((performance.now() - started) / 1000).toFixed(1);
  console.error(
    `replayed ${r.changes} change(s) of ${r.transactions} transaction(s) and ${r.ddl} DDL in ${s} s`,
  );
  return ExitCode.OK;
}

const OPS: Record<string, string> = { c: "insert", u: "update", d: "delete", r: "snapshot read" };

/** Later changes, one per row, at most 20 (and how many more). */
export function laterList(later: readonly LaterChange[]): string {
  const shown = later.slice(0, 20).map((l) => {
    const when = new Date(l.commitTime * 1000).toISOString().replace(".000Z", "Z");
    return `${l.table} ${l.row} (${OPS[l.op] ?? l.op} at ${l.position || "?"}, ${when})`;
  });
  return `${shown.join("; ")}${later.length > 20 ? `; and ${later.length - 20} more` : ""}`;
}

/**
 * `dfs archive flashback`: the SQL that undoes a range, newest change first; printed, or applied
 * in one transaction with --apply (to --url, or --to-source: the config's source). A range that is
 * not the archive's tail is refused when later changes touched the same rows (undoing it would
 * overwrite them), naming those rows, unless --force.
 */
export async function runArchiveFlashback(
  o: ArchiveArgs & { apply?: boolean; url?: string; toSource?: boolean; force?: boolean },
): Promise<number> {
  const cfg = configOf(o, o.apply === true && o.toSource === true);
  const filter = filterOf(o);
  if (filter.since === undefined && filter.until === undefined && !filter.fromPos && !filter.toPos)
    throw new UsageError("give the range to undo: --since/--until or --from-pos/--to-pos");
  const reader = new ArchiveReader(dirOf(o, cfg));
  const entries = [...reader.entries(filter)];
  for (const e of entries)
    if (e.kind === "ddl")
      console.error(
        `warning: DDL at ${e.txn.position} is not undone (no exact inverse): ${e.statement.slice(0, 200)}`,
      );
  const later = laterChanges(reader, entries);
  if (later.length > 0 && !o.force)
    throw new DataError(
      ErrorCode.DATA_INVALID,
      `flashback refused: ${later.length} row(s) this range changes were changed again after it, and undoing the range would overwrite those later changes (or fail on them): ${laterList(later)}. Undo a range that runs to the archive's end (leave out --to-pos/--until), or give --force to undo it anyway`,
    );
  if (later.length > 0)
    console.error(
      `warning (--force): ${later.length} row(s) were changed again after the range; undoing it overwrites (or misses) those changes: ${laterList(later)}`,
    );
  if (o.apply) return applyFlashback(o, cfg, entries);
  const fb = flashback(entries);
  console.log(
    `-- dfs archive flashback: undoes ${fb.changes} change(s) of ${fb.transactions} transaction(s), newest first`,
  );
  if (later.length > 0)
    console.log(
      `-- --force: ${later.length} row(s) changed again after the range are overwritten: ${laterList(later).replace(/[\r\n]+/g, " ")}`,
    );
  for (const s of FLASHBACK_SESSION) console.log(`${s};`);
  console.log("BEGIN;");
  for (const d of fb.ddl)
    console.log(`-- not undone: DDL at ${d.txn.position}: ${d.statement.replace(/\s+/g, " ").slice(0, 200)}`);
  let txn = "";
  for (const st of fb.statements) {
    const t = `${st.txn.archiveFile}:${st.txn.id}`;
    if (t !== txn) console.log(txnComment(st.txn));
    txn = t;
    console.log(`${st.sql};`);
  }
  console.log("COMMIT;");
  return ExitCode.OK;
}

/** Applies the undo in one transaction; generated columns (the database computes them) are left out. */
async function applyFlashback(
  o: { url?: string; toSource?: boolean },
  cfg: DfsConfig | null,
  entries: ArchiveEntry[],
): Promise<number> {
  if (entries.some((e) => e.kind === "ddl"))
    throw new UsageError(
      "the range holds DDL, which flashback cannot undo: narrow the range, or print the SQL and edit it",
    );
  if (!o.url && !o.toSource) throw new UsageError("--apply needs --url URL or --to-source");
  const endpoint = o.url ? parseMysqlUrl(o.url) : cfg!.source.endpoint;
  const s = await MysqlSession.open(endpoint, {
    role: "target",
    setup: APPLY_SESSION,
    multipleStatements: true,
  });
  try {
    const writable = new Map<string, Set<string> | null>();
    for (const e of entries) {
      if (e.kind !== "change" || writable.has(tableKey(e.change.ref))) continue;
      const d = await describeTable(s, e.change.ref);
      const columns = d ? new Set(d.columns.filter((c) => !c.generated).map((c) => c.name)) : null;
      writable.set(tableKey(e.change.ref), columns);
    }
    const fb = flashback(entries, (c) => writable.get(tableKey(c.ref)) ?? null);
    await s.query("BEGIN");
    try {
      await runScript(s, fb.statements, 4 * 1024 * 1024);
      await s.query("COMMIT");
    } catch (err) {
      await s.query("ROLLBACK").catch(() => {});
      throw err;
    }
    console.error(`undid ${fb.changes} change(s) of ${fb.transactions} transaction(s) in one transaction`);
    return ExitCode.OK;
  } finally {
    await s.close();
  }
}
