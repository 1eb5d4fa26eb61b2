// The worker thread of ArchiveWriterThread (writer-thread.ts): one ArchiveWriter, driven by the
// calls the DPU's thread posts, answered in order. Not part of the package's API.
import { parentPort, workerData } from "node:worker_threads";
import { Position } from "@dfs/codec";
import { ArchiveWriter } from "./writer.js";
import type { ThreadCall, ThreadOptions, ThreadReply } from "./writer-thread.js";

const port = parentPort!;
const o = workerData as ThreadOptions;

function reply(r: ThreadReply): void {
  port.postMessage(r);
}

function failure(err: unknown): ThreadReply["error"] {
  const e = err as { message?: string; code?: unknown; name?: string };
  return {
    message: e?.message ?? String(err),
    name: e?.name ?? "Error",
    ...(typeof e?.code === "string" ? { code: e.code } : {}),
  };
}

let w: ArchiveWriter;
try {
  w = ArchiveWriter.open({ ...o, log: (message, fields) => port.postMessage({ log: message, fields }) });
  reply({ id: 0, result: null, current: w.current?.name ?? null });
} catch (err) {
  reply({ id: 0, error: failure(err), current: null });
  process.exit(1);
}

function run(c: ThreadCall): unknown {
  switch (c.op) {
    case "readCheckpoint":
      return w.readCheckpoint();
    case "write":
      return w.writePacked(c.changes, c.cp);
    case "writePart":
      return w.writePartPacked(c.changes);
    case "commitLarge":
      return w.commitLarge(c.cp);
    case "abortLarge":
      return w.abortLarge();
    case "writeDdl": {
      const p = c.ddl.position;
      const position = p.file ? Position.fromRecord({ file: p.file, pos: p.pos }) : Position.NONE;
      return w.writeDdl({ ...c.ddl, position }, c.cp);
    }
    case "saveCheckpoint":
      return w.saveCheckpoint(c.cp);
    case "hasDefinition":
      return w.hasDefinition(c.ref);
    case "recordDefinition":
      return w.recordDefinition(c.ref, c.seq, c.sql);
    case "close":
      w.close();
      return null;
  }
}

port.on("message", (c: ThreadCall) => {
  try {
    const result = run(c) ?? null;
    reply({ id: c.id, result, current: w.current?.name ?? null });
  } catch (err) {
    reply({ id: c.id, error: failure(err), current: w.current?.name ?? null });
  }
  if (c.op === "close") port.close();
});
