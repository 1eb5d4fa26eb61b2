import { Worker } from "node:worker_threads";
import type { TableRef } from "@dfs/codec";
import { type PackedChanges, packChanges } from "./pack.js";
import type { ArchivedChange, ArchivedDdl, ArchiveWriterOptions, CheckpointWrite } from "./writer.js";

/** What the thread is opened with: the writer's options that can cross a thread. */
export type ThreadOptions = Omit<ArchiveWriterOptions, "now" | "log">;

/** A schema change as it crosses the thread (its position as plain fields). */
type WireDdl = Omit<ArchivedDdl, "position"> & { position: { file: string; pos: number } };

/** A call to the thread. Internal: thread.ts answers it. */
export type ThreadCall = { id: number } & (
  | { op: "readCheckpoint" | "abortLarge" | "close" }
  | { op: "write"; changes: PackedChanges; cp: CheckpointWrite }
  | { op: "writePart"; changes: PackedChanges }
  | { op: "commitLarge" | "saveCheckpoint"; cp: CheckpointWrite }
  | { op: "writeDdl"; ddl: WireDdl; cp: CheckpointWrite }
  | { op: "hasDefinition"; ref: TableRef }
  | { op: "recordDefinition"; ref: TableRef; seq: number; sql: string }
);

/** The thread's answer to call `id` (0: to opening). Internal. */
export interface ThreadReply {
  id: number;
  result?: unknown;
  error?: { message: string; name: string; code?: string };
  /** The file being written after the call. */
  current: string | null;
}

type Call = ThreadCall extends infer C ? (C extends ThreadCall ? Omit<C, "id"> : never) : never;

/**
 * An ArchiveWriter on a worker thread of its own: the DPU's thread packs each write (packChanges:
 * the rows' envelope bytes copied into shared memory) and goes on pulling and decoding the
 * next group while SQLite inserts and commits this one. Calls are answered in order; each resolves
 * once the thread has done it (a write: committed, checkpoint included), so the DPU acknowledges
 * messages only after their commit, as with the writer in its own thread.
 */
export class ArchiveWriterThread {
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private nextId = 1;
  private failed: Error | null = null;
  /** Shared buffers free for the next write (see `space`). */
  private readonly spare: Uint8Array[] = [];
  /** The file being written (null before the first write). */
  current: string | null = null;

  private constructor(
    private readonly worker: Worker,
    private readonly dir: string,
  ) {}

  /** Starts the thread and opens the archive in it (as ArchiveWriter.open: retention runs). */
  static async open(
    o: ThreadOptions & { log?: (message: string, fields: Record<string, unknown>) => void },
  ): Promise<ArchiveWriterThread> {
    const { log, ...options } = o;
    const worker = new Worker(new URL("./thread.js", import.meta.url), { workerData: options });
    const t = new ArchiveWriterThread(worker, o.dir);
    const opened = new Promise<unknown>((resolve, reject) => t.pending.set(0, { resolve, reject }));
    worker.on("message", (m: ThreadReply | { log: string; fields: Record<string, unknown> }) => {
      if ("log" in m) log?.(m.log, m.fields);
      else t.settle(m);
    });
    worker.on("error", (err) => t.fail(err));
    worker.on("exit", (code) =>
      t.fail(new Error(`the archive writer thread of ${o.dir} exited (code ${code})`)),
    );
    await opened;
    return t;
  }

  readCheckpoint(): Promise<{ lowWater: number; units: string[] }> {
    return this.call({ op: "readCheckpoint" }) as Promise<{ lowWater: number; units: string[] }>;
  }

  /** Changes (whole source transactions, in order) and the checkpoint, in one SQLite transaction. */
  async write(changes: readonly ArchivedChange[], cp: CheckpointWrite): Promise<void> {
    const space = this.space();
    try {
      await this.call({ op: "write", changes: packChanges(changes, space.take), cp });
    } finally {
      space.give();
    }
  }

  /** Part of a source transaction larger than a group: into one open SQLite transaction. */
  async writePart(changes: readonly ArchivedChange[]): Promise<void> {
    const space = this.space();
    try {
      await this.call({ op: "writePart", changes: packChanges(changes, space.take) });
    } finally {
      space.give();
    }
  }

  /**
   * Shared memory for a write's envelope bytes, given back once the thread answered: no copy
   * crosses the thread and no buffer is allocated per write (each would be garbage for a
   * collector on both threads, and, transferred, stay allocated until the thread's next one).
   */
  private space(): { take(bytes: number): Uint8Array; give(): void } {
    let buf = this.spare.pop() ?? null;
    return {
      take: (bytes) => {
        if (!buf || buf.byteLength < bytes)
          buf = new Uint8Array(new SharedArrayBuffer(Math.max(1 << 20, 2 ** Math.ceil(Math.log2(bytes)))));
        return buf;
      },
      give: () => {
        if (buf) this.spare.push(buf);
      },
    };
  }

  async commitLarge(cp: CheckpointWrite): Promise<void> {
    await this.call({ op: "commitLarge", cp });
  }

  async abortLarge(): Promise<void> {
    await this.call({ op: "abortLarge" });
  }

  async writeDdl(ddl: ArchivedDdl, cp: CheckpointWrite): Promise<void> {
    const p = ddl.position;
    const position = p.hasFile ? { file: p.file, pos: Number(p.pos) } : { file: "", pos: 0 };
    await this.call({ op: "writeDdl", ddl: { ...ddl, tables: [...ddl.tables], position }, cp });
  }

  async saveCheckpoint(cp: CheckpointWrite): Promise<void> {
    await this.call({ op: "saveCheckpoint", cp });
  }

  hasDefinition(ref: TableRef): Promise<boolean> {
    return this.call({ op: "hasDefinition", ref: { db: ref.db, table: ref.table } }) as Promise<boolean>;
  }

  async recordDefinition(ref: TableRef, seq: number, sql: string): Promise<void> {
    await this.call({ op: "recordDefinition", ref: { db: ref.db, table: ref.table }, seq, sql });
  }

  /** Closes the archive (an open large transaction is rolled back) and ends the thread. */
  async close(): Promise<void> {
    if (!this.failed) await this.call({ op: "close" }).catch(() => {});
    this.failed ??= new Error("the archive writer is closed");
    await this.worker.terminate();
  }

  private call(c: Call): Promise<unknown> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...c });
    });
  }

  private settle(m: ThreadReply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.current = m.current;
    if (!m.error) {
      p.resolve(m.result);
      return;
    }
    const err = Object.assign(new Error(`${this.dir}: ${m.error.message}`), {
      name: m.error.name,
      ...(m.error.code ? { code: m.error.code } : {}),
    });
    p.reject(err);
  }

  /** The thread failed or exited: every call waiting, and every later one, fails with why. */
  private fail(err: Error): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(this.failed);
    this.pending.clear();
  }
}
