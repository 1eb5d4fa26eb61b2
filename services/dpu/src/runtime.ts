import { Position, parseStreamPoint } from "@dfs/codec";
import {
  Completion,
  ConfigError,
  ErrorCode,
  errorMessage,
  type Logger,
  type Scope,
  Signal,
} from "@dfs/common";
import { setState } from "@dfs/metrics";
import type { NatsConnection } from "@nats-io/transport-node";
import { type ReplayResult, replayDeadLetters } from "./replay.js";
import type { Sink } from "./sink.js";
import type { StreamReader } from "./stream-reader.js";
import type { DpuTelemetry } from "./telemetry.js";
import type { ChangeUnit, DdlUnit, UnitBuilder } from "./unit-builder.js";

export interface DpuStatus {
  state: "starting" | "running" | "paused" | "stopped" | "error";
  consumer: string;
  /** The last stream sequence whose effect is in the target. */
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
  /** What the DPU waits for while it retries a write ("" when it does not). */
  waitingFor: string;
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
  /** Applies dead letters again (all, or the given DLQ sequences), between units. */
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
  builder: UnitBuilder;
  sink: Sink;
  /** Resources closed after the parts stopped (endpoints, NATS). */
  scope: Scope;
  stopping: AbortController;
}

/**
 * A running DPU: one loop that takes the next unit from the unit builder and applies it through
 * the sink, acknowledging its messages after the commit. Control calls (pause, a new position, a
 * dead-letter replay) are served between units.
 */
export class DpuRuntime implements DpuService {
  private state: DpuStatus["state"] = "starting";
  private appliedSeq = 0;
  private position = Position.NONE;
  private lastError = "";
  private readonly wake = new Signal();
  private readonly completion = new Completion();
  private loop: Promise<void> = Promise.resolve();
  /** The unit being applied, so a position change can wait for it. */
  private applying: Promise<void> | null = null;
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
    this.appliedSeq = await this.p.sink.checkpoint();
    await this.p.reader.readFrom(this.appliedSeq);
    this.state = "running";
    setState(this.p.telemetry.service, "running");
    this.p.log.info({ consumer: this.p.consumer, checkpoint: this.appliedSeq }, "dpu running");
    this.loop = this.run();
  }

  status(): DpuStatus {
    const { sink, reader, telemetry } = this.p;
    return {
      state: this.state,
      consumer: this.p.consumer,
      appliedSeq: this.appliedSeq,
      position: this.position,
      rowsApplied: sink.stats.rowsApplied,
      deadLettered: sink.stats.rejected + this.p.builder.deadLettered,
      retries: sink.stats.retries,
      queued: reader.queued,
      pending: Math.max(reader.pending, reader.queued),
      lagSeconds: telemetry.lagSeconds(),
      waitingFor: sink.stats.waitingFor,
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
      point.kind === "seq" ? point.seq : point.kind === "earliest" ? 0 : await this.p.reader.lastSeq();
    await this.applying?.catch(() => {});
    await this.p.sink.advance(seq);
    this.p.log.warn({ from: this.appliedSeq, to: seq }, "checkpoint moved by a control call");
    this.appliedSeq = seq;
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
    const { reader, stopping } = this.p;
    while (!stopping.signal.aborted) {
      if (this.replays.length > 0) {
        await this.runReplay(this.replays.shift()!);
        continue;
      }
      if (reader.queued === 0 || this.state === "paused") {
        // A delivery or a control call wakes the loop.
        await Promise.race([this.wake.wait(), reader.arrived.wait()]);
        continue;
      }
      try {
        this.applying = this.step();
        await this.applying;
      } catch (err) {
        if (stopping.signal.aborted) break;
        this.fail(err);
        break;
      }
    }
  }

  /** Applies the next unit (or DDL) the builder gives. */
  private async step(): Promise<void> {
    const step = await this.p.builder.next(this.appliedSeq);
    if (step === null) return;
    if (step.kind === "reread") {
      this.p.log.warn(
        { appliedSeq: this.appliedSeq, seenSeq: step.seenSeq },
        "stream messages missing from delivery (e.g. the connection was cut): re-reading from the checkpoint",
      );
      await this.p.reader.readFrom(this.appliedSeq);
      return;
    }
    if (step.kind === "ddl") await this.applyDdl(step);
    else await this.applyChanges(step);
  }

  private async applyDdl(u: DdlUnit): Promise<void> {
    await this.p.sink.applyDdl(u.ddl, u.message.seq);
    this.appliedSeq = u.message.seq;
    if (u.position.hasFile) this.position = u.position;
    u.message.ack();
  }

  private async applyChanges(u: ChangeUnit): Promise<void> {
    const { sink, telemetry } = this.p;
    if (u.changes.length > 0) await sink.apply(u.changes, u.lastSeq);
    else await sink.advance(u.lastSeq);
    this.appliedSeq = u.lastSeq;
    if (u.position) this.position = u.position;
    for (const m of u.messages) m.ack();
    const now = Date.now();
    for (const ms of u.captureTimesMs) telemetry.m.endToEnd.observe(Math.max(0, now - ms) / 1000);
    if (u.heartbeatSourceMs > 0) telemetry.heartbeatSourceMs = u.heartbeatSourceMs;
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
    await sink.close();
    await scope.close();
  }
}
