import { connectNats, type NatsConnection } from "./connect.js";

/** The test server: the project's stack NATS (never the default port 4222). */
export const TEST_NATS_URL =
  process.env.DFS_NATS_URL ?? `nats://127.0.0.1:${process.env.DFS_STACK_NATS_PORT ?? "14222"}`;

/** A source id no other test (or earlier run) uses. */
export function uniqueSource(prefix = "t"): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** Runs `fn` with a fresh connection and always closes it, so the test process can exit. */
export async function withNats<T>(name: string, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connectNats({ url: TEST_NATS_URL, name });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}
