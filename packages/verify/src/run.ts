/**
 * `dfs verify`: which tables, how each is compared (plan.ts), the comparison (compare.ts), the
 * repair (repair.ts) and the results kept for the metrics (results.ts). The wiring function.
 */
import { formatTableRef, type TableRef, tableKey } from "@dfs/codec";
import { ConfigError, ErrorCode, type Logger } from "@dfs/common";
import { captureFilter, type DfsConfig } from "@dfs/config";
import { compiledMappings, openRepairSink, type RepairSink } from "@dfs/dpu";
import { describeTable, MysqlSession, READ_SESSION } from "@dfs/mysql";
import { connectNats } from "@dfs/nats";
import { AppliedWatch } from "./applied.js";
import { type CompareContext, compareTable, type Drift } from "./compare.js";
import { mappingPlan, type Planned, syncPlan } from "./plan.js";
import { repairTable } from "./repair.js";
import { saveResults } from "./results.js";

export interface VerifyOptions {
  /** Source tables to verify; empty: every table the config captures. */
  tables?: readonly TableRef[];
  repair?: boolean;
  /** Rows per chunk (default 10,000). */
  chunkRows?: number;
  /** Rounds to settle a differing key (default 6). */
  rounds?: number;
  /** How long to wait for the DPU to pass one source position (default 60 s). */
  waitMs?: number;
  log: Logger;
  signal?: AbortSignal;
  /** A table starts (its estimated rows), and rows of it were read. */
  onTable?(name: string, estimatedRows: number): void;
  onRows?(rows: number): void;
}

export type TableStatus = "ok" | "drift" | "repaired" | "unsettled" | "missing" | "unverifiable";

export interface TableResult {
  /** "db.t", or "db.t -> db2.t2" through a mapping. */
  name: string;
  source: TableRef;
  target: TableRef | null;
  status: TableStatus;
  /** Why it could not be verified (unverifiable, missing). */
  reason?: string;
  sourceRows: number;
  targetRows: number;
  chunks: number;
  chunksDiffering: number;
  /** Keys found drifted (before a repair). */
  drift: Drift[];
  /** Keys that changed on the source in every round: not compared. */
  unsettled: number;
  /** With --repair: rows written and deleted, and keys still drifted after it. */
  repair?: { upserted: number; deleted: number; remaining: Drift[] };
  seconds: number;
}

export interface VerifyReport {
  tables: TableResult[];
  /** Whether some table has drift left (after a repair, what it could not fix). */
  drift: boolean;
  rows: number;
  seconds: number;
}

/** The source's tables the config captures (base tables only). */
async function capturedTables(cfg: DfsConfig, s: MysqlSession): Promise<TableRef[]> {
  const filter = captureFilter(cfg);
  const rows = await s.query<{ db: string; t: string }[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t FROM information_schema.TABLES
      WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME`,
  );
  return rows.filter((r) => filter.includesTable(r.db, r.t)).map((r) => ({ db: r.db, table: r.t }));
}

/** How each table is compared (or why it cannot be). */
async function planAll(
  cfg: DfsConfig,
  src: MysqlSession,
  tgt: MysqlSession,
  tables: readonly TableRef[],
): Promise<Planned[]> {
  const mappings = await compiledMappings(cfg);
  const out: Planned[] = [];
  for (const ref of tables) {
    const sd = await describeTable(src, ref);
    if (!sd) {
      out.push({ ok: false, source: ref, target: null, reason: "the source table does not exist" });
      continue;
    }
    const mapped = mappings?.bySource.get(tableKey(ref));
    if (mapped && mapped.length > 0) {
      for (const m of mapped) out.push(mappingPlan(m, sd, await describeTable(tgt, m.target)));
      continue;
    }
    const targetRef = { db: cfg.target!.database ?? ref.db, table: ref.table };
    out.push(syncPlan(sd, await describeTable(tgt, targetRef), targetRef));
  }
  return out;
}

function emptyResult(p: Extract<Planned, { ok: false }>): TableResult {
  const missing = p.reason === "missing";
  return {
    name:
      p.target && !sameName(p.source, p.target)
        ? `${formatTableRef(p.source)} -> ${formatTableRef(p.target)}`
        : formatTableRef(p.source),
    source: p.source,
    target: p.target,
    status: missing ? "missing" : "unverifiable",
    reason: missing
      ? `the target table ${p.target ? formatTableRef(p.target) : ""} does not exist (snapshot the table: dfs snapshot ${formatTableRef(p.source)})`
      : p.reason,
    sourceRows: 0,
    targetRows: 0,
    chunks: 0,
    chunksDiffering: 0,
    drift: [],
    unsettled: 0,
    seconds: 0,
  };
}

function sameName(a: TableRef, b: TableRef): boolean {
  return a.db === b.db && a.table === b.table;
}

/** Verifies (and with `repair`, repairs) the tables; writes each result for the metrics. */
export async function runVerify(cfg: DfsConfig, o: VerifyOptions): Promise<VerifyReport> {
  if (!cfg.target)
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      "target: verify compares the source with a target (target.url)",
    ]);
  const started = performance.now();
  const open = (role: "source" | "target", endpoint: typeof cfg.source.endpoint) =>
    MysqlSession.open(endpoint, { role, setup: READ_SESSION });
  const src = await open("source", cfg.source.endpoint);
  const closers: (() => Promise<unknown>)[] = [() => src.close()];
  let sink: RepairSink | null = null;
  try {
    const srcKeys = await open("source", cfg.source.endpoint);
    closers.push(() => srcKeys.close());
    const tgt = await open("target", cfg.target.endpoint);
    closers.push(() => tgt.close());
    const nc = await connectNats({ ...cfg.nats, name: "dfs-verify" });
    closers.push(() => nc.close());
    const watch = new AppliedWatch({
      target: tgt,
      nc,
      sourceId: cfg.source.id,
      metaDatabase: cfg.dpu.metaDatabase,
      waitMs: o.waitMs ?? 60_000,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const ctx: CompareContext = {
      src,
      srcKeys,
      tgt,
      watch,
      chunkRows: o.chunkRows ?? 10_000,
      rounds: o.rounds ?? 6,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onRows ? { progress: o.onRows } : {}),
    };
    const tables = o.tables && o.tables.length > 0 ? o.tables : await capturedTables(cfg, src);
    const results: TableResult[] = [];
    for (const planned of await planAll(cfg, src, tgt, tables)) {
      if (o.signal?.aborted) break;
      if (!planned.ok) {
        results.push(emptyResult(planned));
        continue;
      }
      const plan = planned.plan;
      const t0 = performance.now();
      const sd = await describeTable(src, plan.source.ref);
      o.onTable?.(plan.name, sd?.estimatedRows ?? 0);
      const c = await compareTable(plan, ctx);
      const r: TableResult = {
        name: plan.name,
        source: plan.source.ref,
        target: plan.target.ref,
        status: c.drift.length > 0 ? "drift" : c.unsettled > 0 ? "unsettled" : "ok",
        sourceRows: c.sourceRows,
        targetRows: c.targetRows,
        chunks: c.chunks,
        chunksDiffering: c.chunksDiffering,
        drift: c.drift,
        unsettled: c.unsettled,
        seconds: 0,
      };
      if (o.repair && c.driftKeys.size > 0) {
        sink ??= await openRepairSink(cfg, o.log);
        r.repair = await repairTable(plan, ctx, sink, c.driftKeys);
        if (r.repair.remaining.length === 0) r.status = "repaired";
        o.log.info(
          {
            table: plan.name,
            upserted: r.repair.upserted,
            deleted: r.repair.deleted,
            left: r.repair.remaining.length,
          },
          "repaired",
        );
      }
      r.seconds = (performance.now() - t0) / 1000;
      results.push(r);
    }
    await saveResults(tgt, cfg.dpu.metaDatabase, cfg.source.id, results);
    return {
      tables: results,
      drift: results.some((r) => r.status === "drift" || r.status === "missing"),
      rows: results.reduce((n, r) => n + r.sourceRows, 0),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await sink?.close();
    for (const close of closers.reverse()) await close().catch(() => {});
  }
}
