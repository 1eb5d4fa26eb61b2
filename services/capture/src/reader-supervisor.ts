import type { Position } from "@dfs/codec";
import {
  backoffMs,
  ConfigError,
  DataError,
  type DfsError,
  ErrorCode,
  errorMessage,
  type Logger,
  sleep,
  TransientError,
} from "@dfs/common";
import { classifyMysqlError, MysqlErrno } from "@dfs/mysql";
import type { Throttle } from "./journal-writer.js";
import { BinlogReader, isDecodeFailure, type ReaderOptions } from "./reader.js";

/** Why the reader is paused: a person asked (control plane), or the journal is full. */
type PauseReason = "user" | "backpressure";

export interface ReaderSupervisorOptions {
  /** The reader's options, but for its error and event hooks, which the supervisor owns. */
  reader: Omit<ReaderOptions, "onError" | "afterEvent">;
  /** Called after every binlog event the handler saw (group commit). */
  afterEvent(): void;
  /**
   * Brings journal and assembler to the checkpoint (the reader is stopped) and returns it: a new
   * reader starts there.
   */
  settle(): { position: Position };
  /** Moves the checkpoint to `position` and returns the new checkpoint (the reader is stopped). */
  moveTo(position: Position): { position: Position };
  reconnect: { initialMs: number; maxMs: number };
  log: Logger;
  /** A failure of the reader that restarting cannot fix: capture stops with it. */
  onFatal(err: DfsError): void;
  /** A failure that is retried, for metrics and the activity log. */
  onRetry?(err: DfsError): void;
  signal: AbortSignal;
  /** Makes the reader (a BinlogReader; tests pass a stand-in). */
  createReader?(options: ReaderOptions): BinlogReaderLike;
}

/** What the supervisor uses of a binlog reader. */
export type BinlogReaderLike = Pick<
  BinlogReader,
  "start" | "position" | "pause" | "resume" | "stop" | "isPaused"
>;

/**
 * Keeps one binlog reader running. zongji has no reconnect: when the reader fails with a passing
 * error (connection lost, server restart), the supervisor stops it, keeps what is complete, and
 * starts a new one from the checkpoint after a backoff. Errors that a restart cannot fix (access
 * denied, a purged binlog, an event that cannot be decoded) stop capture with the position and
 * the reason instead of restarting in a loop. Pauses are kept by reason, so backpressure never
 * resumes a reader a person paused.
 */
export class ReaderSupervisor {
  private readonly reader: BinlogReaderLike;
  private readonly pauses = new Set<PauseReason>();
  private attempt = 0;
  private restarting = false;
  private stopped = false;
  reconnects = 0;
  lastError = "";

  /** The backpressure side of the pauses, for the journal writer. */
  readonly backpressure: Throttle;

  constructor(private readonly o: ReaderSupervisorOptions) {
    const options: ReaderOptions = {
      ...o.reader,
      onError: (err) => void this.restart(err),
      afterEvent: () => {
        this.attempt = 0;
        o.afterEvent();
      },
    };
    this.reader = o.createReader ? o.createReader(options) : new BinlogReader(options);
    const self = this;
    this.backpressure = {
      pause: () => self.pause("backpressure"),
      resume: () => self.resume("backpressure"),
      get paused() {
        return self.pauses.has("backpressure");
      },
    };
  }

  start(from: Position): void {
    this.reader.start(from);
    if (this.pauses.size > 0) this.reader.pause();
  }

  position(): Position {
    return this.reader.position();
  }

  /** Whether a person paused reading (the control plane's Pause). */
  get userPaused(): boolean {
    return this.pauses.has("user");
  }

  /** Whether the socket is not being read, for any reason. */
  get isPaused(): boolean {
    return this.reader.isPaused;
  }

  pause(reason: PauseReason): void {
    this.pauses.add(reason);
    this.reader.pause();
  }

  resume(reason: PauseReason): void {
    this.pauses.delete(reason);
    if (this.pauses.size === 0) this.reader.resume();
  }

  /**
   * Moves the read position; only while a person has paused reading. The new reader starts at
   * `position`, still paused.
   */
  async moveTo(position: Position): Promise<void> {
    if (!this.userPaused)
      throw new ConfigError(ErrorCode.CONFIG_INVALID, ["pause capture before moving its position"]);
    this.restarting = true; // no reconnect may race the move
    try {
      await this.reader.stop();
      const from = this.o.settle().position;
      const to = this.o.moveTo(position).position;
      this.o.log.warn({ from: from.toString(), to: to.toString() }, "read position moved by a control call");
      this.start(to);
    } finally {
      this.restarting = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.reader.stop();
  }

  /**
   * Where the transaction that failed to decode starts: the checkpoint, once what is complete is
   * kept (the reader is stopped). The reader's own position may be inside that transaction (zongji
   * moves it past a BEGIN's GTID event), a place capture.skipTo must not be pointed at.
   */
  private checkpointOr(read: Position): Position {
    try {
      return this.o.settle().position;
    } catch (err) {
      this.o.log.warn(
        { err: errorMessage(err) },
        "the checkpoint could not be read; naming the reader's position",
      );
      return read;
    }
  }

  /** What a reader error means: restart (a TransientError) or stop capture (anything else). */
  private classify(err: unknown): DfsError {
    const at = this.o.reader.server ? this.position() : undefined;
    const e = classifyMysqlError(err, "source", `binlog reader${at && !at.isNone ? ` at ${at}` : ""}`);
    if (e.errno === MysqlErrno.FATAL_READING_BINLOG)
      return new ConfigError(
        ErrorCode.CHECKPOINT_PURGED,
        [`the source cannot serve the binlog from the checkpoint: ${errorMessage(err)}`],
        { cause: err, errno: e.errno },
      );
    return e;
  }

  private async restart(err: unknown): Promise<void> {
    if (this.restarting || this.stopped) return;
    this.restarting = true;
    try {
      if (isDecodeFailure(err)) {
        const read = this.position();
        await this.reader.stop();
        this.o.onFatal(undecodableError(err, this.checkpointOr(read)));
        return;
      }
      const e = this.classify(err);
      if (!(e instanceof TransientError)) {
        await this.reader.stop();
        this.o.onFatal(e);
        return;
      }
      this.lastError = e.message;
      this.reconnects++;
      this.o.onRetry?.(e);
      await this.reader.stop();
      const from = this.o.settle().position;
      const wait = backoffMs(this.attempt++, this.o.reconnect.initialMs, this.o.reconnect.maxMs);
      this.o.log.warn(
        { err: this.lastError, retryInMs: wait, from: from.toString() },
        "binlog reader failed; restarting from the checkpoint",
      );
      await sleep(wait, this.o.signal);
      if (this.stopped) return;
      this.start(from);
    } catch (e) {
      if (!this.o.signal.aborted) this.o.onFatal(e as DfsError);
    } finally {
      this.restarting = false;
    }
  }
}

/**
 * An event that cannot be decoded is read again after every restart and fails again: capture
 * stops, naming where its transaction starts and how to pass it deliberately.
 */
function undecodableError(err: unknown, at: Position | undefined): DataError {
  const where = at && !at.isNone ? at.toString() : "the checkpoint";
  const file = at?.hasFile ? at.file : "<binlog file>";
  const pos = at?.hasFile ? String(at.pos) : "<position>";
  return new DataError(
    ErrorCode.BINLOG_UNDECODABLE,
    `binlog reader: the transaction at ${where} cannot be decoded: ${errorMessage(err)}. Capture stopped instead of reading it again in a loop. To pass it deliberately (its changes will not reach the stream): find where the next transaction starts (SHOW BINLOG EVENTS IN '${file}' FROM ${pos}: the End_log_pos of its Xid or COMMIT event, for DDL of its Query event) and start capture once with capture.skipTo: "${file}:<that position>" (docs/capture.md, "Undecodable events")`,
    { cause: err },
  );
}
