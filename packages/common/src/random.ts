/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence on every
 * machine and Node version, so a fuzz test or a generated load that fails can be run again
 * exactly (the tests print their seed; DFS_TEST_SEED sets it). Not for anything secret.
 */
export interface Random {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** n random bytes. */
  bytes(n: number): Buffer;
}

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    seed: seed >>> 0,
    next,
    int,
    chance: (p) => next() < p,
    pick: (items) => items[int(items.length)]!,
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
  };
}

/** The seed of a test run: DFS_TEST_SEED when set (to repeat a failure), else a new one. */
export function testSeed(): number {
  return Number(process.env.DFS_TEST_SEED) >>> 0 || Math.floor(Math.random() * 2 ** 31);
}
