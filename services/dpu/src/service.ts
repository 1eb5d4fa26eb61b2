import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import {
  ConfigError,
  createLogger,
  type DfsError,
  ErrorCode,
  errorMessage,
  type Logger,
  Scope,
} from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { serveControl } from "@dfs/control";
import { healthOf, serveHttp } from "@dfs/metrics";
import {
  acquireLease,
  connectNatsWithRetry,
  ensureStreamsWithRetry,
  type Lease,
  type NatsConnection,
  streamSettingsOf,
  subjects,
} from "@dfs/nats";
import { archiveSinkOf } from "./archive/sink.js";
import { ChunkedSource } from "./chunked-source.js";
import { dpuControl } from "./control.js";
import { deadLetterMessage, publishDeadLetters } from "./dlq.js";
import { joinGroup } from "./group.js";
import { mysqlSinkOf } from "./mysql-sink.js";
import { openPipeline } from "./pipeline/setup.js";
import { DpuRuntime, type DpuService } from "./runtime.js";
import type { Rejected } from "./sink.js";
import { StreamReader } from "./stream-reader.js";
import { DpuTelemetry } from "./telemetry.js";
import { TxnBuilder } from "./txn-builder.js";
import { serveVerifyResults } from "./verify-metrics.js";

export interface DpuDeps {
  log?: Logger;
}

/** Prefetch bound of a pull: well under the server's per-client pending limit (64 MiB by default). */
const MAX_PULL_BYTES = 16 * 1024 * 1024;
/** Groups smaller than this go on one connection: splitting them costs more than it saves. */
const PARALLEL_FROM_ROWS = 256;

/**
 * The composition root of the DPU: HTTP endpoint (probes see "starting" meanwhile), NATS and the
 * stream, then the data path from its end: sink <- transaction builder <- stream reader; the runtime
 * that loops over them, and the control plane.
 */
export async function startDpu(cfg: DfsConfig, deps: DpuDeps = {}): Promise<DpuService> {
  const log = deps.log ?? createLogger({ level: cfg.log.level, name: "dpu" });
  if (!cfg.target && !cfg.archive)
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      "target: the DPU needs a target (target.url), or an archive (archive.dir) for a backup",
    ]);
  const sourceId = cfg.source.id;
  const consumer = `dpu-${cfg.dpu.group}`;
  const stream = subjects.streamName(sourceId);
  const telemetry = new DpuTelemetry(sourceId, cfg.dpu.group);
  const scope = new Scope();
  const stopping = new AbortController();
  let runtime: DpuRuntime | null = null;
  try {
    const http = scope.use(
      await serveHttp({
        port: cfg.dpu.http.port,
        portKey: "dpu.http.port",
        registry: telemetry.registry,
        health: () => healthOf(runtime?.status()),
        beforeScrape: () => runtime && telemetry.update(runtime.status()),
      }),
    );
    // The last `dfs verify` results, kept in the target by the one-shot command, as dfs_verify_*.
    scope.defer(serveVerifyResults(cfg, telemetry.registry, log));
    // A DPU started before NATS (or before a cluster has its leaders) waits for it.
    const waiting = {
      ...cfg.dpu.retry,
      signal: stopping.signal,
      onRetry: (err: unknown, ms: number) =>
        log.warn({ err: errorMessage(err), retryInMs: ms }, "NATS / JetStream not ready yet"),
    };
    const nc = await connectNatsWithRetry({ ...cfg.nats, name: `dfs-${consumer}-${sourceId}` }, waiting);
    scope.defer(() => nc.close());
    await ensureStreamsWithRetry(nc, sourceId, streamSettingsOf(cfg.nats.stream), waiting);
    // Replicas of one group: one applies, the others wait here until its lease ends.
    const lease = await takeLease(cfg, nc, consumer, log, stopping.signal);
    if (lease) scope.defer(() => lease.release());
    const group = await joinGroup(nc, { sourceId, group: cfg.dpu.group, log, signal: stopping.signal });
    const deadLetter = (rejected: Rejected[]) => publishDeadLetters(nc, sourceId, consumer, rejected);
    // The sink: the target database, or (the backup use, no target) the SQLite archive.
    const sink = cfg.target
      ? mysqlSinkOf(cfg, {
          log,
          signal: stopping.signal,
          deadLetter,
          events: telemetry,
          pipeline: await openPipeline(cfg, { log, signal: stopping.signal }),
        })
      : archiveSinkOf(cfg, { log, events: telemetry });
    const b = cfg.dpu.batch;
    // The queue holds two groups: the one being built and the next, while one is applied.
    const reader = new StreamReader({
      nc,
      stream,
      consumer,
      maxQueue: b.maxMessages * 2,
      maxQueueBytes: b.maxBytes * 2,
      maxPullBytes: MAX_PULL_BYTES,
      applied: () => runtime?.status().appliedSeq ?? 0,
      retry: waiting,
      log,
    });
    const builder = new TxnBuilder({
      // Messages larger than NATS's max_payload come as chunks: joined before the builder sees them.
      source: new ChunkedSource(reader, log),
      sink,
      maxMessages: b.maxMessages,
      maxRows: b.maxRows,
      maxBytes: b.maxBytes,
      maxWaitMs: b.maxWaitMs,
      deadLetter,
      deadLetterMessage: (table, m, error) =>
        deadLetterMessage(nc, sourceId, consumer, table, m.data, m.seq, error),
      rejected: (r) => telemetry.rejected(r),
      ...(group ? { accepts: group.accepts } : {}),
      acceptLossThrough: cfg.dpu.acceptLossThrough,
      onLost: (n) => telemetry.m.lost.inc(n),
      sourceId,
      log,
    });
    runtime = new DpuRuntime({
      sourceId,
      consumer,
      log,
      nc,
      telemetry,
      reader,
      builder,
      sink,
      parallelFromRows: PARALLEL_FROM_ROWS,
      retry: cfg.dpu.retry,
      ...(group ? { accepts: group.accepts } : {}),
      scope,
      stopping,
    });
    await runtime.start();
    const running = runtime;
    void lease?.lost.then((err) => running.abort(err));
    const control = scope.use(
      await serveControl({
        kind: "dpu",
        port: cfg.dpu.grpc.port,
        portKey: "dpu.grpc.port",
        token: cfg.control.token,
        host: cfg.control.host,
        tls: cfg.control.tls,
        log,
        handlers: dpuControl(runtime, nc, sourceId, stream),
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

/** Lease lifetime bucket of the DPUs' leases (apart from capture's, whose TTL is longer). */
const LEASE_BUCKET = "dfs_dpu_leases";

/**
 * The lease of this DPU's group (none when dpu.lease.enabled is off): the consumer dpu-<group> is
 * re-created at the checkpoint whenever a DPU starts reading, so only one replica may read it.
 * A standby waits here, as long as it takes, until the active replica's lease ends.
 */
async function takeLease(
  cfg: DfsConfig,
  nc: NatsConnection,
  consumer: string,
  log: Logger,
  signal: AbortSignal,
): Promise<Lease | null> {
  if (!cfg.dpu.lease.enabled) return null;
  const key = `dpu.${cfg.source.id}.${cfg.dpu.group}`;
  const holder = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const take = (waitMs: number) =>
    acquireLease(nc, { bucket: LEASE_BUCKET, key, holder, ttlMs: cfg.dpu.lease.ttlMs, waitMs, signal });
  try {
    return await take(0);
  } catch (err) {
    if ((err as DfsError).code !== ErrorCode.LEASE_HELD) throw err;
    log.info(
      { consumer, lease: key, err: errorMessage(err) },
      "standing by: another replica of this group applies",
    );
    const lease = await take(Number.MAX_SAFE_INTEGER);
    log.info({ consumer, lease: key }, "took over: this replica applies now");
    return lease;
  }
}
