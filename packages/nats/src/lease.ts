import {
  AbortedError,
  ConfigError,
  DfsError,
  ErrorCode,
  retryTransient,
  sleep,
  TransientError,
} from "@dfs/common";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { brokerError } from "./connect.js";

export interface Lease {
  readonly holder: string;
  /** KV revision of our last successful write; it changes on every renewal. */
  readonly revision: number;
  /** Resolves (never rejects) when the lease is known to be lost; stop the work it guards. */
  lost: Promise<Error>;
  /** Stops renewing and deletes the key if we still hold it. Never throws. */
  release(): Promise<void>;
}

export interface LeaseOptions {
  /** KV bucket, created if missing with history 1 and TTL = ttlMs. */
  bucket?: string;
  /** KV key, e.g. `capture.<source>`; KV keys allow only [-/_=.a-zA-Z0-9]. */
  key: string;
  /** Who holds it: unique per process (e.g. host, pid, random), shown to whoever is refused. */
  holder: string;
  /** The key expires this long after the last renewal if the holder dies. */
  ttlMs: number;
  /** Aborts waiting for the lease (AbortedError); has no effect once it is acquired. */
  signal?: AbortSignal;
  /**
   * How long to keep trying while someone else holds it; 0 (default) fails at once. "expiry": as
   * long as a dead holder's key can live (the longer of ttlMs and the bucket's TTL, plus 1 s), so
   * a restart right after a crash waits out the dead process's lease.
   */
  waitMs?: number | "expiry";
}

const DEFAULT_BUCKET = "dfs_leases";
const KEY_RE = /^[-/=.\w]+$/;
const BUCKET_RE = /^[-\w]+$/;

/**
 * A lease on a KV key, so that only one process works on a source. Exclusion rests on JetStream's
 * optimistic concurrency: `create` only succeeds if the key is absent, `update` only if nobody wrote
 * since our last revision. The bucket's TTL removes the key of a holder that stopped renewing.
 */
export async function acquireLease(nc: NatsConnection, opts: LeaseOptions): Promise<Lease> {
  const bucket = opts.bucket ?? DEFAULT_BUCKET;
  const problems: string[] = [];
  if (!BUCKET_RE.test(bucket)) {
    problems.push(`lease bucket "${bucket}" may only contain letters, digits, '_' and '-'`);
  }
  if (!KEY_RE.test(opts.key) || opts.key.startsWith(".") || opts.key.endsWith(".")) {
    problems.push(`lease key "${opts.key}" may only contain letters, digits and -/_=. (not at either end)`);
  }
  if (!(opts.ttlMs >= 300)) problems.push(`lease ttl must be at least 300 ms, got ${opts.ttlMs}`);
  if (opts.holder === "") problems.push("lease holder must not be empty");
  if (problems.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, problems);

  const openBucket = async (): Promise<{ kv: KV; bucketTtl: number }> => {
    try {
      const kv = await new Kvm(nc).create(bucket, { history: 1, ttl: opts.ttlMs });
      // An existing bucket keeps its own TTL; renew often enough for the shorter of the two.
      return { kv, bucketTtl: (await kv.status()).ttl };
    } catch (err) {
      throw brokerError(err, `cannot open lease bucket ${bucket}`);
    }
  };
  // A service (it passes its stop signal) waits while JetStream cannot answer yet (a cluster
  // electing its leaders); a one-off caller gets the error at once.
  const { kv, bucketTtl } = opts.signal
    ? await retryTransient(openBucket, { initialMs: 200, maxMs: 5_000, signal: opts.signal })
    : await openBucket();
  if (bucketTtl <= 0) {
    // Without a TTL the key of a crashed holder would never expire and the source would stay locked.
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `lease bucket ${bucket} exists without a TTL, so a dead holder's lease would never expire; delete the bucket (it is recreated with a TTL) or give its stream KV_${bucket} a max age`,
    ]);
  }
  const renewMs = Math.max(100, Math.floor(Math.min(opts.ttlMs, bucketTtl) / 3));
  const retryMs = Math.min(1000, renewMs);
  const waitMs = opts.waitMs === "expiry" ? Math.max(opts.ttlMs, bucketTtl) + 1000 : (opts.waitMs ?? 0);
  const deadline = Date.now() + waitMs;

  for (;;) {
    if (opts.signal?.aborted) throw new AbortedError("stopped waiting for the lease");
    let holder: string | undefined;
    try {
      const revision = await kv.create(opts.key, opts.holder);
      return new KvLease(nc, kv, opts.key, opts.holder, revision, renewMs);
    } catch (err) {
      if (!isWrongSequence(err)) {
        const e = brokerError(err, `cannot acquire lease ${bucket}/${opts.key}`);
        if (!(e instanceof TransientError) || !opts.signal) throw e;
        await sleep(retryMs, opts.signal); // JetStream not answering yet: as above
        continue;
      }
      holder = await currentHolder(kv, opts.key).catch((e) =>
        Promise.reject(brokerError(e, `cannot read lease ${opts.key}`)),
      );
    }
    if (holder === undefined) {
      // The key vanished between our create and get (it expired): try again almost at once.
      await sleep(20, opts.signal);
      continue;
    }
    if (Date.now() >= deadline) {
      // A key with our own holder name is not adopted: it may be another live process using the same
      // name, so it is waited out like any other holder's (it expires within the bucket TTL).
      const same = holder === opts.holder ? " (the same holder name as ours: an earlier run?)" : "";
      throw new DfsError(ErrorCode.LEASE_HELD, `lease ${bucket}/${opts.key} is held by ${holder}${same}`, {
        details: { bucket, key: opts.key, holder },
      });
    }
    await sleep(Math.min(retryMs, Math.max(1, deadline - Date.now())), opts.signal);
  }
}

/** Who holds the key now, or undefined if it is absent, deleted or expired. */
async function currentHolder(kv: KV, key: string): Promise<string | undefined> {
  const e = await kv.get(key);
  return e !== null && e.operation === "PUT" ? e.string() : undefined;
}

/** The server's answer when the key's last revision is not the one we expected. */
function isWrongSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

class KvLease implements Lease {
  readonly lost: Promise<Error>;
  #revision: number;
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #stopped = false;
  #resolveLost!: (err: Error) => void;

  constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly key: string,
    readonly holder: string,
    revision: number,
    private readonly renewMs: number,
  ) {
    this.#revision = revision;
    this.lost = new Promise((resolve) => {
      this.#resolveLost = resolve;
    });
    this.#schedule();
  }

  get revision(): number {
    return this.#revision;
  }

  #schedule(): void {
    if (this.#stopped) return;
    // Chained timeouts, so a slow renewal never overlaps the next. Unref'd: a lease alone should not
    // keep a process alive; the work it guards does.
    this.#timer = setTimeout(() => {
      this.#inflight = this.#renew().finally(() => {
        this.#inflight = undefined;
        this.#schedule();
      });
    }, this.renewMs);
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    try {
      // Bounded by the renew interval: a renewal stuck behind a dead connection is retried next tick.
      this.#revision = await this.kv.update(
        this.key,
        this.holder,
        this.#revision,
        Math.max(250, this.renewMs),
      );
      return;
    } catch (err) {
      if (!isWrongSequence(err)) return this.#transient();
    }
    try {
      await this.#reconcile();
    } catch (err) {
      if (!isWrongSequence(err)) return this.#transient();
      // Someone created the key between our get and create: find out who on the next tick.
    }
  }

  /** Our update was refused: find out whether the key expired, is still ours, or has a new holder. */
  async #reconcile(): Promise<void> {
    const e = await this.kv.get(this.key);
    if (e === null || e.operation !== "PUT") {
      // Expired (e.g. while NATS was unreachable) or deleted by hand: nobody holds it, take it back.
      this.#revision = await this.kv.create(this.key, this.holder);
      return;
    }
    if (e.string() === this.holder) {
      // Our own earlier update succeeded but its ack was lost (timeout): adopt that revision.
      this.#revision = e.revision;
      return;
    }
    this.#lose(
      new DfsError(ErrorCode.LEASE_HELD, `lease ${this.key} was taken over by ${e.string()}`, {
        details: { key: this.key, holder: e.string(), revision: e.revision },
      }),
    );
  }

  /** NATS is away or slow: keep the lease and retry on the next tick, unless the connection is closed. */
  #transient(): void {
    if (this.nc.isClosed()) {
      this.#lose(
        new TransientError(
          ErrorCode.BROKER_UNAVAILABLE,
          `lease ${this.key} cannot be renewed: NATS connection closed`,
        ),
      );
    }
  }

  #lose(err: Error): void {
    this.#stop();
    this.#resolveLost(err);
  }

  #stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async release(): Promise<void> {
    this.#stop();
    // Let a renewal in flight finish so we delete at the revision the server has.
    await this.#inflight?.catch(() => {});
    try {
      // previousSeq: delete only if nobody wrote since our revision, never another holder's key.
      await this.kv.delete(this.key, { previousSeq: this.#revision });
    } catch {
      // Not ours any more, or NATS is away: the TTL removes it in any case.
    }
  }
}
