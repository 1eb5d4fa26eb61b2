/**
 * @dfs/capture: binlog -> SQLite journal -> JetStream. `startCapture` builds and runs the service;
 * its parts are internal (see docs/capture.md for which file does what).
 */
export type { CaptureService, CaptureState, CaptureStatus } from "./runtime.js";
export { type CaptureDeps, startCapture } from "./service.js";
