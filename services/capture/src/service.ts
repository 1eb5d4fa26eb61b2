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
  lastError: string;
}

export interface CaptureService {
  status(): CaptureStatus;
  /** Stops reading the binlog (publishing of what is journaled goes on). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
  /** Settles when the service stops; rejects on a fatal error (bad settings, purged checkpoint, lease lost). */
  readonly done: Promise<void>;
}

export interface CaptureDeps {
  log?: Logger;
}

/** Where a journal without a checkpoint starts, resolved to a concrete file+position now. */
async function initialCheckpoint(
  cfg: DfsConfig,
  conn: mysql.Connection,
  facts: SourceFacts,
): Promise<Checkpoint> {
  const start = cfg.source.start;
  const base = { committedScn: 0, txnOrdinal: 0, serverIdentity: facts.identity };
  const gtidVar = facts.isMariaDb ? "gtid_binlog_pos" : "gtid_executed";
  const [rows] = await conn.query(`SELECT @@GLOBAL.${gtidVar} AS g`).catch(() => [[{ g: null }]]);
  const currentGtid = ((rows as { g: string | null }[])[0]?.g ?? null) || null;
  switch (start.from) {
    case "position":
      return { ...base, file: start.file!, pos: start.position!, gtid: null };
    case "gtid":
      return { ...base, file: "", pos: 0, gtid: start.gtid! };
    case "earliest": {
      const first = facts.binlogs[0];
      if (!first)
        throw new ConfigError(ErrorCode.SOURCE_SETTINGS, [
          "the source has no binary logs (SHOW BINARY LOGS is empty)",
        ]);
      return { ...base, file: first.name, pos: 4, gtid: null };
    }
    default: {
      const last = facts.binlogs[facts.binlogs.length - 1];
      if (!last)
        throw new ConfigError(ErrorCode.SOURCE_SETTINGS, [
          "the source has no binary logs (SHOW BINARY LOGS is empty)",
        ]);
      return { ...base, file: last.name, pos: last.size, gtid: currentGtid };
    }
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
  const journal = new Journal(cfg.capture.journal.path);
  const closers: (() => unknown)[] = [() => journal.close()];
  const cleanup = async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
  };

  let facts: SourceFacts;
  const filter = new TableFilter({ include: cfg.source.include, exclude: cfg.source.exclude });
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

  let attempt = 0;
  let restarting = false;
  const reader: BinlogReader = new BinlogReader({
    connection,
    serverId: cfg.source.serverId,
    filter,
    handler: assembler,
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
    log.error({ err: lastError, code: (err as DfsError).code }, "capture stopped on a fatal error");
    await shutdown();
    rejectDone(err);
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
      await reader.stop();
      assembler.flush(); // complete transactions are valid: keep them
      journal.discardIncomplete();
      const c = journal.checkpoint!;
      assembler.reset(journal.nextScn, c.txnOrdinal);
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

  if (snapshot.length > 0) {
    assembler.schemaSnapshot(snapshot, { file: cp.file, pos: cp.pos, gtid: cp.gtid });
    assembler.flush();
  }
  publisher.start();
  reader.start(startFrom(cp));
  log.info({ sourceId, from: `${cp.file}:${cp.pos}`, stream: streamName }, "capture running");

  return {
    status() {
      const pos = reader.position();
      return {
        state: state === "running" && userPaused ? "paused" : state,
        sourceId,
        position: pos.file ? `${pos.file}:${pos.pos}` : "",
        gtid: pos.gtid ?? "",
        rowsCaptured: assembler.rowsSeen,
        txnsCaptured: assembler.txnsSeen,
        rowsPublished: publisher.publishedRows,
        journal: journal.stats(),
        inFlight: publisher.inFlight,
        readerPaused: reader.isPaused,
        lastError: lastError || publisher.lastError,
      };
    },
    pause() {
      userPaused = true;
      reader.pause();
    },
    resume() {
      userPaused = false;
      reader.resume();
    },
    async stop() {
      if ((state as CaptureState) === "stopped") return;
      state = "stopped";
      await shutdown();
      resolveDone();
    },
    done,
  };
}
