import assert from "node:assert/strict";
import { test } from "node:test";
import { AbortedError, DfsError, ErrorCode, waitFor } from "@dfs/common";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { acquireLease, type Lease } from "../../dist/lease.js";
import { uniqueSource, withNats } from "../../dist/testing.js";

/** A bucket per test, so short TTLs never touch the real dfs_leases bucket. */
async function withBucket(nc: NatsConnection, fn: (bucket: string) => Promise<void>): Promise<void> {
  const bucket = `test_leases_${uniqueSource("")}`;
  try {
    await fn(bucket);
  } finally {
    const kv = await new Kvm(nc).open(bucket).catch(() => undefined);
    await kv?.destroy().catch(() => false);
  }
}

function isLeaseHeldBy(holder: string) {
  return (err: unknown) => {
    assert.ok(err instanceof DfsError, String(err));
    assert.equal(err.code, ErrorCode.LEASE_HELD);
    assert.match(err.message, new RegExp(holder));
    return true;
  };
}

/** The promise's value if it has already settled, else undefined; a check for waitFor. */
function peek<T>(p: Promise<T>): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
}

/** Whether a promise has settled, without waiting for it. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  return (await peek(p.then(() => true))) ?? false;
}

test("one holder at a time; release hands the lease over", async () => {
  await withNats("nats-test-lease", async (nc) => {
    await withBucket(nc, async (bucket) => {
      const key = "capture.src1";
      const a = await acquireLease(nc, { bucket, key, holder: "A", ttlMs: 3_000 });
      let b: Lease | undefined;
      try {
        assert.equal(a.holder, "A");
        assert.ok(a.revision > 0);
        await assert.rejects(
          acquireLease(nc, { bucket, key, holder: "B", ttlMs: 3_000 }),
          isLeaseHeldBy("A"),
        );

        // A renews (every ttl/3) without losing the lease.
        const first = a.revision;
        await waitFor(() => a.revision > first, { timeoutMs: 5_000, what: "a renewal" });
        assert.equal(await settled(a.lost), false);

        await a.release();
        b = await acquireLease(nc, { bucket, key, holder: "B", ttlMs: 3_000 });
        assert.equal(b.holder, "B");
      } finally {
        await a.release();
        await b?.release();
      }
    });
  });
});

test("a waiting acquire gets the lease once the holder releases it", async () => {
  await withNats("nats-test-lease-wait", async (nc) => {
    await withBucket(nc, async (bucket) => {
      const key = "capture.src2";
      const a = await acquireLease(nc, { bucket, key, holder: "A", ttlMs: 3_000 });
      const waiting = acquireLease(nc, { bucket, key, holder: "B", ttlMs: 3_000, waitMs: 10_000 });
      let b: Lease | undefined;
      try {
        assert.equal(await settled(waiting), false);
        await a.release();
        b = await waiting;
        assert.equal(b.holder, "B");
      } finally {
        await a.release();
        await (b ?? (await waiting.catch(() => undefined)))?.release();
      }
    });
  });
});

test("an abort signal stops waiting", async () => {
  await withNats("nats-test-lease-abort", async (nc) => {
    await withBucket(nc, async (bucket) => {
      const key = "capture.src3";
      const a = await acquireLease(nc, { bucket, key, holder: "A", ttlMs: 3_000 });
      try {
        const ac = new AbortController();
        const waiting = acquireLease(nc, {
          bucket,
          key,
          holder: "B",
          ttlMs: 3_000,
          waitMs: 60_000,
          signal: ac.signal,
        });
        ac.abort();
        await assert.rejects(waiting, AbortedError);
      } finally {
        await a.release();
      }
    });
  });
});

test("a foreign write makes the holder lose the lease", async () => {
  await withNats("nats-test-lease-lost", async (nc) => {
    await withBucket(nc, async (bucket) => {
      const key = "capture.src4";
      const a = await acquireLease(nc, { bucket, key, holder: "A", ttlMs: 1_500 });
      try {
        // Simulates another capture that took the key over (e.g. after A's key expired).
        const kv = await new Kvm(nc).open(bucket);
        await kv.put(key, "intruder");
        const err = await waitFor(() => peek(a.lost), {
          timeoutMs: 5_000,
          what: "A to notice the lost lease",
        });
        isLeaseHeldBy("intruder")(err);
        // A stopped renewing: the intruder's value stays, and A's release does not delete it.
        await a.release();
        assert.equal((await kv.get(key))?.string(), "intruder");
      } finally {
        await a.release();
      }
    });
  });
});

test("a vanished key (expired or purged) is taken back, not lost", async () => {
  await withNats("nats-test-lease-vanish", async (nc) => {
    await withBucket(nc, async (bucket) => {
      const key = "capture.src5";
      const a = await acquireLease(nc, { bucket, key, holder: "A", ttlMs: 1_500 });
      try {
        const kv = await new Kvm(nc).open(bucket);
        await kv.purge(key);
        const purgedAt = (await kv.get(key))!.revision;
        await waitFor(() => a.revision > purgedAt, { timeoutMs: 5_000, what: "A to re-create its key" });
        assert.equal((await kv.get(key))?.string(), "A");
        assert.equal(await settled(a.lost), false);
      } finally {
        await a.release();
      }
    });
  });
});

test("a holder that stops renewing loses the key to the TTL", async () => {
  await withNats("nats-test-lease-ttl", async (nc) => {
    await withBucket(nc, async (bucket) => {
      const key = "capture.src6";
      // A second connection plays the dead holder: it is closed, so its lease is never renewed.
      const dead = await withNats("nats-test-lease-dead", (other) =>
        acquireLease(other, { bucket, key, holder: "dead", ttlMs: 1_500 }),
      );
      await assert.rejects(
        acquireLease(nc, { bucket, key, holder: "B", ttlMs: 1_500 }),
        isLeaseHeldBy("dead"),
      );
      const b = await acquireLease(nc, { bucket, key, holder: "B", ttlMs: 1_500, waitMs: 10_000 });
      try {
        assert.equal(b.holder, "B");
        // The dead lease notices its connection is gone at its next tick.
        const why = await waitFor(() => peek(dead.lost), {
          timeoutMs: 5_000,
          what: "the closed connection to end the lease",
        });
        assert.equal((why as DfsError).code, ErrorCode.BROKER_UNAVAILABLE);
      } finally {
        await b.release();
      }
    });
  });
});

test('waitMs "expiry" waits out a dead holder even when the bucket keeps a longer TTL than ours', async () => {
  await withNats("nats-test-lease-expiry", async (nc) => {
    await withBucket(nc, async (bucket) => {
      const key = "capture.src7";
      // The bucket is created with the dead holder's 2.5 s TTL; the restart asks for 0.5 s.
      await withNats("nats-test-lease-dead2", (other) =>
        acquireLease(other, { bucket, key, holder: "dead", ttlMs: 2_500 }),
      );
      // Waiting only our own TTL + 1 s gives up before the key expires...
      await assert.rejects(
        acquireLease(nc, { bucket, key, holder: "B", ttlMs: 500, waitMs: 1_500 }),
        isLeaseHeldBy("dead"),
      );
      // ..."expiry" waits as long as the bucket's TTL says the dead key can live.
      const b = await acquireLease(nc, { bucket, key, holder: "B", ttlMs: 500, waitMs: "expiry" });
      try {
        assert.equal(b.holder, "B");
      } finally {
        await b.release();
      }
    });
  });
});
