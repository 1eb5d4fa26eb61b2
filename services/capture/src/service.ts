import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  backoffMs,
  ConfigError,
  createLogger,
  type DfsError,
  ErrorCode,
  errorMessage,
  type Logger,
  mysqlErrorClass,
  sleep,
  TransientError,
} from "@dfs/common";
import { type DfsConfig, parseMysqlUrl } from "@dfs/config";
import { type ControlServer, serveControl } from "@dfs/control";
import { type HttpEndpoint, healthOf, serveHttp, setState } from "@dfs/metrics";
import { acquireLease, connectNats, ensureStreams, type Lease, subjects } from "@dfs/nats";
import type { NatsConnection } from "@nats-io/transport-node";
import mysql from "mysql2/promise";
import { Assembler, type SchemaStatement } from "./assembler.js";
import { checkSource, type SourceFacts } from "./checks.js";
import { TableFilter } from "./filter.js";
import { type Checkpoint, Journal } from "./journal.js";
import { Publisher } from "./publisher.js";
import { BinlogReader, type StartFrom } from "./reader.js";
import { schemaSnapshot } from "./schema.js";
import { edgePosition, resolvePosition } from "./set-position.js";
import { requestInitialSnapshot, SnapshotCoordinator, type SnapshotState } from "./snapshot.js";
import { CaptureTelemetry, stageStatus } from "./telemetry.js";

export type CaptureState = "starting" | "running" | "paused" | "error" | "stopped";

export interface CaptureStatus {
  state: CaptureState;
  sourceId: string;
  position: string;
  gtid: string;
  rowsCaptured: number;
  txnsCaptured: number;
  rowsPublished: number;
  journal: { entries: number; bytes: number; committedScn: number; publishedScn: number };
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
  /** Starts a snapshot of "db.table" names (empty = every captured table); returns its id. */
  snapshot(tables: string[]): Promise<string>;
  stop(): Promise<void>;
  /** Settles when the service stops; rejects on a fatal error (bad settings, purged checkpoint, lease lost). */
  readonly done: Promise<void>;
}

export interface CaptureDeps {
  log?: Logger;
}

/** "file:pos" or a GTID position of the reader, for status. */
function positionText(p: { file: string; pos: number }): string {
  return p.file ? `${p.file}:${p.pos}` : "";
}

/** Where a journal without a checkpoint starts, resolved to a concrete file+position now. */
async function initialCheckpoint(
  cfg: DfsConfig,
  conn: mysql.Connection,
  facts: SourceFacts,
): Promise<Checkpoint> {
  const start = cfg.source.start;
  const base = { committedScn: 0, txnOrdinal: 0, serverIdentity: facts.identity };
  switch (start.from) {
    case "position":
      return { ...base, file: start.file!, pos: start.position!, gtid: null };
    case "gtid":
      return { ...base, file: "", pos: 0, gtid: start.gtid! };
    default:
      return { ...base, ...(await edgePosition(conn, start.from, facts.binlogs, facts.isMariaDb)) };
  }
}

function startFrom(cp: Checkpoint): StartFrom {
  // Same server (checked at start-up): file+position is exact. GTID only when no file is known.
  if (cp.file) return { kind: "position", file: cp.file, pos: cp.pos };
  return { kind: "gtid", gtid: cp.gtid ?? "" };
}

async function connectWithRetry(cfg: DfsConfig, log: Logger, signal: AbortSignal): Promise<NatsConnection> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectNats({
        url: cfg.nats.url,
        token: cfg.nats.token,
        name: `dfs-capture-${cfg.source.id}`,
      });
    } catch (err) {
      const wait = backoffMs(attempt, cfg.capture.reconnect.initialMs, cfg.capture.reconnect.maxMs);
      log.warn({ err: errorMessage(err), retryInMs: wait }, "NATS not reachable yet");
      await sleep(wait, signal);
    }
  }
}

/**
 * Builds and starts the capture service, in order: journal, source checks, NATS and stream,
 * lease, publisher, binlog reader. The one wiring function of this service.
 */
export async function startCapture(cfg: DfsConfig, deps: CaptureDeps = {}): Promise<CaptureService> {
  const log = deps.log ?? createLogger({ level: cfg.log.level, name: "capture" });
  const sourceId = cfg.source.id;
  const stop = new AbortController();
  const telemetry = new CaptureTelemetry(sourceId);
  let current: (() => CaptureStatus) | null = null;
  // Served from the start, so a probe sees "live, not ready" while the source is checked and
  // the lease is awaited.
  const http: HttpEndpoint = await serveHttp({
    port: cfg.capture.http.port,
    portKey: "capture.http.port",
    registry: telemetry.registry,
    health: () => healthOf(current?.()),
    beforeScrape: () => {
      const st = current?.();
      if (st) telemetry.update(st);
    },
  });
  let journal: Journal;
  try {
    journal = new Journal(cfg.capture.journal.path);
  } catch (err) {
    await http.close();
    throw err;
  }
  const closers: (() => unknown)[] = [() => http.close(), () => journal.close()];
  const cleanup = async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
  };

  let facts: SourceFacts;
  const [signalDb, signalName] = cfg.capture.snapshot.signalTable.split(".") as [string, string];
  const filter = new TableFilter({ include: cfg.source.include, exclude: cfg.source.exclude }, [signalDb]);
  /** Definitions of the captured tables, taken only when the journal is new. */
  let snapshot: SchemaStatement[] = [];
  const url = parseMysqlUrl(cfg.source.url);
  const connection = { host: url.host, port: url.port, user: url.user, password: url.password };
  try {
    const conn = await mysql
      .createConnection({ ...connection, connectTimeout: 10_000 })
      .catch((err: unknown) => {
        throw new TransientError(
          ErrorCode.SOURCE_UNAVAILABLE,
          `cannot connect to the source ${url.host}:${url.port}: ${errorMessage(err)}`,
          { cause: err },
        );
      });
    try {
      facts = await checkSource(conn, journal.checkpoint);
      if (!journal.checkpoint) {
        if (cfg.source.start.snapshot) requestInitialSnapshot(journal);
        journal.append([], await initialCheckpoint(cfg, conn, facts));
        snapshot = await schemaSnapshot(conn, filter);
      }
    } finally {
      await conn.end().catch(() => {});
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  log.info(
    {
      sourceId,
      server: facts.version,
      identity: facts.identity,
      checkpoint: journal.checkpoint,
      journal: journal.path,
    },
    "source checked",
  );

  const nc = await connectWithRetry(cfg, log, stop.signal);
  closers.push(() => nc.close());
  const streamName = subjects.streamName(sourceId);
  let lease: Lease | null = null;
  try {
    await ensureStreams(nc, sourceId, {
      replicas: cfg.nats.stream.replicas,
      maxAgeMs: cfg.nats.stream.maxAge,
      maxBytes: cfg.nats.stream.maxBytes,
      duplicateWindowMs: cfg.nats.stream.duplicateWindow,
    });
    if (cfg.capture.lease.enabled) {
      lease = await acquireLease(nc, {
        key: `capture.${sourceId}`,
        holder: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
        ttlMs: cfg.capture.lease.ttlMs,
        // A capture restarted right after a crash finds the dead process's lease: wait it out.
        waitMs: cfg.capture.lease.waitMs,
        signal: stop.signal,
      });
      closers.push(() => lease?.release());
    }
  } catch (err) {
    await cleanup();
    throw err;
  }

  let state: CaptureState = "running";
  let lastError = "";
  let reconnects = 0;
  let txnsCounted = 0;
  let userPaused = false;
  let flushScheduled = false;
  let resolveDone!: () => void;
  let rejectDone!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => {}); // observed by the caller; never an unhandled rejection

  const publisher = new Publisher({
    nc,
    stream: streamName,
    journal,
    maxInFlight: cfg.capture.publish.maxInFlight,
    maxInFlightBytes: cfg.capture.publish.maxInFlightBytes,
    ackTimeoutMs: cfg.capture.publish.ackTimeoutMs,
    reconnect: cfg.capture.reconnect,
    log,
    onPublished: () => {},
    onAcked: (subject, ops) => telemetry.acked(subject, ops),
    onRetry: (err) => telemetry.error("broker", errorMessage(err)),
  });

  const cp = journal.checkpoint!;
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
    txnOrdinal: cp.txnOrdinal,
    serverIdentity: facts.identity,
    write: (entries, checkpoint) => {
      journal.append(entries, checkpoint);
      telemetry.journaled(entries);
      telemetry.transactions(assembler.txnsSeen - txnsCounted);
      txnsCounted = assembler.txnsSeen;
      publisher.notify();
      // Checked on every write too, so a burst cannot overshoot the limit by much.
      if (journal.stats().bytes >= cfg.capture.journal.maxBytes) applyBackpressure();
    },
  });

  const flush = () => {
    flushScheduled = false;
    try {
      assembler.flush();
    } catch (err) {
      void fatal(err);
    }
  };

  /** Backpressure: the journal holds at most maxBytes of unpublished data. */
  const applyBackpressure = () => {
    const full = journal.stats().bytes >= cfg.capture.journal.maxBytes;
    if (full && !reader.isPaused) {
      log.warn(
        { bytes: journal.stats().bytes },
        "journal full: pausing the binlog reader until publishing catches up",
      );
      reader.pause();
    } else if (
      !full &&
      reader.isPaused &&
      !userPaused &&
      journal.stats().bytes < cfg.capture.journal.maxBytes * 0.8
    ) {
      reader.resume();
    }
  };

  const snapshots = new SnapshotCoordinator({
    connection,
    signalTable: { db: signalDb, table: signalName },
    chunkRows: cfg.capture.snapshot.chunkRows,
    filter,
    subjectFor: (db, table) => subjects.data(sourceId, db, table),
    assembler,
    journal,
    flush: () => flush(),
    metrics: telemetry.snapshot,
    log,
  });

  let attempt = 0;
  let restarting = false;
  const reader: BinlogReader = new BinlogReader({
    connection,
    serverId: cfg.source.serverId,
    filter,
    signalTable: { db: signalDb, table: signalName },
    handler: snapshots,
    subjectFor: (db, table) => subjects.data(sourceId, db, table),
    heartbeatPeriodMs: cfg.capture.heartbeatIntervalMs,
    log,
    onError: (err) => void restart(err),
    afterEvent: () => {
      attempt = 0;
      if (!assembler.hasPending) return;
      // Group commit: complete transactions share one fsync'd journal commit, at most
      // groupCommitMs after the first of them, or at once when groupCommitBytes are waiting.
      if (assembler.pendingBytes >= cfg.capture.journal.groupCommitBytes) {
        flush();
      } else if (!flushScheduled) {
        flushScheduled = true;
        const ms = cfg.capture.journal.groupCommitMs;
        if (ms > 0) setTimeout(flush, ms);
        else setImmediate(flush);
      }
    },
  });

  async function fatal(err: unknown): Promise<void> {
    if (state === "stopped" || state === "error") return;
    state = "error";
    lastError = errorMessage(err);
    telemetry.error("fatal", lastError);
    log.error({ err: lastError, code: (err as DfsError).code }, "capture stopped on a fatal error");
    await shutdown();
    rejectDone(err);
  }

  /**
   * Stops the reader and keeps what is complete: the journal and the assembler are then both at
   * the checkpoint, from where a new reader can start.
   */
  async function stopAtCheckpoint(): Promise<Checkpoint> {
    await reader.stop();
    assembler.flush(); // complete transactions are valid: keep them
    journal.discardIncomplete();
    const c = journal.checkpoint!;
    assembler.reset(journal.nextScn, c.txnOrdinal);
    return c;
  }

  /** zongji has no reconnect: stop it, keep what is complete, and start a new reader from the checkpoint. */
  async function restart(err: unknown): Promise<void> {
    if (restarting || state === "stopped" || state === "error") return;
    restarting = true;
    try {
      const errno = (err as { errno?: number }).errno;
      if (errno === 1236) {
        throw new ConfigError(
          ErrorCode.CHECKPOINT_PURGED,
          [
            `the source cannot serve the binlog from ${journal.checkpoint?.file}:${journal.checkpoint?.pos}: ${errorMessage(err)}`,
          ],
          { cause: err },
        );
      }
      if (mysqlErrorClass(err) === "fatal" && !(err as { code?: string }).code) throw err;
      lastError = errorMessage(err);
      reconnects++;
      telemetry.m.reconnects.inc();
      telemetry.error("source", lastError);
      const c = await stopAtCheckpoint();
      const wait = backoffMs(attempt++, cfg.capture.reconnect.initialMs, cfg.capture.reconnect.maxMs);
      log.warn(
        { err: lastError, retryInMs: wait, from: `${c.file}:${c.pos}` },
        "binlog reader failed; restarting from the checkpoint",
      );
      await sleep(wait, stop.signal);
      if ((state as CaptureState) === "stopped") return;
      reader.start(startFrom(journal.checkpoint!));
      if (userPaused) reader.pause();
    } catch (e) {
      if (!stop.signal.aborted) await fatal(e);
    } finally {
      restarting = false;
    }
  }

  const heartbeatTimer = setInterval(() => {
    assembler.heartbeat(reader.position());
    if (!flushScheduled) flush();
  }, cfg.capture.heartbeatIntervalMs);
  const trimTimer = setInterval(() => {
    try {
      journal.markPublished(publisher.acked);
      applyBackpressure();
    } catch (err) {
      void fatal(err);
    }
  }, cfg.capture.journal.trimIntervalMs);
  lease?.lost.then((err) => void fatal(err));

  async function shutdown(): Promise<void> {
    stop.abort();
    clearInterval(heartbeatTimer);
    clearInterval(trimTimer);
    await snapshots.close();
    await reader.stop();
    try {
      assembler.flush();
    } catch {
      // the journal may already be closed after a fatal error
    }
    await publisher.stop();
    journal.markPublished(publisher.acked);
    await cleanup();
  }

  /** Only while paused: the reader restarts at the new position, still paused. */
  async function setPosition(position: string): Promise<void> {
    if (!userPaused)
      throw new ConfigError(ErrorCode.CONFIG_INVALID, ["pause capture before moving its position"]);
    const conn = await mysql.createConnection({ ...connection, connectTimeout: 10_000 });
    let target: { file: string; pos: number; gtid: string | null };
    try {
      target = await resolvePosition(conn, position, facts);
    } finally {
      await conn.end().catch(() => {});
    }
    restarting = true; // no reconnect may race the move
    try {
      const c = await stopAtCheckpoint();
      journal.append([], { ...c, ...target });
      log.warn({ from: `${c.file}:${c.pos}`, to: position }, "read position moved by a control call");
      reader.start(startFrom(journal.checkpoint!));
      reader.pause();
    } finally {
      restarting = false;
    }
  }

  const status = (): CaptureStatus => {
    const pos = reader.position();
    const sourceTime = assembler.sourceTimeMs;
    return {
      state: state === "running" && userPaused ? "paused" : state,
      sourceId,
      position: positionText(pos),
      gtid: pos.gtid ?? "",
      rowsCaptured: assembler.rowsSeen,
      txnsCaptured: assembler.txnsSeen,
      rowsPublished: publisher.publishedRows,
      journal: journal.stats(),
      inFlight: publisher.inFlight,
      readerPaused: reader.isPaused,
      lagSeconds: sourceTime > 0 ? Math.max(0, (Date.now() - sourceTime) / 1000) : 0,
      reconnects,
      snapshot: snapshots.state,
      lastError: lastError || publisher.lastError || snapshots.lastError,
    };
  };
  current = status;

  if (snapshot.length > 0) {
    assembler.schemaSnapshot(snapshot, { file: cp.file, pos: cp.pos, gtid: cp.gtid });
    assembler.flush();
  }
  publisher.start();
  reader.start(startFrom(cp));
  log.info({ sourceId, from: `${cp.file}:${cp.pos}`, stream: streamName }, "capture running");

  const pause = () => {
    userPaused = true;
    reader.pause();
  };
  const resume = () => {
    userPaused = false;
    reader.resume();
  };
  let control: ControlServer;
  try {
    control = await serveControl({
      kind: "capture",
      port: cfg.capture.grpc.port,
      portKey: "capture.grpc.port",
      token: cfg.control.token,
      log,
      handlers: {
        health: () => healthOf(status()),
        status: () => stageStatus(status()),
        pause: () => {
          pause();
          return stageStatus(status());
        },
        resume: () => {
          resume();
          return stageStatus(status());
        },
        setPosition: async (req) => {
          await setPosition(req.position);
          return stageStatus(status());
        },
        snapshot: async (req) => ({ snapshotId: await snapshots.start(req.tables) }),
        activity: (req) => telemetry.activity.query(req),
      },
    });
  } catch (err) {
    await shutdown();
    throw err;
  }
  closers.push(() => control.close());
  setState(telemetry.service, "running");
  snapshots.resume();

  return {
    status,
    pause,
    resume,
    setPosition,
    snapshot: (tables) => snapshots.start(tables),
    endpoints: { http: http.port, grpc: control.port },
    telemetry,
    async stop() {
      if ((state as CaptureState) === "stopped") return;
      state = "stopped";
      await shutdown();
      resolveDone();
    },
    done,
  };
}
