import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/**
 * Every metric the services export, in one place, so that docs/metrics.md and the Grafana
 * dashboards can be checked against it. Names start with `dfs_`; every sample also carries the
 * registry's default labels `service` and `source`.
 */

/** Latency buckets (seconds) from 1 ms to 1 min: apply latency, end-to-end latency. */
const LATENCY = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Rows per applied batch. */
const BATCH_ROWS = [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000];

/** The metrics every service has: its state and, for the pipeline, how far behind the source it is. */
export function serviceMetrics(r: Registry) {
  return {
    /** 1 for the service's current state, 0 for the others. */
    state: new Gauge({
      name: "dfs_service_state",
      help: "1 for the service's current state (starting, running, paused, error, stopped), 0 for the others",
      labelNames: ["state"],
      registers: [r],
    }),
    errors: new Counter({
      name: "dfs_errors_total",
      help: "Errors by kind (source, broker, target, data, fatal); transient ones are retried",
      labelNames: ["kind"],
      registers: [r],
    }),
  };
}

export function captureMetrics(r: Registry) {
  return {
    captured: new Counter({
      name: "dfs_capture_changes_total",
      help: "Row changes read from the binlog and journaled, by table and op (c, u, d)",
      labelNames: ["db", "table", "op"],
      registers: [r],
    }),
    published: new Counter({
      name: "dfs_capture_published_changes_total",
      help: "Row changes acknowledged by JetStream, by table and op",
      labelNames: ["db", "table", "op"],
      registers: [r],
    }),
    transactions: new Counter({
      name: "dfs_capture_transactions_total",
      help: "Source transactions read from the binlog",
      registers: [r],
    }),
    ddl: new Counter({
      name: "dfs_capture_ddl_total",
      help: "DDL statements journaled (schema history)",
      registers: [r],
    }),
    binlogFile: new Gauge({
      name: "dfs_capture_binlog_file_number",
      help: "Numeric suffix of the binlog file capture is reading (mysql-bin.000042 -> 42)",
      registers: [r],
    }),
    binlogPosition: new Gauge({
      name: "dfs_capture_binlog_position_bytes",
      help: "Byte offset in that binlog file after the last event read",
      registers: [r],
    }),
    lag: new Gauge({
      name: "dfs_capture_lag_seconds",
      help: "Seconds behind the source: now minus the time up to which capture has read the binlog",
      registers: [r],
    }),
    backlogEntries: new Gauge({
      name: "dfs_capture_journal_backlog_messages",
      help: "Journal entries not yet acknowledged by JetStream",
      registers: [r],
    }),
    backlogBytes: new Gauge({
      name: "dfs_capture_journal_backlog_bytes",
      help: "Bytes of journal entries not yet acknowledged by JetStream",
      registers: [r],
    }),
    journalLimit: new Gauge({
      name: "dfs_capture_journal_limit_bytes",
      help: "capture.journal.maxBytes: backlog bytes at which the binlog reader pauses until publishing catches up",
      registers: [r],
    }),
    binlogOldest: new Gauge({
      name: "dfs_capture_source_binlog_oldest_file_number",
      help: "Numeric suffix of the oldest binlog file the source still has (SHOW BINARY LOGS)",
      registers: [r],
    }),
    binlogNewest: new Gauge({
      name: "dfs_capture_source_binlog_newest_file_number",
      help: "Numeric suffix of the newest binlog file of the source (the one it writes now)",
      registers: [r],
    }),
    binlogExpire: new Gauge({
      name: "dfs_capture_source_binlog_expire_seconds",
      help: "Age at which the source purges binlog files by itself (binlog_expire_logs_seconds or expire_logs_days); 0 = never",
      registers: [r],
    }),
    inFlight: new Gauge({
      name: "dfs_capture_publish_in_flight",
      help: "Publishes sent to JetStream and not yet acknowledged",
      registers: [r],
    }),
    readerPaused: new Gauge({
      name: "dfs_capture_reader_paused",
      help: "1 while the binlog reader is paused (by a request or because the journal is full)",
      registers: [r],
    }),
    reconnects: new Counter({
      name: "dfs_capture_reconnects_total",
      help: "Times the binlog reader was restarted from the checkpoint after an error",
      registers: [r],
    }),
  };
}

export function dpuMetrics(r: Registry) {
  return {
    applied: new Counter({
      name: "dfs_dpu_changes_applied_total",
      help: "Row changes committed to the target, by target table and op (c, u, d)",
      labelNames: ["db", "table", "op"],
      registers: [r],
    }),
    transactions: new Counter({
      name: "dfs_dpu_transactions_total",
      help: "Source transactions committed to the target",
      registers: [r],
    }),
    groups: new Counter({
      name: "dfs_dpu_groups_total",
      help: "Groups of source transactions applied, by the number of target connections each was applied on in parallel",
      labelNames: ["connections"],
      registers: [r],
    }),
    ddl: new Counter({
      name: "dfs_dpu_ddl_total",
      help: "DDL statements handled (applied, or skipped as already in effect)",
      registers: [r],
    }),
    batchRows: new Histogram({
      name: "dfs_dpu_apply_batch_rows",
      help: "Row changes per target transaction",
      buckets: BATCH_ROWS,
      registers: [r],
    }),
    applySeconds: new Histogram({
      name: "dfs_dpu_apply_seconds",
      help: "Time to apply one batch: statements plus commit on the target",
      buckets: LATENCY,
      registers: [r],
    }),
    endToEnd: new Histogram({
      name: "dfs_dpu_end_to_end_seconds",
      help: "From capture reading a change in the binlog to its commit on the target",
      buckets: LATENCY,
      registers: [r],
    }),
    lag: new Gauge({
      name: "dfs_pipeline_lag_seconds",
      help: "Seconds the target is behind the source, from the last heartbeat applied (source -> capture -> JetStream -> dpu)",
      registers: [r],
    }),
    appliedSeq: new Gauge({
      name: "dfs_dpu_applied_sequence",
      help: "Stream sequence of the last message committed to the target (the checkpoint)",
      registers: [r],
    }),
    pending: new Gauge({
      name: "dfs_dpu_pending_messages",
      help: "Stream messages after the checkpoint still to apply",
      registers: [r],
    }),
    retries: new Counter({
      name: "dfs_dpu_retries_total",
      help: "Target operations retried after a transient error (connection, deadlock, lock wait)",
      registers: [r],
    }),
    oldestPendingAge: new Gauge({
      name: "dfs_dpu_oldest_pending_age_seconds",
      help: "Age in the stream of the oldest message this DPU has not applied yet (0 when none is pending)",
      registers: [r],
    }),
    streamMaxAge: new Gauge({
      name: "dfs_dpu_stream_max_age_seconds",
      help: "The stream's max age (nats.stream.maxAge): older messages are removed, applied or not; 0 = kept forever",
      registers: [r],
    }),
    lost: new Gauge({
      name: "dfs_dpu_lost_messages",
      help: "Stream messages found gone before this DPU applied them (expired, deleted, stream re-created); non-zero means the DPU stopped, or the loss was accepted by dpu.acceptLossThrough",
      registers: [r],
    }),
    deadLettered: new Counter({
      name: "dfs_dpu_dlq_total",
      help: "Changes sent to the dead-letter stream, by table",
      labelNames: ["db", "table"],
      registers: [r],
    }),
  };
}

/**
 * The last `dfs verify` result per target table, served by the DPU from the target's `_dfs_verify`
 * (a verify is a one-shot command; services/dpu/src/verify-metrics.ts reads what it kept).
 */
export function verifyMetrics(r: Registry) {
  const labelNames = ["db", "table", "status"];
  return {
    drifted: new Gauge({
      name: "dfs_verify_drifted_keys",
      help: "Keys found drifted by the last dfs verify of the table (after --repair: those it could not fix), by target table and status",
      labelNames,
      registers: [r],
    }),
    rows: new Gauge({
      name: "dfs_verify_rows_checked",
      help: "Source rows the last dfs verify of the table compared",
      labelNames,
      registers: [r],
    }),
    seconds: new Gauge({
      name: "dfs_verify_duration_seconds",
      help: "How long the last dfs verify of the table took",
      labelNames,
      registers: [r],
    }),
    finished: new Gauge({
      name: "dfs_verify_last_run_timestamp_seconds",
      help: "When the last dfs verify of the table finished (Unix time)",
      labelNames,
      registers: [r],
    }),
  };
}

export function snapshotMetrics(r: Registry) {
  return {
    rows: new Counter({
      name: "dfs_snapshot_rows_total",
      help: "Rows read by snapshots, by table",
      labelNames: ["db", "table"],
      registers: [r],
    }),
    progress: new Gauge({
      name: "dfs_snapshot_progress_ratio",
      help: "Share of a table's estimated rows read by its current or last snapshot (0..1)",
      labelNames: ["db", "table"],
      registers: [r],
    }),
    running: new Gauge({
      name: "dfs_snapshot_running",
      help: "Snapshots in progress",
      registers: [r],
    }),
  };
}

export function monitorMetrics(r: Registry) {
  return {
    clients: new Gauge({
      name: "dfs_monitor_clients",
      help: "Browsers connected to the monitor's WebSocket",
      registers: [r],
    }),
    polls: new Counter({
      name: "dfs_monitor_polls_total",
      help: "Status and metrics requests the monitor made to the services, by service and outcome",
      labelNames: ["target", "outcome"],
      registers: [r],
    }),
  };
}

/** relmgr: the graph, the groups and the plan DPUs follow. */
export function relmgrMetrics(r: Registry) {
  return {
    tables: new Gauge({
      name: "dfs_relmgr_tables",
      help: "Captured tables in the relationship graph",
      registers: [r],
    }),
    relationships: new Gauge({
      name: "dfs_relmgr_relationships",
      help: "Relationships in the graph (discovered foreign keys and declared ones)",
      labelNames: ["kind"],
      registers: [r],
    }),
    groups: new Gauge({ name: "dfs_relmgr_groups", help: "Table groups in the plan", registers: [r] }),
    planRevision: new Gauge({
      name: "dfs_relmgr_plan_revision",
      help: "KV revision of the plan in force",
      registers: [r],
    }),
    replans: new Counter({
      name: "dfs_relmgr_replans_total",
      help: "Times the graph was read again after a schema change on the stream",
      registers: [r],
    }),
  };
}

export type RelmgrMetrics = ReturnType<typeof relmgrMetrics>;
export type ServiceMetrics = ReturnType<typeof serviceMetrics>;
export type CaptureMetrics = ReturnType<typeof captureMetrics>;
export type DpuMetrics = ReturnType<typeof dpuMetrics>;
export type SnapshotMetrics = ReturnType<typeof snapshotMetrics>;
export type VerifyMetrics = ReturnType<typeof verifyMetrics>;
export type MonitorMetrics = ReturnType<typeof monitorMetrics>;

/** Sets dfs_service_state to 1 for `state` and 0 for every other state. */
export function setState(m: ServiceMetrics, state: string): void {
  for (const s of ["starting", "running", "paused", "error", "stopped"])
    m.state.set({ state: s }, s === state ? 1 : 0);
}
