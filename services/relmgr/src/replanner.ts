import { backoffMs } from "@dfs/common";

export interface ReplannerOptions {
  /** Re-reads the graph and publishes the plan. */
  run(): Promise<void>;
  /** Wait after a request before running, so that a burst of schema changes makes one re-read. */
  debounceMs: number;
  /** Backoff of the retries of a failed re-read. */
  retry: { initialMs: number; maxMs: number };
  onSuccess(): void;
  onError(err: unknown, retryInMs: number): void;
}

/**
 * relmgr's re-reads of the relationship graph, one at a time. `soon()` asks for one (a schema
 * change on the stream, NATS reconnected); a request made while one runs makes another run after
 * it, since the running one may have read the schema before the change. A re-read that fails (the
 * source connection was cut, the source restarts) is tried again with backoff until one succeeds:
 * otherwise the plan would stay behind the schema until the next schema change.
 */
export class Replanner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private failures = 0;
  private stopped = false;

  constructor(private readonly o: ReplannerOptions) {}

  soon(delayMs = this.o.debounceMs): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fire();
    }, delayMs);
  }

  private fire(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.o
      .run()
      .then(
        () => {
          this.failures = 0;
          this.o.onSuccess();
        },
        (err: unknown) => {
          const wait = backoffMs(this.failures++, this.o.retry.initialMs, this.o.retry.maxMs);
          this.o.onError(err, wait);
          this.soon(wait);
        },
      )
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.fire();
        }
      });
  }

  /**
   * The first read, at start-up, under the same one-at-a-time rule: its error is thrown (relmgr
   * does not start without a plan); requests made meanwhile run after it.
   */
  async first(read: () => Promise<void>): Promise<void> {
    const run = read();
    this.running = run.catch(() => {});
    try {
      await run;
    } finally {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.fire();
      }
    }
  }

  /** No more runs; waits for the one under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
