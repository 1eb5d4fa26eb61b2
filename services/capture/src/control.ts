import type { ControlHandlers } from "@dfs/control";
import { healthOf } from "@dfs/metrics";
import type { CaptureRuntime } from "./runtime.js";
import { stageStatus } from "./telemetry.js";

/** What capture answers on its control plane: every call maps to one runtime method. */
export function captureControl(capture: CaptureRuntime): ControlHandlers {
  const status = () => stageStatus(capture.status());
  return {
    health: () => healthOf(capture.status()),
    status,
    pause: () => {
      capture.pause();
      return status();
    },
    resume: () => {
      capture.resume();
      return status();
    },
    setPosition: async (req) => {
      await capture.setPosition(req.position);
      return status();
    },
    snapshot: async (req) => ({ snapshotId: await capture.snapshot(req.tables) }),
    activity: (req) => capture.telemetry.activity.query(req),
  };
}
