import type { Position, TableRef } from "@dfs/codec";
import { Completion, type DfsError, errorMessage, type Logger, type Scope } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { setState } from "@dfs/metrics";
import { MysqlSession } from "@dfs/mysql";
import type { Assembler, SchemaStatement } from "./assembler.js";
import type { SourceFacts } from "./checks.js";
import type { Journal, JournalStats } from "./journal.js";
import type { JournalWriter } from "./journal-writer.js";
import type { Publisher } from "./publisher.js";
import type { ReaderSupervisor } from "./reader-supervisor.js";
import { resolvePosition } from "./set-position.js";
import type { SnapshotCoordinator, SnapshotState } from "./snapshot.js";
import type { CaptureTelemetry } from "./telemetry.js";

export type CaptureState = "starting" | "running" | "paused" | "error" | "stopped";

export interface CaptureStatus {
  state: CaptureState;
  sourceId: string;
  /** Where the reader is: after the last complete transaction read. */
  position: Position;
  rowsCaptured: number;
  txnsCaptured: number;
  rowsPublished: number;
  journal: JournalStats;
  inFlight: number;
  readerPaused: boolean;
  /** Seconds behind the source: now minus the source time read up to (0 before anything is read). */
  lagSeconds: number;
  reconnects: number;
  /** The running or last snapshot, if any. */
  snapshot: SnapshotState | null;
  lastError: string;
}

export interface CaptureService {
  status(): CaptureStatus;
  /** Stops reading the binlog (publishing of what is journaled goes on). */
  pause(): void;
  resume(): void;
  /**
   * Moves the read position ("earliest", "latest", "file:pos" or a GTID set); only while paused.
   * Changes between the old and new positions are skipped or read again (their message ids
   * dedupe in the stream; the DPU's writes are idempotent).
   */
  setPosition(position: string): Promise<void>;
  /** The ports actually bound (the config may say 0 = any free port). */
  readonly endpoints: { http: number; grpc: number };
  readonly telemetry: CaptureTelemetry;
  /** Starts a snapshot of tables (empty = every captured table); returns its id. */
  snapshot(tables: readonly TableRef[]): Promise<string>;
  stop(): Promise<void>;
  /** Settles when the service stops; rejects on a fatal error (bad settings, purged checkpoint, lease lost). */
  readonly done: Promise<void>;
}

/** The parts the composition root built, handed to the runtime that runs them. */
export interface CaptureParts {
  cfg: DfsConfig;
  log: Logger;
  facts: SourceFacts;
  telemetry: CaptureTelemetry;
  journal: Journal;
  assembler: Assembler;
  writer: JournalWriter;
  publisher: Publisher;
  snapshots: SnapshotCoordinator;
  reader: ReaderSupervisor;
  /** Resources closed after the parts stopped (endpoints, lease, NATS, journal file). */
  scope: Scope;
  /** Aborted when capture stops: waits inside the parts give up. */
  stopping: AbortController;
}

/**
 * A running capture: starts the parts in order, answers status and control calls, and stops them
 * in reverse order (on request or on a fatal error).
 */
export class CaptureRuntime implements CaptureService {
  private state: CaptureState = "starting";
  private fatalError = "";
  private readonly completion = new Completion();
  endpoints = { http: 0, grpc: 0 };

  constructor(private readonly p: CaptureParts) {}

  get telemetry(): CaptureTelemetry {
    return this.p.telemetry;
  }

  get done(): Promise<void> {
    return this.completion.promise;
  }

  /** Journals the schema snapshot of a new journal, then starts publishing and reading. */
  start(schema: readonly SchemaStatement[]): void {
    const { journal, assembler, writer, publisher, reader, snapshots, log } = this.p;
    const cp = journal.checkpoint!;
    if (schema.length > 0) {
      assembler.schemaSnapshot(schema, cp.position);
      assembler.flush();
    }
    publisher.start();
    reader.start(cp.position);
    writer.start();
    this.state = "running";
    setState(this.p.telemetry.service, "running");
    log.info({ sourceId: this.p.cfg.source.id, from: cp.position.toString() }, "capture running");
    snapshots.resume();
  }

  status(): CaptureStatus {
    const { assembler, publisher, journal, reader, snapshots } = this.p;
    const sourceTime = assembler.sourceTimeMs;
    return {
      state: this.state === "running" && reader.userPaused ? "paused" : this.state,
      sourceId: this.p.cfg.source.id,
      position: reader.position(),
      rowsCaptured: assembler.rowsSeen,
      txnsCaptured: assembler.txnsSeen,
      rowsPublished: publisher.publishedRows,
      journal: journal.stats(),
      inFlight: publisher.inFlight,
      readerPaused: reader.isPaused,
      lagSeconds: sourceTime > 0 ? Math.max(0, (Date.now() - sourceTime) / 1000) : 0,
      reconnects: reader.reconnects,
      snapshot: snapshots.state,
      lastError: this.fatalError || reader.lastError || publisher.lastError || snapshots.lastError,
    };
  }

  pause(): void {
    this.p.reader.pause("user");
  }

  resume(): void {
    this.p.reader.resume("user");
  }

  async setPosition(position: string): Promise<void> {
    const conn = await MysqlSession.open(this.p.cfg.source.endpoint, { role: "source" });
    let target: Position;
    try {
      target = await resolvePosition(conn, position, this.p.facts);
    } finally {
      await conn.close();
    }
    await this.p.reader.moveTo(target);
  }

  snapshot(tables: readonly TableRef[]): Promise<string> {
    return this.p.snapshots.start(tables);
  }

  async stop(): Promise<void> {
    if (this.state === "stopped" || this.state === "error") return;
    this.state = "stopped";
    await this.shutdown();
    this.completion.resolve();
  }

  /** Capture cannot go on: stop everything and reject `done` with the reason. */
  async fatal(err: unknown): Promise<void> {
    if (this.state === "stopped" || this.state === "error") return;
    this.state = "error";
    this.fatalError = errorMessage(err);
    this.p.telemetry.error("fatal", this.fatalError);
    this.p.log.error(
      { err: this.fatalError, code: (err as DfsError).code },
      "capture stopped on a fatal error",
    );
    await this.shutdown();
    this.completion.reject(err);
  }

  private async shutdown(): Promise<void> {
    const { stopping, snapshots, reader, writer, publisher, journal, scope } = this.p;
    stopping.abort();
    await snapshots.close();
    await reader.stop();
    writer.close();
    await publisher.stop();
    try {
      journal.markPublished(publisher.acked);
    } catch {
      // already closed after a fatal journal error
    }
    await scope.close();
  }
}
