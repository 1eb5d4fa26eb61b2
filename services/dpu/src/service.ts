import { decodeDdl, decodeHeartbeat, Headers } from "@dfs/codec";
import { ConfigError, createLogger, ErrorCode, errorMessage, type Logger } from "@dfs/common";
import { type DfsConfig, parseMysqlUrl } from "@dfs/config";
import { type ControlServer, serveControl } from "@dfs/control";
import { type HttpEndpoint, healthOf, serveHttp, setState } from "@dfs/metrics";
import { connectNats, ensureStreams, subjects } from "@dfs/nats";
import { AckPolicy, DeliverPolicy, type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import mysql from "mysql2/promise";
import { Applier, type Rejected } from "./apply.js";
import { changesOf, decodeBatch } from "./changes.js";
import { listDeadLetters, publishDeadLetters } from "./dlq.js";
import type { Change } from "./plan.js";
import { replayDeadLetters } from "./replay.js";
import { TargetCatalog } from "./target.js";
import { DpuTelemetry, stageStatus } from "./telemetry.js";

export interface DpuStatus {
  state: "running" | "paused" | "stopped" | "error";
  consumer: string;
  appliedSeq: number;
  rowsApplied: number;
  deadLettered: number;
  retries: number;
  queued: number;
  /** Stream messages after the checkpoint (delivered or not). */
  pending: number;
  /** Seconds the target is behind the source, from the last heartbeat applied. */
  lagSeconds: number;
  lastError: string;
}

export interface DpuService {
  status(): DpuStatus;
  pause(): void;
  resume(): void;
  /**
   * Moves the checkpoint to a stream sequence ("earliest", "latest", "seq:N" or N); only while
   * paused. Applying resumes after it: earlier messages are applied again (idempotent upserts),
   * skipped ones are not applied.
   */
  setPosition(position: string): Promise<void>;
  /** The ports actually bound (the config may say 0 = any free port). */
  readonly endpoints: { http: number; grpc: number };
  readonly telemetry: DpuTelemetry;
  stop(): Promise<void>;
  /** Settles when the DPU stops; rejects on a fatal error. */
  readonly done: Promise<void>;
}

/** Waits for "something happened" (a message arrived, resume, stop). */
class Signal {
  private waiters: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
  fire(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

/**
 * Builds and starts the DPU, in order: target connection and checkpoint, NATS and the durable
 * consumer, then the apply loop. The one wiring function of this service.
 */
export async function startDpu(cfg: DfsConfig, deps: { log?: Logger } = {}): Promise<DpuService> {
  const log = deps.log ?? createLogger({ level: cfg.log.level, name: "dpu" });
  const target = cfg.target;
  if (!target)
    throw new ConfigError(ErrorCode.CONFIG_INVALID, ["target: the DPU needs a target (target.url)"]);
  const sourceId = cfg.source.id;
  const consumerName = `dpu-${cfg.dpu.group}`;
  const stop = new AbortController();
  const telemetry = new DpuTelemetry(sourceId, cfg.dpu.group);
  let current: (() => DpuStatus) | null = null;
  const http: HttpEndpoint = await serveHttp({
    port: cfg.dpu.http.port,
    portKey: "dpu.http.port",
    registry: telemetry.registry,
    health: () => healthOf(current?.()),
    beforeScrape: () => {
      const st = current?.();
      if (st) telemetry.update(st);
    },
  });
  try {
    return await wire();
  } catch (err) {
    await http.close();
    throw err;
  }

  async function wire(): Promise<DpuService> {
    const t = parseMysqlUrl(target!.url);
    const targetDb = target!.database;

    // Sync: a table missing in the target is created from the source's definition.
    let sourceConn: mysql.Connection | null = null;
    const sourceDefinition = async (db: string, table: string): Promise<string | null> => {
      const s = parseMysqlUrl(cfg.source.url);
      sourceConn ??= await mysql.createConnection({
        host: s.host,
        port: s.port,
        user: s.user,
        password: s.password,
      });
      const [rows] = await sourceConn
        .query(`SHOW CREATE TABLE \`${db.replace(/`/g, "``")}\`.\`${table.replace(/`/g, "``")}\``)
        .catch(() => [[]]);
      const row = (rows as Record<string, string>[])[0];
      return row ? (row["Create Table"] ?? null) : null;
    };
    const catalog = new TargetCatalog({ mapDb: (db) => targetDb ?? db, sourceDefinition, log });
    const nc = await connectNats({
      url: cfg.nats.url,
      token: cfg.nats.token,
      name: `dfs-${consumerName}-${sourceId}`,
    });
    const applier = new Applier({
      connection: { host: t.host, port: t.port, user: t.user, password: t.password },
      catalog,
      consumer: `${sourceId}:${consumerName}`,
      metaDatabase: cfg.dpu.metaDatabase,
      statementRows: cfg.dpu.batch.statementRows,
      retry: cfg.dpu.retry,
      log,
      signal: stop.signal,
      deadLetter: (rejected: Rejected[]) => publishDeadLetters(nc, sourceId, consumerName, rejected),
      events: telemetry,
    });

    const stream = subjects.streamName(sourceId);
    await ensureStreams(nc, sourceId, {
      replicas: cfg.nats.stream.replicas,
      maxAgeMs: cfg.nats.stream.maxAge,
      maxBytes: cfg.nats.stream.maxBytes,
      duplicateWindowMs: cfg.nats.stream.duplicateWindow,
    });
    const jsm = await jetstreamManager(nc);
    let appliedSeq = await applier.checkpoint();
    const queue: JsMsg[] = [];
    const signal = new Signal();
    let state: DpuStatus["state"] = "running";
    let lastError = "";
    const maxQueue = cfg.dpu.batch.maxMessages * 4;
    let messages: Awaited<
      ReturnType<Awaited<ReturnType<ReturnType<typeof jetstream>["consumers"]["get"]>>["consume"]>
    >;
    let reading: Promise<void> = Promise.resolve();
    /** Which consumer instance the reader belongs to; bumped when the consumer is replaced. */
    let generation = 0;

    /**
     * (Re)creates the durable consumer at checkpoint + 1 and starts reading it. Delivery never resumes
     * at the consumer's old position: messages delivered but not acknowledged (a crashed process's
     * prefetch, or messages lost when NATS cut a slow client off) would come back only after
     * ack_wait, behind newer ones, and the checkpoint would have passed them.
     */
    async function openConsumer(): Promise<void> {
      await jsm.consumers.delete(stream, consumerName).catch(() => {}); // none yet: nothing to delete
      await jsm.consumers.add(stream, {
        durable_name: consumerName,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: appliedSeq + 1,
        max_ack_pending: 20_000,
        ack_wait: 300_000_000_000, // 5 min: the checkpoint, not redelivery, protects against doubles
      });
      const consumer = await jetstream(nc).consumers.get(stream, consumerName);
      // Prefetch bounded by bytes, well under the server's per-client pending limit (64 MiB by
      // default): past it the server drops the connection as a slow consumer.
      const current = await consumer.consume({ max_bytes: 16 * 1024 * 1024 });
      const gen = ++generation;
      messages = current;
      queue.length = 0;
      reading = (async () => {
        for await (const m of current) {
          if (gen !== generation) break; // a reader of a replaced consumer: its messages are stale
          queue.push(m);
          signal.fire();
          while (queue.length >= maxQueue && gen === generation && !stop.signal.aborted) await signal.wait();
        }
      })();
    }

    /** Whether the stream still holds any message with a sequence in [from, to). */
    async function anyStored(from: number, to: number): Promise<boolean> {
      const info = await jsm.streams.info(stream);
      const start = Math.max(from, info.state.first_seq);
      // A long run of missing sequences is read again rather than checked one by one.
      if (to - start > 1000) return true;
      for (let seq = start; seq < to; seq++) {
        if (await jsm.streams.getMessage(stream, { seq }).catch(() => null)) return true;
      }
      return false;
    }

    /** A message is missing between the checkpoint and what arrived: read again from the checkpoint. */
    async function reopen(seenSeq: number): Promise<void> {
      log.warn(
        { appliedSeq, seenSeq },
        "stream messages missing from delivery (e.g. the connection was cut): re-reading from the checkpoint",
      );
      await readFromCheckpoint();
    }

    /** Drops the current reader and reads again from the message after the checkpoint. */
    async function readFromCheckpoint(): Promise<void> {
      // The old reader is not awaited (its pending pull may take a while to end); its generation
      // is stale from here on, so it can no longer add to the queue.
      generation++;
      void messages.close().catch(() => {});
      signal.fire();
      await openConsumer();
    }

    await openConsumer();
    log.info({ consumer: consumerName, stream, checkpoint: appliedSeq }, "dpu starting");

    /** Capture times (ms) of the messages in the unit being applied, for the end-to-end histogram. */
    let unitCaptureMs: number[] = [];
    let unitHeartbeatMs = 0;

    async function changesFor(m: JsMsg): Promise<Change[]> {
      const batch = decodeBatch(m.data);
      unitCaptureMs.push(Number(batch.captureTimeMs));
      const table = await applier.withRetry("describe the target table", (conn) =>
        catalog.table(conn, batch.db, batch.table),
      );
      if (table) return changesOf(batch, m.seq, table);
      // No such table in the target and none on the source to copy: these rows cannot be applied.
      const rejected = changesOf(batch, m.seq, {
        db: catalog.mapDb(batch.db),
        table: batch.table,
        columns: new Set(),
        key: [],
        keyKind: "none",
      }).map((change) => ({
        change,
        error: `target table ${catalog.mapDb(batch.db)}.${batch.table} does not exist`,
        errno: 1146,
      }));
      await publishDeadLetters(nc, sourceId, consumerName, rejected);
      applier.rejectedTotal += rejected.length;
      telemetry.rejected(rejected);
      return [];
    }

    /** Takes the next unit off the queue: messages up to a DDL (a barrier) or the batch limits. */
    async function applyNext(): Promise<void> {
      const unit: JsMsg[] = [];
      const changes: Change[] = [];
      unitCaptureMs = [];
      unitHeartbeatMs = 0;
      while (queue.length > 0) {
        const m = queue[0]!;
        if (m.seq <= appliedSeq) {
          queue.shift(); // already in the target (a redelivery after a restart)
          m.ack();
          continue;
        }
        // Delivery must be gap-free: the next message is the one after the last taken, unless the
        // ones in between are gone from the stream (deleted, expired).
        const expected = (unit.length > 0 ? unit[unit.length - 1]!.seq : appliedSeq) + 1;
        if (m.seq !== expected) {
          if (unit.length > 0) break; // apply what is contiguous first
          if (await anyStored(expected, m.seq)) {
            await reopen(m.seq);
            return;
          }
        }
        const kind = m.headers?.get(Headers.kind);
        if (kind === "ddl") {
          if (unit.length > 0) break;
          queue.shift();
          const ddl = decodeDdl(m.data);
          await applier.applyDdl(ddl.db, ddl.statement, m.seq, ddl.tables);
          appliedSeq = m.seq;
          m.ack();
          continue;
        }
        if (unit.length >= cfg.dpu.batch.maxMessages || changes.length >= cfg.dpu.batch.maxRows) break;
        queue.shift();
        unit.push(m);
        if (kind === "batch") changes.push(...(await changesFor(m)));
        else if (kind === "heartbeat") unitHeartbeatMs = Number(decodeHeartbeat(m.data).sourceTimeMs);
      }
      if (unit.length === 0) return;
      const last = unit[unit.length - 1]!.seq;
      if (changes.length > 0) await applier.applyUnit(changes, last);
      else await applier.advance(last);
      appliedSeq = last;
      for (const m of unit) m.ack();
      const now = Date.now();
      for (const ms of unitCaptureMs) telemetry.m.endToEnd.observe(Math.max(0, now - ms) / 1000);
      if (unitHeartbeatMs > 0) telemetry.heartbeatSourceMs = unitHeartbeatMs;
      signal.fire();
    }

    let resolveDone!: () => void;
    let rejectDone!: (e: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolveDone = res;
      rejectDone = rej;
    });
    done.catch(() => {});

    /** The unit being applied, so a position change can wait for it. */
    let applying: Promise<void> | null = null;
    const loop = (async () => {
      while (!stop.signal.aborted) {
        if (queue.length === 0 || (state as DpuStatus["state"]) === "paused") {
          await signal.wait();
          continue;
        }
        try {
          applying = applyNext();
          await applying;
        } catch (err) {
          if (stop.signal.aborted) break;
          state = "error";
          lastError = errorMessage(err);
          telemetry.service.errors.inc({ kind: "fatal" });
          telemetry.activity.add({ kind: "error", text: lastError });
          log.error({ err: lastError }, "dpu stopped on an error");
          rejectDone(err);
          break;
        }
      }
    })();

    /** Consumer's count of messages not yet acknowledged, refreshed in the background. */
    let pending = 0;
    const pendingTimer = setInterval(() => {
      jsm.consumers
        .info(stream, consumerName)
        .then((ci) => {
          pending = ci.num_pending + ci.num_ack_pending;
        })
        .catch(() => {});
    }, 2000);

    async function setPosition(position: string): Promise<void> {
      if (state !== "paused")
        throw new ConfigError(ErrorCode.CONFIG_INVALID, ["pause the dpu before moving its position"]);
      const p = position.trim();
      let seq: number;
      if (p === "earliest") seq = 0;
      else if (p === "latest") seq = (await jsm.streams.info(stream)).state.last_seq;
      else if (/^(seq:)?\d+$/.test(p)) seq = Number(p.replace("seq:", ""));
      else
        throw new ConfigError(ErrorCode.CONFIG_INVALID, [
          `position ${JSON.stringify(p)}: must be "earliest", "latest" or a stream sequence ("seq:N" or N)`,
        ]);
      await applying?.catch(() => {});
      await applier.advance(seq);
      log.warn({ from: appliedSeq, to: seq }, "checkpoint moved by a control call");
      appliedSeq = seq;
      await readFromCheckpoint();
    }

    const status = (): DpuStatus => ({
      state,
      consumer: consumerName,
      appliedSeq,
      rowsApplied: applier.rowsApplied,
      deadLettered: applier.rejectedTotal,
      retries: applier.retries,
      queued: queue.length,
      pending: Math.max(pending, queue.length),
      lagSeconds: telemetry.lagSeconds(),
      lastError: lastError || applier.lastError,
    });
    current = status;
    const pause = () => {
      if (state === "running") state = "paused";
    };
    const resume = () => {
      if (state === "paused") state = "running";
      signal.fire();
    };

    let control: ControlServer | null = null;
    async function shutdown(): Promise<void> {
      stop.abort();
      clearInterval(pendingTimer);
      await control?.close();
      signal.fire();
      await messages.close().catch(() => {});
      await loop;
      await reading.catch(() => {});
      await applier.close();
      await sourceConn?.end().catch(() => {});
      await nc.close().catch(() => {});
      await http.close();
    }

    const stageNow = () => stageStatus(status(), sourceId, stream);
    try {
      control = await serveControl({
        kind: "dpu",
        port: cfg.dpu.grpc.port,
        portKey: "dpu.grpc.port",
        token: cfg.control.token,
        log,
        handlers: {
          health: () => healthOf(status()),
          status: stageNow,
          pause: () => {
            pause();
            return stageNow();
          },
          resume: () => {
            resume();
            return stageNow();
          },
          setPosition: async (req) => {
            await setPosition(req.position);
            return stageNow();
          },
          listDlq: async (req) => {
            const entries = await listDeadLetters(nc, sourceId, req.limit > 0 ? req.limit : 100);
            return {
              entries: entries
                .filter((e) => !req.table || `${e.db}.${e.table}` === req.table)
                .map((e) => ({
                  seq: BigInt(e.seq),
                  subject: e.subject,
                  db: e.db,
                  table: e.table,
                  error: e.errno ? `${e.error} (errno ${e.errno})` : e.error,
                  timeMs: BigInt(e.timeMs),
                  rows: 1,
                })),
            };
          },
          replayDlq: async (req) => {
            const results = await replayDeadLetters(
              cfg,
              req.seqs.map((s) => Number(s)),
            );
            for (const r of results.filter((x) => !x.ok))
              telemetry.activity.add({
                kind: "error",
                text: `replay of dead letter ${r.seq} failed: ${r.error}`,
              });
            return { replayed: results.filter((r) => r.ok).length };
          },
          activity: (req) => telemetry.activity.query(req),
        },
      });
    } catch (err) {
      await shutdown();
      throw err;
    }
    setState(telemetry.service, "running");

    return {
      status,
      pause,
      resume,
      setPosition,
      endpoints: { http: http.port, grpc: control.port },
      telemetry,
      async stop() {
        if (state === "stopped") return;
        const failed = state === "error";
        state = "stopped";
        await shutdown();
        if (!failed) resolveDone();
      },
      done,
    };
  }
}
