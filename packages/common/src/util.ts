import { setTimeout as sleepMs } from "node:timers/promises";
import { AbortedError, TransientError } from "./errors.js";

/** Exponential backoff with full jitter; `attempt` starts at 0. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Sleeps, or throws AbortedError as soon as the signal aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleepMs(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    if (signal?.aborted) throw new AbortedError();
    throw err;
  }
}

/** How retryTransient waits between attempts. */
export interface TransientRetry {
  initialMs: number;
  maxMs: number;
  /** Stops the waiting (AbortedError). */
  signal?: AbortSignal;
  /** Told before each wait. */
  onRetry?(err: unknown, waitMs: number): void;
}

/**
 * Runs `fn` until it resolves: a TransientError (a server away or not ready yet) is tried again
 * after an exponential backoff; any other error is thrown at once.
 */
export async function retryTransient<T>(fn: () => Promise<T>, retry: TransientRetry): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      const wait = backoffMs(attempt, retry.initialMs, retry.maxMs);
      retry.onRetry?.(err, wait);
      await sleep(wait, retry.signal);
    }
  }
}

/**
 * Polls `check` until it returns a truthy value or the deadline passes. Tests and start-up code
 * wait with this, never with a bare sleep.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs: number; intervalMs?: number; what: string },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}${why}`);
    }
    await sleepMs(options.intervalMs ?? 50);
  }
}

/** Parses sizes like "64MiB", "512KB", "1g" or plain numbers of bytes. */
export function parseBytes(value: string | number): number {
  if (typeof value === "number") return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?\s*$/i.exec(value);
  if (!m) throw new Error(`not a size: "${value}" (use e.g. 512KiB, 64MiB, 1GiB)`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()]!;
  return Math.round(Number(m[1]) * unit);
}

/** Parses durations like "500ms", "30s", "5m", "2h", "7d" or plain milliseconds. */
export function parseDurationMs(value: string | number): number {
  if (typeof value === "number") return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!m) throw new Error(`not a duration: "${value}" (use e.g. 500ms, 30s, 5m, 7d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "ms").toLowerCase()]!;
  return Math.round(Number(m[1]) * unit);
}
