/**
 * Small lifecycle helpers for a service's composition root: resources opened in order and closed in
 * reverse (also when start-up fails half way), and a completion that settles when a service ends.
 */

/** Resources closed in reverse order of opening. */
export class Scope {
  private readonly closers: (() => unknown)[] = [];
  private readonly ac = new AbortController();
  private closing: Promise<void> | null = null;

  /** Aborted as soon as the scope starts closing: waits started inside it give up. */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** Runs `close` when the scope closes (after everything deferred later). */
  defer(close: () => unknown): void {
    this.closers.push(close);
  }

  /** Registers a resource with a close() method and returns it. */
  use<T extends { close(): unknown }>(resource: T): T {
    this.closers.push(() => resource.close());
    return resource;
  }

  /** Closes everything once; a closer that throws does not keep the others open. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.ac.abort();
      for (const c of this.closers.reverse())
        await Promise.resolve()
          .then(c)
          .catch(() => {});
    })();
    return this.closing;
  }
}

/** A promise settled from outside: a service's `done`. Never an unhandled rejection. */
export class Completion {
  readonly promise: Promise<void>;
  private resolveFn!: () => void;
  private rejectFn!: (err: unknown) => void;
  private settledValue = false;

  constructor() {
    this.promise = new Promise<void>((res, rej) => {
      this.resolveFn = res;
      this.rejectFn = rej;
    });
    this.promise.catch(() => {}); // observed by whoever awaits it
  }

  get settled(): boolean {
    return this.settledValue;
  }

  resolve(): void {
    if (this.settledValue) return;
    this.settledValue = true;
    this.resolveFn();
  }

  reject(err: unknown): void {
    if (this.settledValue) return;
    this.settledValue = true;
    this.rejectFn(err);
  }
}

/** Something to wait on until it fires (new work, a resume, a stop); every waiter wakes. */
export class Signal {
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
