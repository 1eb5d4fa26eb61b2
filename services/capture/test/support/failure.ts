// Shared helpers of the capture failure tests (crash, nats-down, startup). Not part of the service's API.
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { subjects } from "@dfs/nats";
import { killChild, type ServiceChild, spawnServiceChild, waitChildReady, writeConfig } from "@dfs/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import Database from "better-sqlite3";
import type { CaptureStatus } from "../../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
/** The compiled capture runner (dist-test/support/run-capture.js). */
export const RUNNER = join(here, "run-capture.js");
/** The repository root (services/capture/dist -> ../../..). */
export const REPO_ROOT = join(here, "..", "..", "..", "..");

/** A capture running as a child process (test/support/run-capture). */
export type CaptureChild = ServiceChild<CaptureStatus>;

export function spawnCapture(configPath: string): CaptureChild {
  return spawnServiceChild<CaptureStatus>(RUNNER, configPath);
}

/** Waits for the child's READY line; fails early with its stderr if it exits first. */
export function waitReady(c: CaptureChild, timeoutMs = 30_000): Promise<void> {
  return waitChildReady(c, "capture", timeoutMs);
}

export { killChild, writeConfig };

/** Number of messages stored on one subject of a source's stream (cheap: no message is read). */
export async function subjectCount(nc: NatsConnection, sourceId: string, subject: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(subjects.streamName(sourceId), { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

/** What a journal file holds, read without the service (the file must not be written meanwhile). */
export function inspectJournal(path: string): {
  entries: number;
  batchEntries: number;
  publishedScn: number;
  checkpoint: { file: string; pos: number; committedScn: number } | null;
} {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const count = db.prepare("SELECT COUNT(*) AS n, COALESCE(SUM(kind = 0), 0) AS b FROM entries").get() as {
      n: number;
      b: number;
    };
    const pub = db.prepare("SELECT scn FROM published WHERE id = 1").get() as { scn: number } | undefined;
    const cp = db.prepare("SELECT file, pos, committed_scn FROM checkpoint WHERE id = 1").get() as
      | { file: string; pos: number; committed_scn: number }
      | undefined;
    return {
      entries: count.n,
      batchEntries: count.b,
      publishedScn: pub?.scn ?? 0,
      checkpoint: cp ? { file: cp.file, pos: cp.pos, committedScn: cp.committed_scn } : null,
    };
  } finally {
    db.close();
  }
}

/** Counts of each key; returns the keys seen more than once and the expected keys never seen. */
export function compareMultiset(
  seen: Iterable<string>,
  expected: Iterable<string>,
): { duplicates: string[]; missing: string[]; unexpected: string[]; total: number } {
  const counts = new Map<string, number>();
  let total = 0;
  for (const k of seen) {
    counts.set(k, (counts.get(k) ?? 0) + 1);
    total++;
  }
  const want = new Set(expected);
  const duplicates = [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
  const missing = [...want].filter((k) => !counts.has(k));
  const unexpected = [...counts.keys()].filter((k) => !want.has(k));
  return { duplicates, missing, unexpected, total };
}

/** Message ids that occur more than once. */
export function duplicateIds(ids: string[]): string[] {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) dups.add(id);
    seen.add(id);
  }
  return [...dups];
}

/** Whether something accepts TCP connections at the host:port of `url` (e.g. nats://127.0.0.1:14222). */
export function reachable(url: string, timeoutMs = 500): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    const done = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
