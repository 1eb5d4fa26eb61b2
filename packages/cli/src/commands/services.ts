import { Worker } from "node:worker_threads";
import { formatTableRef } from "@dfs/codec";
import { createLogger, DfsError, ErrorCode } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { describeConfig, loadConfig } from "@dfs/config";
import { connectNats } from "@dfs/nats";
import { ExitCode } from "../exit.js";
import { ensureControlToken, type Hosted, monitorConfigFor } from "./hosted.js";
import type { ServiceKind } from "./service-worker.js";

/** Runs until SIGINT/SIGTERM or until one of the services fails. */
async function runUntilSignal(services: { stop(): Promise<void>; done: Promise<void> }[]): Promise<number> {
  const stopAll = () => Promise.all(services.map((s) => s.stop().catch(() => {})));
  process.once("SIGINT", () => void stopAll());
  process.once("SIGTERM", () => void stopAll());
  try {
    await Promise.race(services.map((s) => s.done));
    await Promise.all(services.map((s) => s.done));
    return 0;
  } finally {
    await stopAll();
  }
}

/** `dfs dpu -c FILE`: applies the source's stream to the target. */
export async function runDpu(o: { config?: string }): Promise<number> {
  const cfg = loadConfig(o.config);
  const log = createLogger({ level: cfg.log.level, name: "dpu" });
  log.info({ config: describeConfig(cfg) }, "starting dpu");
  const { startDpu } = await import("@dfs/dpu");
  return runUntilSignal([await startDpu(cfg, { log })]);
}

/** `dfs relmgr -c FILE`: the relationship graph, table groups and the plan DPUs follow. */
export async function runRelmgr(o: { config?: string }): Promise<number> {
  const cfg = loadConfig(o.config);
  const log = createLogger({ level: cfg.log.level, name: "relmgr" });
  log.info({ config: describeConfig(cfg) }, "starting relmgr");
  const { startRelmgr } = await import("@dfs/relmgr");
  return runUntilSignal([await startRelmgr(cfg, { log })]);
}

/** Whether `dfs run` starts relmgr: the pipeline use, or table groups in play. */
export function wantsRelmgr(cfg: DfsConfig): boolean {
  return Boolean(cfg.pipeline) || cfg.relmgr.groups.length > 0 || cfg.dpu.group !== "default";
}

/**
 * Capture or the DPU on a worker thread (see service-worker.ts), as a service the parent can stop
 * and await. Bounded heaps keep V8 from growing a worker's memory far past what it holds: the old
 * space by <service>.heapLimitMb, the young generation small (short-lived rows die young anyway).
 */
async function startServiceWorker(
  cfg: DfsConfig,
  kind: ServiceKind,
): Promise<{ stop(): Promise<void>; done: Promise<void>; endpoints: { http: number; grpc: number } }> {
  const heapLimitMb = kind === "capture" ? cfg.capture.heapLimitMb : cfg.dpu.heapLimitMb;
  const worker = new Worker(new URL("./service-worker.js", import.meta.url), {
    workerData: { cfg, kind },
    resourceLimits: { maxOldGenerationSizeMb: heapLimitMb, maxYoungGenerationSizeMb: 16 },
  });
  let ready!: (endpoints: { http: number; grpc: number }) => void;
  let failed!: (e: Error) => void;
  const started = new Promise<{ http: number; grpc: number }>((res, rej) => {
    ready = res;
    failed = rej;
  });
  const done = new Promise<void>((resolve, reject) => {
    worker.on(
      "message",
      (m: { kind: string; message?: string; code?: string; endpoints?: { http: number; grpc: number } }) => {
        if (m.kind === "ready") ready(m.endpoints!);
        if (m.kind === "error") {
          const err = new DfsError((m.code as ErrorCode) ?? ErrorCode.ASSERTION, `${kind}: ${m.message}`);
          failed(err);
          reject(err);
        }
      },
    );
    worker.on("error", (e) => {
      const err =
        (e as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY"
          ? new DfsError(
              ErrorCode.ASSERTION,
              `${kind}: out of memory: its heap reached ${kind}.heapLimitMb (${heapLimitMb} MiB); raise it${kind === "dpu" ? ", or lower dpu.batch.maxBytes and maxRows" : ", or lower capture.maxBufferBytes and capture.publish.maxInFlightBytes"}`,
            )
          : e;
      failed(err);
      reject(err);
    });
    worker.on("exit", () => resolve());
  });
  done.catch(() => {});
  const endpoints = await started;
  return {
    endpoints,
    async stop() {
      worker.postMessage("stop");
      await done.catch(() => {});
    },
    done,
  };
}

/**
 * `dfs run -c FILE`: every built service in one process: capture and, when a target or an archive
 * is set, the DPU, each on a worker thread, and the monitor (on the main thread) watching both.
 */
export async function runAll(o: { config?: string }): Promise<number> {
  const given = loadConfig(o.config);
  const { cfg, generated } = ensureControlToken(given);
  const base = createLogger({ level: cfg.log.level });
  base.info({ config: describeConfig(cfg) }, "starting dfs run");
  // Started side by side: each worker loads its code and connects on its own thread meanwhile (one
  // after the other, the DPU started about 0.6 s after capture was ready).
  type Started = {
    kind: Hosted["kind"];
    service: { stop(): Promise<void>; done: Promise<void> };
    endpoints: Hosted["endpoints"];
  };
  const starting: Promise<Started>[] = [
    startServiceWorker(cfg, "capture").then((s) => ({ kind: "capture", service: s, endpoints: s.endpoints })),
  ];
  if (wantsRelmgr(cfg))
    // Light work (a graph, a plan, look-ups): on the main thread, beside the monitor.
    starting.push(
      import("@dfs/relmgr")
        .then(({ startRelmgr }) => startRelmgr(cfg, { log: base.child({ svc: "relmgr" }) }))
        .then((s) => ({ kind: "relmgr", service: s, endpoints: s.endpoints })),
    );
  // The DPU writes to the target, or (the backup use) to the archive.
  if (cfg.target || cfg.archive)
    starting.push(
      startServiceWorker(cfg, "dpu").then((s) => ({ kind: "dpu", service: s, endpoints: s.endpoints })),
    );
  const monitorCode = import("@dfs/monitor"); // loaded on this thread while the workers start
  monitorCode.catch(() => {}); // awaited below, unless a service fails to start first
  const settled = await Promise.allSettled(starting);
  const started = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) {
    // One did not start: the others stop again, and the first failure is the answer.
    await Promise.all(started.map((s) => s.service.stop().catch(() => {})));
    throw failure.reason;
  }
  const services = started.map((s) => s.service);
  const hosted: Hosted[] = started.map((s) => ({ kind: s.kind, endpoints: s.endpoints }));
  const { startMonitor } = await monitorCode;
  const monitor = await startMonitor(monitorConfigFor(cfg, hosted), { log: base.child({ svc: "monitor" }) });
  services.push(monitor);
  console.error(
    `dfs run: monitor at ${monitorUrl(cfg, monitor.port)}${generated ? ` (sign in with the token ${cfg.control.token}, made for this run; set control.token or DFS_CONTROL_TOKEN to choose one)` : " (sign in with control.token)"}`,
  );
  return runUntilSignal(services);
}

/** The monitor's address as a browser on this host reaches it. */
function monitorUrl(cfg: DfsConfig, port: number): string {
  const h = cfg.monitor.http.host;
  const host = h === "0.0.0.0" || h === "::" ? "127.0.0.1" : h.includes(":") ? `[${h}]` : h;
  return `${cfg.monitor.http.tls ? "https" : "http"}://${host}:${port}/`;
}

/** `dfs dlq list -c FILE`: the dead letters, one per line (tab-separated). */
export async function runDlqList(o: { config?: string }): Promise<number> {
  const cfg = loadConfig(o.config);
  const { listDeadLetters } = await import("@dfs/dpu");
  const nc = await connectNats({ ...cfg.nats, name: "dfs-dlq" });
  try {
    const entries = await listDeadLetters(nc, cfg.source.id);
    console.log("SEQ\tTABLE\tSTREAM_SEQ\tROW\tERRNO\tERROR");
    for (const e of entries)
      console.log(`${e.seq}\t${formatTableRef(e)}\t${e.streamSeq}\t${e.rowIndex}\t${e.errno}\t${e.error}`);
    console.error(`${entries.length} dead letter(s)`);
  } finally {
    await nc.close();
  }
  return ExitCode.OK;
}

/**
 * `dfs dlq replay -c FILE [--seq N ...]`: applies dead letters again (all, or those named) and
 * removes those that applied. Exit code 65 when some still fail (their data is still refused).
 */
export async function runDlqReplay(o: { config?: string; seq?: number[]; force?: boolean }): Promise<number> {
  const cfg = loadConfig(o.config);
  const { replayFromConfig } = await import("@dfs/dpu");
  const nc = await connectNats({ ...cfg.nats, name: "dfs-dlq-replay" });
  const log = createLogger({ level: cfg.log.level, name: "dlq-replay", destination: 2 });
  const results = await replayFromConfig(cfg, nc, o.seq ?? [], log, { force: o.force === true }).finally(() =>
    nc.close(),
  );
  for (const r of results) {
    const what = !r.ok
      ? `failed: ${r.error}`
      : r.superseded
        ? `superseded by stream message ${r.superseded} (not applied: the row has a newer image; removed)`
        : "replayed";
    console.log(`${r.seq}\t${r.table}\t${what}`);
  }
  const failed = results.filter((r) => !r.ok).length;
  const superseded = results.filter((r) => r.superseded).length;
  console.error(
    `${results.length - failed - superseded} replayed, ${superseded} superseded, ${failed} failed`,
  );
  return failed > 0 ? ExitCode.DATAERR : ExitCode.OK;
}
