/**
 * What the monitor sends to the page: plain JSON (no bigints), built from each service's
 * StageStatus, Activity and /metrics. The WebSocket protocol is in docs/monitor.md.
 */
import type { ServiceKind } from "@dfs/control";
import type { ActivityItem, DlqEntry, StageStatus } from "@dfs/proto";

/** A service's health as the page colours it: the StageStatus state, or "unreachable". */
export type Health = "starting" | "running" | "paused" | "error" | "stopped" | "unreachable";

/** One service, as the pipeline diagram shows it. */
export interface ServiceView {
  name: string;
  kind: ServiceKind;
  grpc: string;
  http: string;
  state: Health;
  /** Why the service is unreachable or in error: the call's error or StageStatus.lastError. */
  error: string;
  /** capture: the binlog position read up to; dpu: the source position applied up to. */
  position: string;
  /** The stream sequence applied up to (dpu); 0 for other services. */
  streamSeq: number;
  /** dpu: how far its applied position is behind capture's read position in the binlog ("" unknown). */
  behind: string;
  gtid: string;
  lagSeconds: number;
  backlog: number;
  backlogBytes: number;
  changesTotal: number;
  details: Record<string, string>;
  /** Rows per second over the last poll: captured (capture) or applied (dpu). */
  rate: number;
  /** capture only: rows per second acknowledged by JetStream. */
  publishedRate: number;
  /** Whether /metrics answered on the last poll, and why not. */
  metricsOk: boolean;
  metricsError: string;
  /** When the service last answered Status (ms since epoch; 0 = never). */
  lastSeenMs: number;
}

export interface OpCounts {
  c: number;
  u: number;
  d: number;
  r: number;
}

/** Per-table counts, from dfs_capture_changes_total, ..._published_..., dfs_dpu_changes_applied_total. */
export interface TableRow {
  /** "db.table" as captured (source name). */
  table: string;
  /** The DPU's name of the table when it differs (sync into another database). */
  target: string;
  /** Row changes by op: c insert, u update, d delete, r read by a snapshot. */
  captured: OpCounts;
  published: number;
  applied: OpCounts;
}

/** One recent thing a service did (ActivityItem with the service's name, numbers as numbers). */
export interface ActivityView {
  service: string;
  id: number;
  timeMs: number;
  kind: string;
  db: string;
  table: string;
  op: string;
  text: string;
  rows: number;
  durationMs: number;
}

/** An error: a recent one from Activity, or a current condition (unreachable, lastError). */
export interface ErrorView {
  service: string;
  timeMs: number;
  text: string;
  /** true while the condition lasts (unreachable, StageStatus.lastError); false for history. */
  current: boolean;
}

export interface DlqView {
  service: string;
  seq: number;
  subject: string;
  db: string;
  table: string;
  error: string;
  timeMs: number;
  rows: number;
}

/** One point of the charts: rows/s over the last poll, summed over services, and the lags. */
export interface Point {
  t: number;
  captured: number;
  published: number;
  applied: number;
  /** Largest capture lag (source -> journal), seconds. */
  captureLag: number;
  /** Largest DPU lag (source -> target), seconds. */
  pipelineLag: number;
}

export interface MonitorState {
  timeMs: number;
  sourceId: string;
  pollIntervalMs: number;
  services: ServiceView[];
  tables: TableRow[];
  /** capture's "change" items, newest first. */
  changes: ActivityView[];
  /** dpu's "dml" (and "ddl") items, newest first. */
  dml: ActivityView[];
  errors: ErrorView[];
  dlq: DlqView[];
  point: Point;
}

/** A bigint (uint64 from protobuf) as a JSON-safe number. */
export const num = (v: bigint | number | undefined): number => (v === undefined ? 0 : Number(v));

export function activityView(service: string, i: ActivityItem): ActivityView {
  return {
    service,
    id: num(i.id),
    timeMs: num(i.timeMs),
    kind: i.kind,
    db: i.db,
    table: i.table,
    op: i.op,
    text: i.text,
    rows: i.rows,
    durationMs: i.durationMs,
  };
}

export function dlqView(service: string, e: DlqEntry): DlqView {
  return {
    service,
    seq: num(e.seq),
    subject: e.subject,
    db: e.db,
    table: e.table,
    error: e.error,
    timeMs: num(e.timeMs),
    rows: e.rows,
  };
}

const STATES = new Set<string>(["starting", "running", "paused", "error", "stopped"]);

/** The parts of a ServiceView that come from StageStatus. */
export function statusFields(
  s: StageStatus,
): Pick<
  ServiceView,
  | "state"
  | "position"
  | "streamSeq"
  | "gtid"
  | "lagSeconds"
  | "backlog"
  | "backlogBytes"
  | "changesTotal"
  | "details"
> & { lastError: string } {
  return {
    state: (STATES.has(s.state) ? s.state : "error") as Health,
    position: s.position,
    streamSeq: num(s.streamSeq),
    gtid: s.gtid,
    lagSeconds: s.lagSeconds,
    backlog: num(s.backlog),
    backlogBytes: num(s.backlogBytes),
    changesTotal: num(s.changesTotal),
    details: { ...s.details },
    lastError: s.lastError,
  };
}
