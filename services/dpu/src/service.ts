import { ConfigError, createLogger, ErrorCode, type Logger, Scope } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { serveControl } from "@dfs/control";
import { healthOf, serveHttp } from "@dfs/metrics";
import { connectNats, ensureStreams, subjects } from "@dfs/nats";
import { dpuControl } from "./control.js";
import { deadLetterMessage, publishDeadLetters } from "./dlq.js";
import { mysqlSinkOf } from "./mysql-sink.js";
import { openPipeline } from "./pipeline/setup.js";
import { DpuRuntime, type DpuService } from "./runtime.js";
import type { Rejected } from "./sink.js";
import { StreamReader } from "./stream-reader.js";
import { DpuTelemetry } from "./telemetry.js";
import { TxnBuilder } from "./txn-builder.js";

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
  if (!cfg.target)
    throw new ConfigError(ErrorCode.CONFIG_INVALID, ["target: the DPU needs a target (target.url)"]);
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
    const nc = await connectNats({
      url: cfg.nats.url,
      token: cfg.nats.token,
      name: `dfs-${consumer}-${sourceId}`,
    });
    scope.defer(() => nc.close());
    await ensureStreams(nc, sourceId, streamSettings(cfg));
    const deadLetter = (rejected: Rejected[]) => publishDeadLetters(nc, sourceId, consumer, rejected);
    const pipeline = await openPipeline(cfg, { log, signal: stopping.signal });
    const sink = mysqlSinkOf(cfg, { log, signal: stopping.signal, deadLetter, events: telemetry, pipeline });
    const b = cfg.dpu.batch;
    // The queue holds two groups: the one being built and the next, while one is applied.
    const reader = new StreamReader({
      nc,
      stream,
      consumer,
      maxQueue: b.maxMessages * 2,
      maxQueueBytes: b.maxBytes * 2,
      maxPullBytes: MAX_PULL_BYTES,
      log,
    });
    const builder = new TxnBuilder({
      source: reader,
      sink,
      maxMessages: b.maxMessages,
      maxRows: b.maxRows,
      maxBytes: b.maxBytes,
      maxWaitMs: b.maxWaitMs,
      deadLetter,
      deadLetterMessage: (table, m, error) =>
        deadLetterMessage(nc, sourceId, consumer, table, m.data, m.seq, error),
      rejected: (r) => telemetry.rejected(r),
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
      scope,
      stopping,
    });
    await runtime.start();
    const control = scope.use(
      await serveControl({
        kind: "dpu",
        port: cfg.dpu.grpc.port,
        portKey: "dpu.grpc.port",
        token: cfg.control.token,
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

function streamSettings(cfg: DfsConfig) {
  const s = cfg.nats.stream;
  return {
    replicas: s.replicas,
    maxAgeMs: s.maxAge,
    maxBytes: s.maxBytes,
    duplicateWindowMs: s.duplicateWindow,
  };
}
