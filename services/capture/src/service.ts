import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { parseTableRef } from "@dfs/codec";
import { createLogger, type DfsError, errorMessage, type Logger, Scope } from "@dfs/common";
import { captureFilter, type DfsConfig, type TableFilter } from "@dfs/config";
import { serveControl } from "@dfs/control";
import { healthOf, serveHttp } from "@dfs/metrics";
import { MysqlSession } from "@dfs/mysql";
import {
  acquireLease,
  connectNatsWithRetry,
  ensureStreamsWithRetry,
  jetStreamWriter,
  type Lease,
  maxMessageBytes,
  type NatsConnection,
  streamSettingsOf,
  subjects,
} from "@dfs/nats";
import { Assembler } from "./assembler.js";
import type { SourceFacts } from "./checks.js";
import { captureControl } from "./control.js";
import { Journal } from "./journal.js";
import { JournalWriter } from "./journal-writer.js";
import { Publisher } from "./publisher.js";
import { ReaderSupervisor } from "./reader-supervisor.js";
import { RetentionWatch, readRetention } from "./retention.js";
import { CaptureRuntime, type CaptureService } from "./runtime.js";
import { SnapshotCoordinator } from "./snapshot.js";
import { prepareSource } from "./source.js";
import { CaptureTelemetry } from "./telemetry.js";

export interface CaptureDeps {
  log?: Logger;
}

/**
 * The composition root of capture: builds its parts in order and hands them to the runtime.
 * HTTP endpoint first (probes see "starting" while the rest comes up), then the journal, the
 * source checks, NATS and the stream, the lease; then the data path, built from its end:
 * publisher <- journal writer <- assembler <- snapshot coordinator <- binlog reader; last the
 * control plane. The runtime starts them and stops them in reverse.
 */
export async function startCapture(cfg: DfsConfig, deps: CaptureDeps = {}): Promise<CaptureService> {
  const log = deps.log ?? createLogger({ level: cfg.log.level, name: "capture" });
  const telemetry = new CaptureTelemetry(cfg.source.id, cfg.capture.journal.maxBytes);
  const scope = new Scope();
  const stopping = new AbortController();
  let runtime: CaptureRuntime | null = null;
  const fatal = (err: unknown) => void runtime?.fatal(err);
  try {
    const http = scope.use(
      await serveHttp({
        port: cfg.capture.http.port,
        portKey: "capture.http.port",
        registry: telemetry.registry,
        health: () => healthOf(runtime?.status()),
        beforeScrape: () => runtime && telemetry.update(runtime.status()),
      }),
    );
    const journal = scope.use(new Journal(cfg.capture.journal.path));
    const filter = captureFilter(cfg);
    const { facts, schema } = await prepareSource(cfg, journal, filter, log);
    log.info(
      { server: facts.version, checkpoint: journal.checkpoint, journal: journal.path },
      "source checked",
    );
    const nc = await connectBroker(cfg, log, stopping.signal);
    scope.defer(() => nc.close());
    const lease = await takeLease(cfg, nc, stopping.signal);
    if (lease) scope.defer(() => lease.release());

    const publisher = buildPublisher(cfg, nc, journal, telemetry, log);
    // The writer holds the reader back when the journal is full; the reader is built last.
    const writer = buildWriter(cfg, journal, publisher, telemetry, log, () => reader, fatal);
    const assembler = buildAssembler(cfg, facts, journal, writer);
    const snapshots = buildSnapshots(cfg, filter, assembler, journal, writer, telemetry, log, fatal);
    const reader: ReaderSupervisor = buildReader(cfg, facts, filter, snapshots, writer, telemetry, log, {
      onFatal: fatal,
      signal: stopping.signal,
    });

    runtime = new CaptureRuntime({
      cfg,
      log,
      facts,
      telemetry,
      journal,
      assembler,
      writer,
      publisher,
      snapshots,
      reader,
      scope,
      stopping,
    });
    runtime.start(schema);
    lease?.lost.then(fatal);
    const retention = new RetentionWatch({
      read: () => withSource(cfg, readRetention),
      intervalMs: RETENTION_INTERVAL_MS,
      onUpdate: (r) => telemetry.retention(r),
      log,
    });
    retention.start();
    scope.defer(() => retention.stop());
    const control = scope.use(
      await serveControl({
        kind: "capture",
        port: cfg.capture.grpc.port,
        portKey: "capture.grpc.port",
        token: cfg.control.token,
        host: cfg.control.host,
        tls: cfg.control.tls,
        log,
        handlers: captureControl(runtime),
      }),
    );
    runtime.endpoints = { http: http.port, grpc: control.port };
    return runtime;
  } catch (err) {
    stopping.abort();
    if (runtime) await runtime.stop();
    else await scope.close();
    throw err;
  }
}

/** How often the source's binlog retention is read for dfs_capture_source_binlog_* (a minute). */
const RETENTION_INTERVAL_MS = 60_000;

/** Runs `f` on a fresh session to the source, closed afterwards. */
async function withSource<T>(cfg: DfsConfig, f: (conn: MysqlSession) => Promise<T>): Promise<T> {
  const conn = await MysqlSession.open(cfg.source.endpoint, { role: "source" });
  try {
    return await f(conn);
  } finally {
    await conn.close();
  }
}

/** NATS (waiting for it while it is not reachable) and the source's streams. */
async function connectBroker(cfg: DfsConfig, log: Logger, signal: AbortSignal): Promise<NatsConnection> {
  const nc = await connectNatsWithRetry(
    { ...cfg.nats, name: `dfs-capture-${cfg.source.id}` },
    {
      ...cfg.capture.reconnect,
      signal,
      onRetry: (err, ms) => log.warn({ err: errorMessage(err), retryInMs: ms }, "NATS not reachable yet"),
    },
  );
  try {
    await ensureStreamsWithRetry(nc, cfg.source.id, streamSettingsOf(cfg.nats.stream), {
      ...cfg.capture.reconnect,
      signal,
      onRetry: (err, ms) =>
        log.warn({ err: errorMessage(err), retryInMs: ms }, "JetStream cannot set up the streams yet"),
    });
    return nc;
  } catch (err) {
    await nc.close();
    throw err;
  }
}

/** The single-reader lease of the source (none when capture.lease.enabled is off). */
async function takeLease(cfg: DfsConfig, nc: NatsConnection, signal: AbortSignal): Promise<Lease | null> {
  if (!cfg.capture.lease.enabled) return null;
  return acquireLease(nc, {
    key: `capture.${cfg.source.id}`,
    holder: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    ttlMs: cfg.capture.lease.ttlMs,
    // A capture restarted right after a crash finds the dead process's lease: wait it out.
    waitMs: cfg.capture.lease.waitMs,
    signal,
  });
}

function buildPublisher(
  cfg: DfsConfig,
  nc: NatsConnection,
  journal: Journal,
  telemetry: CaptureTelemetry,
  log: Logger,
): Publisher {
  return new Publisher({
    stream: jetStreamWriter(nc, subjects.streamName(cfg.source.id)),
    journal,
    maxInFlight: cfg.capture.publish.maxInFlight,
    maxInFlightBytes: cfg.capture.publish.maxInFlightBytes,
    ackTimeoutMs: cfg.capture.publish.ackTimeoutMs,
    // Read at each publish: a reconnect may land on a server with another limit.
    maxMessageBytes: () => maxMessageBytes(nc),
    reconnect: cfg.capture.reconnect,
    log,
    onPublished: () => {},
    onAcked: (ref, ops) => telemetry.acked(ref, ops),
    onRetry: (err) => telemetry.error("broker", errorMessage(err)),
  });
}

function buildWriter(
  cfg: DfsConfig,
  journal: Journal,
  publisher: Publisher,
  telemetry: CaptureTelemetry,
  log: Logger,
  reader: () => ReaderSupervisor,
  onFatal: (err: unknown) => void,
): JournalWriter {
  return new JournalWriter({
    journal,
    notify: () => publisher.notify(),
    acked: () => publisher.acked,
    telemetry,
    throttle: {
      pause: () => reader().backpressure.pause(),
      resume: () => reader().backpressure.resume(),
      get paused() {
        return reader().backpressure.paused;
      },
    },
    position: () => reader().position(),
    groupCommitMs: cfg.capture.journal.groupCommitMs,
    groupCommitBytes: cfg.capture.journal.groupCommitBytes,
    maxJournalBytes: cfg.capture.journal.maxBytes,
    heartbeatIntervalMs: cfg.capture.heartbeatIntervalMs,
    trimIntervalMs: cfg.capture.journal.trimIntervalMs,
    log,
    onFatal,
  });
}

function buildAssembler(
  cfg: DfsConfig,
  facts: SourceFacts,
  journal: Journal,
  writer: JournalWriter,
): Assembler {
  const sourceId = cfg.source.id;
  const assembler = new Assembler({
    sourceId,
    serverUuid: facts.serverUuid,
    journalId: journal.journalId,
    maxRows: cfg.capture.batch.maxRows,
    maxBytes: cfg.capture.batch.maxBytes,
    maxBufferBytes: cfg.capture.maxBufferBytes,
    ddlSubject: subjects.ddl(sourceId),
    heartbeatSubject: subjects.heartbeat(sourceId),
    nextScn: journal.nextScn,
    txnOrdinal: journal.checkpoint!.txnOrdinal,
    position: journal.checkpoint!.position,
    write: writer.write,
  });
  writer.bind(assembler);
  return assembler;
}

function buildSnapshots(
  cfg: DfsConfig,
  filter: TableFilter,
  assembler: Assembler,
  journal: Journal,
  writer: JournalWriter,
  telemetry: CaptureTelemetry,
  log: Logger,
  onFatal: (err: unknown) => void,
): SnapshotCoordinator {
  return new SnapshotCoordinator({
    onFatal,
    endpoint: cfg.source.endpoint,
    signalTable: parseTableRef(cfg.capture.snapshot.signalTable),
    chunkRows: cfg.capture.snapshot.chunkRows,
    keylessMaxRows: cfg.capture.snapshot.keylessMaxRows,
    filter,
    subjectFor: (db, table) => subjects.data(cfg.source.id, db, table),
    assembler,
    journal,
    flush: () => writer.flush(),
    metrics: telemetry.snapshot,
    log,
    // Declared relationships (pipeline use) order snapshots beside the source's foreign keys.
    relationships: (cfg.pipeline?.relationships ?? []).map((r) => ({
      child: { db: r.child.db, table: r.child.table },
      parent: { db: r.parent.db, table: r.parent.table },
    })),
  });
}

function buildReader(
  cfg: DfsConfig,
  facts: SourceFacts,
  filter: TableFilter,
  snapshots: SnapshotCoordinator,
  writer: JournalWriter,
  telemetry: CaptureTelemetry,
  log: Logger,
  o: { onFatal(err: unknown): void; signal: AbortSignal },
): ReaderSupervisor {
  return new ReaderSupervisor({
    reader: {
      endpoint: cfg.source.endpoint,
      server: facts.identity,
      serverId: cfg.source.serverId,
      filter,
      signalTable: parseTableRef(cfg.capture.snapshot.signalTable),
      handler: snapshots,
      subjectFor: (db, table) => subjects.data(cfg.source.id, db, table),
      heartbeatPeriodMs: cfg.capture.heartbeatIntervalMs,
      log,
    },
    afterEvent: () => writer.afterEvent(),
    settle: () => writer.settle(),
    moveTo: (p) => writer.moveTo(p),
    reconnect: cfg.capture.reconnect,
    log,
    onFatal: o.onFatal,
    onRetry: (err: DfsError) => {
      telemetry.m.reconnects.inc();
      telemetry.error("source", err.message);
    },
    signal: o.signal,
  });
}
