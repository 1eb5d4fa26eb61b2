import { ActivityLog } from "@dfs/control";
import {
  type CaptureMetrics,
  captureMetrics,
  createRegistry,
  type Registry,
  type ServiceMetrics,
  type SnapshotMetrics,
  serviceMetrics,
  setState,
  snapshotMetrics,
} from "@dfs/metrics";
import { decodeToken } from "@dfs/nats";
import type { StageStatus } from "@dfs/proto";
import { parseOps } from "./assembler.js";
import type { JournalEntry } from "./journal.js";
import type { CaptureStatus } from "./service.js";

/**
 * What capture reports about itself: Prometheus metrics, the recent-activity log the monitor
 * shows, and the control plane's StageStatus. Fed once per journal write and per ack, never per row.
 */
export class CaptureTelemetry {
  readonly registry: Registry;
  readonly service: ServiceMetrics;
  readonly m: CaptureMetrics;
  readonly snapshot: SnapshotMetrics;
  readonly activity = new ActivityLog();
  /** subject -> [db, table], so subjects are decoded once. */
  private readonly tables = new Map<string, [string, string]>();

  constructor(sourceId: string) {
    this.registry = createRegistry("capture", sourceId);
    this.service = serviceMetrics(this.registry);
    this.m = captureMetrics(this.registry);
    this.snapshot = snapshotMetrics(this.registry);
    setState(this.service, "starting");
  }

  private tableOf(subject: string): [string, string] {
    let t = this.tables.get(subject);
    if (!t) {
      const parts = subject.split(".");
      t = [decodeToken(parts[2] ?? ""), decodeToken(parts[3] ?? "")];
      this.tables.set(subject, t);
    }
    return t;
  }

  /** Entries written to the journal: rows captured, per table and op. */
  journaled(entries: readonly JournalEntry[]): void {
    for (const e of entries) {
      if (e.kind === "ddl") this.m.ddl.inc();
      if (e.kind !== "batch") continue;
      const [db, table] = this.tableOf(e.subject);
      const ops = parseOps(e.ops);
      for (const [op, rows] of ops) this.m.captured.inc({ db, table, op }, rows);
      this.activity.add({
        kind: "change",
        db,
        table,
        op: ops.map(([op]) => op).join(""),
        text: e.firstKey ?? "",
        rows: e.rows,
      });
    }
  }

  /** A batch acknowledged by JetStream. */
  acked(subject: string, ops: string): void {
    const [db, table] = this.tableOf(subject);
    for (const [op, rows] of parseOps(ops)) this.m.published.inc({ db, table, op }, rows);
  }

  transactions(n: number): void {
    if (n > 0) this.m.transactions.inc(n);
  }

  error(kind: string, message: string): void {
    this.service.errors.inc({ kind });
    this.activity.add({ kind: "error", text: message });
  }

  /** Gauges from the current status, set just before each scrape. */
  update(s: CaptureStatus): void {
    setState(this.service, s.state);
    const [file, pos] = splitPosition(s.position);
    this.m.binlogFile.set(file);
    this.m.binlogPosition.set(pos);
    this.m.lag.set(s.lagSeconds);
    this.m.backlogEntries.set(s.journal.entries);
    this.m.backlogBytes.set(s.journal.bytes);
    this.m.inFlight.set(s.inFlight);
    this.m.readerPaused.set(s.readerPaused ? 1 : 0);
  }
}

/** "mysql-bin.000042:1234" -> [42, 1234]. */
function splitPosition(position: string): [number, number] {
  const m = /\.(\d+):(\d+)$/.exec(position);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Capture's status as the control plane reports it. */
export function stageStatus(s: CaptureStatus): StageStatus {
  return {
    service: "capture",
    state: s.state,
    sourceId: s.sourceId,
    position: s.position,
    gtid: s.gtid,
    lagSeconds: s.lagSeconds,
    backlog: BigInt(s.journal.entries),
    backlogBytes: BigInt(s.journal.bytes),
    changesTotal: BigInt(s.rowsCaptured),
    lastError: s.lastError,
    details: {
      rowsPublished: String(s.rowsPublished),
      transactions: String(s.txnsCaptured),
      inFlight: String(s.inFlight),
      readerPaused: String(s.readerPaused),
      committedScn: String(s.journal.committedScn),
      publishedScn: String(s.journal.publishedScn),
      reconnects: String(s.reconnects),
      ...(s.snapshot
        ? {
            snapshotId: s.snapshot.id,
            snapshotTable: s.snapshot.table,
            snapshotRows: String(s.snapshot.rowsRead),
            snapshotEstimatedRows: String(s.snapshot.estimatedRows),
            snapshotTablesLeft: String(s.snapshot.tablesLeft),
          }
        : {}),
    },
  };
}
