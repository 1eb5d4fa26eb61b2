import { ActivityLog } from "@dfs/control";
import {
  createRegistry,
  type DpuMetrics,
  dpuMetrics,
  type Registry,
  type ServiceMetrics,
  serviceMetrics,
  setState,
} from "@dfs/metrics";
import type { StageStatus } from "@dfs/proto";
import type { DpuStatus } from "./runtime.js";
import type { Change, Rejected, SinkEvents } from "./sink.js";

/**
 * Collapses the repeated row groups of a multi-row statement ("(?, ?), (?, ?), ..." becomes
 * "(?, ?) ×2") and shortens it: the monitor shows statements, never values.
 */
export function summarizeSql(sql: string, max = 400): string {
  const collapsed = sql.replace(/(\((?:\?|, |\s)+\))(?:,\s*\1)+/g, (all, group: string) => {
    const n = all.split(group).length - 1;
    return `${group} ×${n}`;
  });
  return collapsed.length > max ? `${collapsed.slice(0, max)}…` : collapsed;
}

/** Metrics, the recent-activity log and the control plane's StageStatus of one DPU. */
export class DpuTelemetry implements SinkEvents {
  readonly registry: Registry;
  readonly service: ServiceMetrics;
  readonly m: DpuMetrics;
  readonly activity = new ActivityLog();
  /** Source time of the last heartbeat applied (ms); 0 until one is. */
  heartbeatSourceMs = 0;

  constructor(sourceId: string, group: string) {
    this.registry = createRegistry("dpu", sourceId);
    this.registry.setDefaultLabels({ service: "dpu", source: sourceId, group });
    this.service = serviceMetrics(this.registry);
    this.m = dpuMetrics(this.registry);
    setState(this.service, "starting");
  }

  statement(st: { sql: string; text?: string; changes: readonly Change[] }, ms: number): void {
    const t = st.changes[0]?.target.ref;
    this.activity.add({
      kind: "dml",
      db: t?.db ?? "",
      table: t?.table ?? "",
      op: /^\s*(\w+)/.exec(st.text ?? st.sql)?.[1]?.toUpperCase() ?? "",
      text: summarizeSql(st.text ?? st.sql),
      rows: st.changes.length,
      durationMs: Math.round(ms * 100) / 100,
    });
  }

  committed(changes: readonly Change[], ms: number): void {
    this.m.batchRows.observe(changes.length);
    this.m.applySeconds.observe(ms / 1000);
    // Counted per table and op, one increment each per group (never per row).
    const counts = new Map<Change["target"], Map<string, number>>();
    for (const c of changes) {
      let byOp = counts.get(c.target);
      if (!byOp) {
        byOp = new Map();
        counts.set(c.target, byOp);
      }
      byOp.set(c.op, (byOp.get(c.op) ?? 0) + 1);
    }
    for (const [target, byOp] of counts)
      for (const [op, n] of byOp) this.m.applied.inc({ db: target.ref.db, table: target.ref.table, op }, n);
  }

  rejected(rejected: readonly Rejected[]): void {
    for (const r of rejected) {
      const t = r.change.target.ref;
      this.m.deadLettered.inc({ db: t.db, table: t.table });
      this.service.errors.inc({ kind: "data" });
      this.activity.add({
        kind: "error",
        db: t.db,
        table: t.table,
        op: r.change.op,
        text: `dead-lettered: ${r.error}`,
      });
    }
  }

  ddl(db: string, statement: string, ms: number): void {
    this.m.ddl.inc();
    this.activity.add({
      kind: "ddl",
      db,
      text: statement.slice(0, 400),
      durationMs: Math.round(ms * 100) / 100,
    });
  }

  retry(what: string, err: unknown): void {
    this.m.retries.inc();
    this.service.errors.inc({ kind: "target" });
    this.activity.add({
      kind: "error",
      text: `${what}: ${(err as Error).message ?? String(err)} (retrying)`,
    });
  }

  /** Lag from the last heartbeat applied: it left the source at heartbeatSourceMs. */
  lagSeconds(now = Date.now()): number {
    return this.heartbeatSourceMs > 0 ? Math.max(0, (now - this.heartbeatSourceMs) / 1000) : 0;
  }

  update(s: DpuStatus): void {
    setState(this.service, s.state);
    this.m.lag.set(s.lagSeconds);
    this.m.appliedSeq.set(s.appliedSeq);
    this.m.pending.set(s.pending);
    this.m.oldestPendingAge.set(s.oldestPendingAgeSeconds);
    this.m.streamMaxAge.set(s.streamMaxAgeSeconds);
  }
}

export function stageStatus(s: DpuStatus, sourceId: string, stream: string): StageStatus {
  return {
    service: "dpu",
    state: s.state,
    sourceId,
    position: s.position.toString(),
    gtid: s.position.gtid,
    lagSeconds: s.lagSeconds,
    backlog: BigInt(s.pending),
    backlogBytes: 0n,
    changesTotal: BigInt(s.rowsApplied),
    lastError: s.lastError,
    sourcePosition: s.position.toWire(""),
    streamSeq: BigInt(s.appliedSeq),
    details: {
      stream,
      streamSeq: String(s.appliedSeq),
      ...(s.waitingFor ? { waitingFor: s.waitingFor } : {}),
      consumer: s.consumer,
      deadLettered: String(s.deadLettered),
      retries: String(s.retries),
      queued: String(s.queued),
    },
  };
}
