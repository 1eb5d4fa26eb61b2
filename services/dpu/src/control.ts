import { sameTable } from "@dfs/codec";
import type { ControlHandlers } from "@dfs/control";
import { healthOf } from "@dfs/metrics";
import type { NatsConnection } from "@nats-io/transport-node";
import { listDeadLetters } from "./dlq.js";
import type { DpuRuntime } from "./runtime.js";
import { stageStatus } from "./telemetry.js";

/** What the DPU answers on its control plane: every call maps to one runtime method or the DLQ. */
export function dpuControl(
  dpu: DpuRuntime,
  nc: NatsConnection,
  sourceId: string,
  stream: string,
): ControlHandlers {
  const status = () => stageStatus(dpu.status(), sourceId, stream);
  return {
    health: () => healthOf(dpu.status()),
    status,
    pause: () => {
      dpu.pause();
      return status();
    },
    resume: () => {
      dpu.resume();
      return status();
    },
    setPosition: async (req) => {
      await dpu.setPosition(req.position);
      return status();
    },
    listDlq: async (req) => {
      const entries = await listDeadLetters(nc, sourceId, req.limit > 0 ? req.limit : 100);
      const table = req.table;
      return {
        entries: entries
          .filter((e) => !table || sameTable(e, table))
          .map((e) => ({
            seq: BigInt(e.seq),
            subject: e.subject,
            db: e.db,
            table: e.table,
            error: e.errno ? `${e.error} (errno ${e.errno})` : e.error,
            timeMs: BigInt(e.timeMs),
            rows: 1,
          })),
      };
    },
    replayDlq: async (req) => {
      const results = await dpu.replayDlq(req.seqs.map((s) => Number(s)));
      return { replayed: results.filter((r) => r.ok && !r.superseded).length };
    },
    activity: (req) => dpu.telemetry.activity.query(req),
  };
}
