/**
 * @dfs/archive: the backup use's SQLite archive (docs/backup.md). `ArchiveWriter` writes it;
 * `ArchiveWriterThread` runs one on a worker thread (the DPU's archive sink); `ArchiveReader` reads it, `archiveStats` summarises it and `flashback`
 * turns a range into the SQL that undoes it.
 */
export { FLASHBACK_SESSION, type Flashback, flashback, inverseOf, txnComment } from "./flashback.js";
export { type ArchiveFile, type ArchivePeriod, FORMAT_VERSION, listFiles } from "./format.js";
export { keyText, parseKeyArg } from "./keys.js";
export { type LaterChange, laterChanges } from "./later.js";
export { type PackedChanges, packChanges } from "./pack.js";
export { type ArchiveEntry, type ArchiveFilter, ArchiveReader, type TxnInfo } from "./reader.js";
export { type ArchiveStats, archiveStats, type FileStats, type TableStats } from "./stats.js";
export {
  type ArchivedChange,
  type ArchivedDdl,
  ArchiveWriter,
  type ArchiveWriterOptions,
  type CheckpointWrite,
} from "./writer.js";
export { ArchiveWriterThread } from "./writer-thread.js";
