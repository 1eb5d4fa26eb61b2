export { Assembler, type BinlogHandler, type ReadPosition } from "./assembler.js";
export { checkSource, type SourceFacts } from "./checks.js";
export { type DdlInfo, parseDdl } from "./ddl.js";
export { type FilterRules, TableFilter } from "./filter.js";
export { type Checkpoint, Journal, type JournalEntry } from "./journal.js";
export { type CaptureService, type CaptureState, type CaptureStatus, startCapture } from "./service.js";
