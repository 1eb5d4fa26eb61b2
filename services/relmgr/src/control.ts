import { formatTableRef } from "@dfs/codec";
import type { DfsConfig } from "@dfs/config";
import type { ControlHandlers } from "@dfs/control";
import { listDeadLetters } from "@dfs/dpu";
import { encodeKey } from "@dfs/mapping";
import { healthOf } from "@dfs/metrics";
import { MysqlSession, quoteId } from "@dfs/mysql";
import type { NatsConnection } from "@dfs/nats";
import type { RelmgrService } from "./service.js";

/** Dead letters whose reason is a missing parent (the pipeline writer's wording). */
const ORPHAN_REASON = /which has no row in .* \(not mapped after/;

/** What relmgr answers on its control plane. */
export function relmgrControl(svc: RelmgrService, cfg: DfsConfig, nc: NatsConnection): ControlHandlers {
  const sourceId = cfg.source.id;
  const status = () => {
    const s = svc.status();
    return {
      service: "relmgr",
      state: s.state,
      sourceId,
      position: "",
      gtid: "",
      lagSeconds: 0,
      backlog: 0n,
      backlogBytes: 0n,
      changesTotal: 0n,
      lastError: s.lastError,
      sourcePosition: undefined,
      streamSeq: 0n,
      details: {
        tables: String(s.tables),
        relationships: String(s.relationships),
        groups: String(s.groups),
        planRevision: String(s.planRevision),
        replans: String(s.replans),
      },
    };
  };
  return {
    health: () => healthOf(svc.status()),
    status,
    graph: () => {
      const g = svc.graph();
      return {
        tables: g.tables.map(formatTableRef),
        relationships: g.relationships.map((r) => ({
          child: formatTableRef(r.child),
          columns: r.columns,
          parent: formatTableRef(r.parent),
          parentColumns: r.parentColumns,
          declared: r.declared,
        })),
      };
    },
    groups: () => {
      const { plan, revision } = svc.plan();
      return { groups: plan.groups, revision: BigInt(revision) };
    },
    lookupKey: async (req) => {
      if (!cfg.target) return { found: false, targetKey: "" };
      const s = await MysqlSession.open(cfg.target.endpoint, { role: "target" });
      try {
        const rows = await s.query<{ v: Buffer }[]>(
          `SELECT target_key AS v FROM ${quoteId(cfg.dpu.metaDatabase)}.\`_dfs_keymap\` WHERE target_table = ? AND source_table = ? AND source_key = ?`,
          [req.targetTable, req.sourceTable, encodeKey(req.sourceKey)],
        );
        const v = rows[0]?.v;
        return v === undefined ? { found: false, targetKey: "" } : { found: true, targetKey: v.toString() };
      } finally {
        await s.close();
      }
    },
    activity: (req) => svc.activity.query(req),
    orphans: async (req) => {
      const entries = await listDeadLetters(nc, sourceId, req.limit > 0 ? req.limit * 10 : 1000);
      const orphans = entries
        .filter((e) => ORPHAN_REASON.test(e.error))
        .slice(0, req.limit > 0 ? req.limit : 100)
        .map((e) => ({
          dlqSeq: BigInt(e.seq),
          table: `${e.db}.${e.table}`,
          reason: e.error,
          timeMs: BigInt(e.timeMs),
        }));
      return { orphans };
    },
  };
}
