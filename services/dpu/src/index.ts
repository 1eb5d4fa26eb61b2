export { Applier, type Rejected } from "./apply.js";
export { type DlqEntry, deleteDeadLetter, listDeadLetters, publishDeadLetters } from "./dlq.js";
export { type Change, planStatements, quoteId, type Statement, type TargetTable } from "./plan.js";
export { type ReplayResult, replayDeadLetters } from "./replay.js";
export { type DpuService, type DpuStatus, startDpu } from "./service.js";
export { mapDdl, TargetCatalog } from "./target.js";
