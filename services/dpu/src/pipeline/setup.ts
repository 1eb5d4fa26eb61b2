/**
 * Start-up of the pipeline use: reads the mapped tables' definitions and foreign keys from the
 * source and the target, loads hook modules, compiles the mappings and reports every problem at
 * once (a ConfigError naming each config path). Servers that are away are waited for.
 */
import { type TableRef, tableKey } from "@dfs/codec";
import {
  backoffMs,
  ConfigError,
  ErrorCode,
  errorMessage,
  type Logger,
  sleep,
  TransientError,
} from "@dfs/common";
import type { DfsConfig, PipelineConfig } from "@dfs/config";
import { type CompiledPipeline, compileMappings, loadHooks } from "@dfs/mapping";
import { describeTable, foreignKeys, MysqlSession, type TableDescription } from "@dfs/mysql";
import type { TargetTable } from "../sink.js";
import { PipelineWriter } from "./writer.js";

/** The pipeline writer of a config with a `pipeline` section (null without one: the sync use). */
export async function openPipeline(
  cfg: DfsConfig,
  o: { log: Logger; signal: AbortSignal; baseDir?: string },
): Promise<PipelineWriter | null> {
  const p = cfg.pipeline;
  if (!p || !cfg.target) return null;
  for (let attempt = 0; ; attempt++) {
    try {
      return await open(cfg, o);
    } catch (err) {
      if (!(err instanceof TransientError) || o.signal.aborted) throw err;
      const wait = backoffMs(attempt, cfg.dpu.retry.initialMs, cfg.dpu.retry.maxMs);
      o.log.warn(
        { err: errorMessage(err), retryInMs: wait },
        "cannot read the schemas for the mappings yet; retrying",
      );
      await sleep(wait, o.signal);
    }
  }
}

/** The mappings compiled against the schemas read from the source and target sessions. */
async function compileFromServers(
  p: PipelineConfig,
  src: MysqlSession,
  tgt: MysqlSession,
  baseDir: string,
): Promise<{ result: ReturnType<typeof compileMappings>; sources: Map<string, TableDescription> }> {
  const parse = (q: string): TableRef => {
    const dot = q.indexOf(".");
    return { db: q.slice(0, dot), table: q.slice(dot + 1) };
  };
  const sourceRefs = new Map<string, TableRef>();
  const targetRefs = new Map<string, TableRef>();
  for (const m of p.mappings) {
    sourceRefs.set(m.source, parse(m.source));
    targetRefs.set(m.target, parse(m.target));
  }
  for (const r of p.relationships)
    for (const end of [r.child, r.parent])
      sourceRefs.set(`${end.db}.${end.table}`, { db: end.db, table: end.table });
  const sources = await describeAll(src, sourceRefs.values());
  const targets = await describeAll(tgt, targetRefs.values());
  const dbs = (refs: Iterable<TableRef>) => [...new Set([...refs].map((r) => r.db))];
  const sourceForeignKeys = await foreignKeys(src, dbs(sourceRefs.values()));
  const targetForeignKeys = await foreignKeys(tgt, dbs(targetRefs.values()));
  const hooks = await loadHooks(
    p.mappings.flatMap((m) => (m.hooks ? [m.hooks] : [])),
    baseDir,
  );
  const result = compileMappings(p, {
    source: (r) => sources.get(tableKey(r)),
    target: (r) => targets.get(tableKey(r)),
    sourceForeignKeys,
    targetForeignKeys,
    hooks,
  });
  return { result, sources };
}

/**
 * Whether the config's mappings compile against the servers' schemas, as the DPU checks them at
 * start-up (for `dfs doctor`): every problem, each as `<config path>: <message>`; [] when they do,
 * or when the config has no pipeline section. Server errors are thrown (classified).
 */
export async function checkMappings(cfg: DfsConfig, o: { baseDir?: string } = {}): Promise<string[]> {
  if (!cfg.pipeline || !cfg.target) return [];
  const src = await MysqlSession.open(cfg.source.endpoint, { role: "source" });
  try {
    const tgt = await MysqlSession.open(cfg.target.endpoint, { role: "target" });
    try {
      const { result } = await compileFromServers(cfg.pipeline, src, tgt, o.baseDir ?? process.cwd());
      return result.ok ? [] : result.problems.map((x) => `${x.path}: ${x.message}`);
    } finally {
      await tgt.close();
    }
  } finally {
    await src.close();
  }
}

/**
 * The config's mappings compiled against the servers' schemas, as the DPU compiles them (for
 * `dfs verify`, which compares through them); null without a pipeline section. A mapping that
 * does not compile is a ConfigError listing every problem.
 */
export async function compiledMappings(
  cfg: DfsConfig,
  o: { baseDir?: string } = {},
): Promise<CompiledPipeline | null> {
  if (!cfg.pipeline || !cfg.target) return null;
  const src = await MysqlSession.open(cfg.source.endpoint, { role: "source" });
  try {
    const tgt = await MysqlSession.open(cfg.target.endpoint, { role: "target" });
    try {
      const { result } = await compileFromServers(cfg.pipeline, src, tgt, o.baseDir ?? process.cwd());
      if (!result.ok)
        throw new ConfigError(
          ErrorCode.CONFIG_INVALID,
          result.problems.map((x) => `${x.path}: ${x.message}`),
        );
      return result.pipeline;
    } finally {
      await tgt.close();
    }
  } finally {
    await src.close();
  }
}

async function open(cfg: DfsConfig, o: { log: Logger; baseDir?: string }): Promise<PipelineWriter> {
  const src = await MysqlSession.open(cfg.source.endpoint, { role: "source" });
  const tgt = await MysqlSession.open(cfg.target!.endpoint, { role: "target" }).catch(async (e) => {
    await src.close();
    throw e;
  });
  try {
    const { result: compiled, sources } = await compileFromServers(
      cfg.pipeline!,
      src,
      tgt,
      o.baseDir ?? process.cwd(),
    );
    if (!compiled.ok)
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        compiled.problems.map((x) => `${x.path}: ${x.message}`),
      );
    const version = await tgt.query<{ v: string }[]>("SELECT @@version AS v");
    const returning = supportsReturning(String(version[0]?.v ?? ""));
    const sourceTables = new Map<string, TargetTable>();
    for (const key of compiled.pipeline.bySource.keys()) {
      const d = sources.get(key)!;
      sourceTables.set(key, asTargetTable(d));
    }
    o.log.info(
      {
        mappings: compiled.pipeline.plans.length,
        relationships: compiled.pipeline.relationships.length,
        rewritten: compiled.pipeline.plans.flatMap((pl) =>
          pl.columns.filter((c) => c.parent).map((c) => `${pl.path}.${c.target}`),
        ),
        returning,
      },
      "pipeline mappings compiled",
    );
    return new PipelineWriter({
      pipeline: compiled.pipeline,
      sourceTables,
      metaDatabase: cfg.dpu.metaDatabase,
      orphanWaitMs: cfg.pipeline!.orphanWaitMs,
      statementRows: cfg.dpu.batch.statementRows,
      returning,
    });
  } finally {
    await Promise.all([src.close(), tgt.close()]);
  }
}

async function describeAll(
  s: MysqlSession,
  refs: Iterable<TableRef>,
): Promise<Map<string, TableDescription>> {
  const out = new Map<string, TableDescription>();
  for (const r of refs) {
    const d = await describeTable(s, r);
    if (d) out.set(tableKey(r), d);
  }
  return out;
}

/** MariaDB 10.5 and later return the inserted rows' keys with INSERT ... RETURNING; MySQL does not. */
export function supportsReturning(version: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m || !/mariadb/i.test(version)) return false;
  const major = Number(m[1]);
  return major > 10 || (major === 10 && Number(m[2]) >= 5);
}

/** A source table as the transaction builder sees it: every column, identified by its source key. */
function asTargetTable(d: TableDescription): TargetTable {
  const uniqueKeys = [d.identity.columns, ...d.uniqueKeys.map((k) => k.columns)].filter((k) => k.length > 0);
  return {
    ref: d.ref,
    // Generated columns too: expressions and filters may read them.
    columns: new Set(d.columns.map((c) => c.name)),
    key: d.identity.columns,
    keyKind: d.identity.kind,
    uniqueKeys,
  };
}
