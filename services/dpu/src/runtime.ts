import { Position, parseStreamPoint, type TableRef } from "@dfs/codec";
import {
  backoffMs,
  Completion,
  ConfigError,
  ErrorCode,
  errorMessage,
  type Logger,
  type Scope,
  Signal,
  sleep,
  TransientError,
} from "@dfs/common";
import { setState } from "@dfs/metrics";
import type { NatsConnection } from "@nats-io/transport-node";
import { scheduleLanes } from "./conflicts.js";
import { type ReplayResult, replayDeadLetters } from "./replay.js";
import type { ApplyGroup, Sink } from "./sink.js";
import type { StreamReader } from "./stream-reader.js";
import type { DpuTelemetry } from "./telemetry.js";
import type { DdlStep, Group, LargePart, TxnBuilder } from "./txn-builder.js";

export interface DpuStatus {
  state: "starting" | "running" | "paused" | "stopped" | "error";
  consumer: string;
  /** The last stream sequence up to which everything is in the target (the low-water mark). */
  appliedSeq: number;
  /** The source position of the last message applied that carried one. */
  position: Position;
  rowsApplied: number;
  deadLettered: number;
  retries: number;
  queued: number;
  /** Stream messages after the checkpoint (delivered or not). */
  pending: number;
  /** Seconds the target is behind the source, from the last heartbeat applied. */
  lagSeconds: number;
  /** Age in the stream of the oldest message after the checkpoint (0 when none). */
  oldestPendingAgeSeconds: number;
  /** The stream's max age (0: kept forever). */
  streamMaxAgeSeconds: number;
  /** What the DPU waits for while it retries a write ("" when it does not). */
  waitingFor: string;
  /** Connections applying in parallel. */
  connections: number;
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
  /** Applies dead letters again (all, or the given DLQ sequences), between groups. */
  replayDlq(seqs: readonly number[]): Promise<ReplayResult[]>;
  /** The ports actually bound (the config may say 0 = any free port). */
  readonly endpoints: { http: number; grpc: number };
  readonly telemetry: DpuTelemetry;
  stop(): Promise<void>;
  /** Settles when the DPU stops; rejects on a fatal error. */
  readonly done: Promise<void>;
}

export interface DpuParts {
  sourceId: string;
  consumer: string;
  log: Logger;
  nc: NatsConnection;
  telemetry: DpuTelemetry;
  reader: StreamReader;
  builder: TxnBuilder;
  sink: Sink;
  /**
   * Groups with fewer rows than this go on one connection (parallel lanes cost their records);
   * also the size under which a segment joins lanes rather than ending (conflicts.ts).
   */
  parallelFromRows: number;
  retry: { initialMs: number; maxMs: number };
  /** Whether this DPU's table group applies a table (absent: every table). */
  accepts?: (ref: TableRef) => boolean;
  /** Resources closed after the parts stopped (endpoints, NATS). */
  scope: Scope;
  stopping: AbortController;
}

/** How long the DPU may be idle before it writes a low-water mark no transaction recorded yet. */
const IDLE_FLUSH_MS = 250;

/**
 * A running DPU: one loop that takes the next group from the transaction builder and applies it
 * through the sink. Groups are pipelined: while one group's lanes wait for the target, the next
 * is decoded, split by conflicts and planned; it starts once the one before has committed (so
 * groups never overlap, and the low-water mark is simply the last committed group's end). A
 * group's messages are acknowledged after its commit. DDL, large transactions, re-reads and
 * control calls (pause, a new position, a dead-letter replay) wait for the group in flight.
 */
export class DpuRuntime implements DpuService {
  private state: DpuStatus["state"] = "starting";
  private lowWater = 0;
  private position = Position.NONE;
  private lastError = "";
  private readonly wake = new Signal();
  private readonly completion = new Completion();
  private loop: Promise<void> = Promise.resolve();
  /** The group being applied (the pipeline's second stage), and its failure if it failed. */
  private inFlight: Promise<void> | null = null;
  private inFlightSettled = false;
  private inFlightError: unknown = null;
  private replays: { seqs: readonly number[]; done(r: ReplayResult[]): void; fail(e: unknown): void }[] = [];
  endpoints = { http: 0, grpc: 0 };

  constructor(private readonly p: DpuParts) {}

  get telemetry(): DpuTelemetry {
    return this.p.telemetry;
  }

  get done(): Promise<void> {
    return this.completion.promise;
  }

  /** Reads the checkpoint, starts delivery after it and the apply loop. */
  async start(): Promise<void> {
    const cp = await this.p.sink.open();
    this.lowWater = cp.lowWater;
    this.p.builder.reset(cp.lowWater, cp.applied);
    await this.p.reader.readFrom(cp.lowWater);
    this.state = "running";
    setState(this.p.telemetry.service, "running");
    this.p.log.info(
      { consumer: this.p.consumer, checkpoint: cp.lowWater, connections: this.p.sink.parallelism },
      "dpu running",
    );
    this.loop = this.run();
  }

  status(): DpuStatus {
    const { sink, reader, telemetry } = this.p;
    return {
      state: this.state,
      consumer: this.p.consumer,
      appliedSeq: this.lowWater,
      position: this.position,
      rowsApplied: sink.stats.rowsApplied,
      deadLettered: sink.stats.rejected + this.p.builder.deadLettered,
      retries: sink.stats.retries,
      queued: reader.queued,
      pending: Math.max(reader.pending, reader.queued),
      lagSeconds: telemetry.lagSeconds(),
      oldestPendingAgeSeconds:
        reader.oldestPendingMs > 0 ? Math.max(0, (Date.now() - reader.oldestPendingMs) / 1000) : 0,
      streamMaxAgeSeconds: reader.streamMaxAgeSeconds,
      waitingFor: sink.stats.waitingFor,
      connections: sink.parallelism,
      lastError: this.lastError || sink.stats.lastError,
    };
  }

  pause(): void {
    if (this.state === "running") this.state = "paused";
  }

  resume(): void {
    if (this.state === "paused") this.state = "running";
    this.wake.fire();
  }

  async setPosition(position: string): Promise<void> {
    if (this.state !== "paused")
      throw new ConfigError(ErrorCode.CONFIG_INVALID, ["pause the dpu before moving its position"]);
    const point = parseStreamPoint(position);
    const seq =
      point.kind === "seq"
        ? point.seq
        : point.kind === "earliest"
          ? (await this.p.reader.firstSeq()) - 1 // the oldest message stored: no gap to stop at
          : await this.p.reader.lastSeq();
    await this.drain();
    await this.p.sink.advance(seq);
    this.p.log.warn({ from: this.lowWater, to: seq }, "checkpoint moved by a control call");
    this.lowWater = seq;
    this.p.builder.reset(seq, new Set());
    await this.p.reader.readFrom(seq);
  }

  replayDlq(seqs: readonly number[]): Promise<ReplayResult[]> {
    return new Promise((done, fail) => {
      this.replays.push({ seqs, done, fail });
      this.wake.fire();
    });
  }

  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    const failed = this.state === "error";
    this.state = "stopped";
    await this.shutdown();
    if (!failed) this.completion.resolve();
  }

  private async run(): Promise<void> {
    const { stopping } = this.p;
    try {
      while (!stopping.signal.aborted) {
        if (this.inFlightError) throw this.inFlightError;
        if (this.replays.length > 0) {
          await this.drain();
          await this.runReplay(this.replays.shift()!);
          continue;
        }
        if (this.state === "paused") {
          await this.drain();
          await this.wake.wait();
          continue;
        }
        const step = await this.p.builder.next();
        if (step === null) {
          await this.idle();
          continue;
        }
        if (step.kind === "group") {
          const parts = this.lanesOf(step);
          for (const part of parts) this.p.sink.prepare(part); // planned while the group before is in flight
          await this.drain();
          this.launch(step, parts);
          continue;
        }
        await this.drain();
        if (step.kind === "ddl") await this.applyDdl(step);
        else if (step.kind === "large") await this.applyLarge(step);
        else {
          this.p.log.warn(
            { appliedSeq: this.lowWater, seenSeq: step.seenSeq },
            "stream messages missing from delivery (e.g. the connection was cut): re-reading from the checkpoint",
          );
          await this.reread();
        }
      }
      await this.drain();
    } catch (err) {
      if (stopping.signal.aborted) return;
      // The group in flight is whole and came before what failed (e.g. messages gone from the
      // stream, found while it was being applied): it commits before the DPU reports the stop.
      await this.drain().catch(() => {});
      if (!stopping.signal.aborted) this.fail(err);
    }
  }

  /** Nothing to build: wait for a delivery, the group in flight, or a control call. */
  private async idle(): Promise<void> {
    if (this.inFlight && this.inFlightSettled) {
      await this.drain();
      return;
    }
    const waits: Promise<unknown>[] = [this.wake.wait(), this.p.reader.arrived.wait()];
    if (this.inFlight) {
      waits.push(this.inFlight);
      await Promise.race(waits);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.race(waits).then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), IDLE_FLUSH_MS))),
    ]);
    clearTimeout(timer);
    if (timedOut) await this.p.sink.flush();
  }

  /**
   * A group's lanes: split by conflicts when it is large enough for parallel apply to pay, in
   * segments applied one after the other (see scheduleLanes). A segment's lastSeq is how far the
   * low-water mark may move once it committed: to its last stream transaction when it ends at one's
   * end, else to the last stream transaction before (the rest of that one comes in later segments).
   */
  private lanesOf(step: Group): ApplyGroup[] {
    const lanes = step.rows >= this.p.parallelFromRows ? this.p.sink.parallelism : 1;
    const units = step.txns;
    const segments = scheduleLanes(units, lanes, this.p.parallelFromRows * lanes);
    const out: ApplyGroup[] = [];
    let safe = this.lowWater;
    for (const seg of segments) {
      if (seg.end >= units.length) {
        out.push({ lanes: seg.lanes, lastSeq: step.lastSeq, whole: true });
        break;
      }
      const next = units[seg.end]!.seq;
      const whole = units[seg.end - 1]!.seq !== next;
      for (let u = seg.end - 1; u >= 0; u--)
        if (units[u]!.seq !== next) {
          safe = Math.max(safe, units[u]!.seq);
          break;
        }
      out.push({ lanes: seg.lanes, lastSeq: safe, whole });
    }
    return out;
  }

  /** Starts applying a group (the loop goes on preparing the next). */
  private launch(step: Group, parts: ApplyGroup[]): void {
    this.inFlightSettled = false;
    this.inFlight = this.applyGroup(step, parts)
      .catch((err: unknown) => {
        this.inFlightError = err;
      })
      .finally(() => {
        this.inFlightSettled = true;
        this.wake.fire();
      });
  }

  /** Waits for the group in flight; rethrows its failure. */
  private async drain(): Promise<void> {
    const f = this.inFlight;
    this.inFlight = null;
    if (f) await f;
    if (this.inFlightError) throw this.inFlightError;
  }

  private async applyGroup(step: Group, parts: ApplyGroup[]): Promise<void> {
    const { sink, telemetry } = this.p;
    const started = performance.now();
    for (const part of parts) {
      if (part.lanes.length > 0) {
        await sink.applyGroup(part);
        telemetry.m.groups.inc({ connections: String(part.lanes.length) });
        let units = 0;
        for (const lane of part.lanes) units += lane.units.length;
        telemetry.m.transactions.inc(units);
      } else await sink.advance(part.lastSeq);
      this.lowWater = part.lastSeq;
    }
    if (step.position) this.position = step.position;
    step.lastMessage?.ack();
    this.p.log.debug(
      {
        lastSeq: step.lastSeq,
        txns: step.txns.length,
        rows: step.rows,
        segments: parts.length,
        ms: Math.round(performance.now() - started),
      },
      "group applied",
    );
    const now = Date.now();
    for (const ms of step.captureTimesMs) telemetry.m.endToEnd.observe(Math.max(0, now - ms) / 1000);
    if (step.heartbeatSourceMs > 0) telemetry.heartbeatSourceMs = step.heartbeatSourceMs;
  }

  private async applyDdl(u: DdlStep): Promise<void> {
    const accepts = this.p.accepts;
    // Another group's tables: that group applies it; here only the checkpoint moves past it.
    if (accepts && u.ddl.tables.length > 0 && !u.ddl.tables.some((t) => accepts(t)))
      await this.p.sink.advance(u.message.seq);
    else await this.p.sink.applyDdl(u.ddl, u.message.seq);
    this.lowWater = u.message.seq;
    if (u.position.hasFile) this.position = u.position;
    u.message.ack();
  }

  /**
   * A part of a transaction larger than a group. A failure loses the open target transaction: the
   * stream is read again from the checkpoint (the whole transaction comes again) after a backoff.
   */
  private async applyLarge(part: LargePart): Promise<void> {
    const { sink, telemetry } = this.p;
    try {
      await sink.applyLargePart(part.changes);
      if (part.last) await sink.commitLarge(part.lastSeq);
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      const wait = backoffMs(0, this.p.retry.initialMs, this.p.retry.maxMs);
      this.p.log.warn(
        { err: errorMessage(err), retryInMs: wait },
        "a large transaction failed; reading it again",
      );
      await sleep(wait, this.p.stopping.signal);
      await this.reread();
      return;
    }
    part.lastMessage.ack();
    const now = Date.now();
    for (const ms of part.captureTimesMs) telemetry.m.endToEnd.observe(Math.max(0, now - ms) / 1000);
    if (!part.last) return;
    telemetry.m.groups.inc({ connections: "1" });
    telemetry.m.transactions.inc(part.sourceTxns);
    this.lowWater = part.lastSeq;
    if (part.position) this.position = part.position;
  }

  /** Reads again from the checkpoint (what lanes committed above it stays skipped). */
  private async reread(): Promise<void> {
    this.p.builder.reset(this.lowWater);
    await this.p.reader.readFrom(this.lowWater);
  }

  private async runReplay(job: (typeof this.replays)[number]): Promise<void> {
    try {
      const results = await replayDeadLetters(this.p.nc, this.p.sourceId, this.p.sink, job.seqs);
      for (const r of results.filter((x) => !x.ok))
        this.p.telemetry.activity.add({
          kind: "error",
          text: `replay of dead letter ${r.seq} failed: ${r.error}`,
        });
      job.done(results);
    } catch (err) {
      job.fail(err);
    }
  }

  /** A fatal condition from outside the loop (the group's lease was lost): stop applying now. */
  abort(err: unknown): void {
    if (this.state === "stopped" || this.state === "error") return;
    this.fail(err);
    void this.shutdown().catch(() => {});
  }

  private fail(err: unknown): void {
    this.state = "error";
    this.lastError = errorMessage(err);
    this.p.telemetry.service.errors.inc({ kind: "fatal" });
    this.p.telemetry.activity.add({ kind: "error", text: this.lastError });
    this.p.log.error({ err: this.lastError }, "dpu stopped on an error");
    this.completion.reject(err);
  }

  private async shutdown(): Promise<void> {
    const { stopping, reader, sink, scope } = this.p;
    stopping.abort();
    this.wake.fire();
    for (const job of this.replays.splice(0)) job.fail(new Error("the dpu stopped"));
    await reader.close();
    await this.loop;
    await this.inFlight?.catch(() => {});
    await sink.close();
    await scope.close();
  }
}
