/**
 * @dfs/dpu: JetStream -> target. `startDpu` builds and runs the service; `listDeadLetters` and
 * `replayFromConfig` serve `dfs dlq`; `checkMappings` serves `dfs doctor`; `compiledMappings` and
 * `openRepairSink` serve `dfs verify`; `replayArchive` serves `dfs archive replay`. Its parts are
 * internal (see docs/dpu.md).
 */
export { type ArchiveReplayOptions, type ArchiveReplayResult, replayArchive } from "./archive/replay.js";
export { type DlqEntry, listDeadLetters, readDeadLetter } from "./dlq.js";
export { checkMappings, compiledMappings } from "./pipeline/setup.js";
export { openRepairSink, type RepairRow, type RepairSink } from "./repair.js";
export { type ReplayResult, replayFromConfig } from "./replay.js";
export type { DpuService, DpuStatus } from "./runtime.js";
export { type DpuDeps, startDpu } from "./service.js";
