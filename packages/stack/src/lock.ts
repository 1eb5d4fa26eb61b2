import { randomUUID } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** Long enough to cover another process bringing up all three components (60 s deadline each). */
const LOCK_WAIT_MS = 240_000;

function holderAlive(file: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(file, "utf8").trim());
  } catch {
    // Vanished while we looked: treat as free and let the next exclusive create decide.
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means the pid exists but belongs to someone else: still a live holder.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Serialises up/down/start/stop across processes: `node --test` runs test files in parallel and each
 * may call stackUp(); without this two of them would race to spawn mariadbd on the same datadir.
 * The lock file holds the owner's pid; it is written to a private temp file first and hard-linked into
 * place, so it appears atomically and complete (an O_EXCL create would expose an empty file that a
 * competitor could mistake for a stale lock). A lock left by a dead process is reclaimed.
 */
export async function withStackLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(file), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  // Unique per call: two callers in one process must not share (and delete) each other's temp file.
  const temp = `${file}.${process.pid}.${randomUUID()}`;
  writeFileSync(temp, `${process.pid}\n`);
  try {
    for (;;) {
      try {
        linkSync(temp, file);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        if (!holderAlive(file)) {
          rmSync(file, { force: true });
          continue;
        }
        if (Date.now() >= deadline) throw new Error(`stack lock ${file} is held by another process`);
        await sleep(200);
      }
    }
  } finally {
    rmSync(temp, { force: true });
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}
