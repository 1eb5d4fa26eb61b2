import { formatTableRef, type TableRef } from "@dfs/codec";
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
import type { StageStatus } from "@dfs/proto";
import type { JournalEntry, OpCounts } from "./journal.js";
import type { BinlogRetention } from "./retention.js";
import type { CaptureStatus } from "./runtime.js";

const OPS = ["c", "u", "d", "r"] as const;

/** "cu" for a batch of inserts and updates: the ops a batch holds. */
function opLetters(ops: OpCounts): string {
  return OPS.filter((op) => ops[op] > 0).join("");
}

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

  constructor(sourceId: string, journalMaxBytes: number) {
    this.registry = createRegistry("capture", sourceId);
    this.service = serviceMetrics(this.registry);
    this.m = captureMetrics(this.registry);
    this.snapshot = snapshotMetrics(this.registry);
    this.m.journalLimit.set(journalMaxBytes);
    setState(this.service, "starting");
  }

  /** What the source keeps of its binlog (read now and then by a RetentionWatch). */
  retention(r: BinlogRetention): void {
    this.m.binlogOldest.set(r.oldestFile);
    this.m.binlogNewest.set(r.newestFile);
    this.m.binlogExpire.set(r.expireSeconds);
  }

  /** Entries written to the journal: rows captured, per table and op. */
  journaled(entries: readonly JournalEntry[]): void {
    for (const e of entries) {
      if (e.kind === "ddl") this.m.ddl.inc();
      if (e.kind !== "batch" || !e.ref || !e.ops) continue;
      const { db, table } = e.ref;
      let rows = 0;
      for (const op of OPS) {
        const n = e.ops[op];
        if (n === 0) continue;
        this.m.captured.inc({ db, table, op }, n);
        rows += n;
      }
      this.activity.add({ kind: "change", db, table, op: opLetters(e.ops), text: e.firstKey ?? "", rows });
    }
  }

  /** A batch acknowledged by JetStream. */
  acked(ref: TableRef, ops: OpCounts): void {
    for (const op of OPS)
      if (ops[op] > 0) this.m.published.inc({ db: ref.db, table: ref.table, op }, ops[op]);
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
    this.m.binlogFile.set(s.position.fileNumber);
    this.m.binlogPosition.set(s.position.pos);
    this.m.lag.set(s.lagSeconds);
    this.m.backlogEntries.set(s.journal.entries);
    this.m.backlogBytes.set(s.journal.bytes);
    this.m.inFlight.set(s.inFlight);
    this.m.readerPaused.set(s.readerPaused ? 1 : 0);
  }
}

/** Capture's status as the control plane reports it. */
export function stageStatus(s: CaptureStatus): StageStatus {
  return {
    service: "capture",
    state: s.state,
    sourceId: s.sourceId,
    position: s.position.toString(),
    gtid: s.position.gtid,
    lagSeconds: s.lagSeconds,
    backlog: BigInt(s.journal.entries),
    backlogBytes: BigInt(s.journal.bytes),
    changesTotal: BigInt(s.rowsCaptured),
    lastError: s.lastError,
    sourcePosition: s.position.toWire(""),
    streamSeq: 0n,
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
            snapshotTable: formatTableRef(s.snapshot.table),
            snapshotRows: String(s.snapshot.rowsRead),
            snapshotEstimatedRows: String(s.snapshot.estimatedRows),
            snapshotTablesLeft: String(s.snapshot.tablesLeft),
          }
        : {}),
    },
  };
}
