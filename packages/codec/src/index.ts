/**
 * @dfs/codec: the data model every service shares. Positions in a source's history, table
 * references, message ids, the envelope's values and batches, and the decoded change.
 */
export {
  checkBatchHeader,
  type DecodedChange,
  decodeBatch,
  decodeChanges,
  decodeDdl,
  decodeHeartbeat,
  encodeBatch,
  encodeDdl,
  encodeHeartbeat,
  type OpCode,
  opCode,
  type Row,
  rowField,
} from "./batch.js";
export { decodeBatchChanges, decodeRowField, type SplitBatch, splitBatch } from "./batch-reader.js";
export {
  type ChunkHeader,
  ChunkHeaders,
  ChunkJoiner,
  type ChunkPiece,
  chunkCount,
  chunkHeaders,
  chunkMsgId,
  chunkSlice,
  type JoinResult,
  MAX_JOINED_BYTES,
  parseChunkHeader,
  sha256Hex,
  sliceRange,
} from "./chunks.js";
export { type GtidFlavor, gtidFlavor, isGtidSet } from "./gtid.js";
export { messageIds } from "./message-id.js";
export {
  binlogFileNumber,
  Headers,
  type MessageKind,
  Position,
  parseStartPoint,
  parseStreamPoint,
  type StartPoint,
  type StreamPoint,
} from "./position.js";
export { encodeBatchWithRows, RowsWriter } from "./rows-writer.js";
export {
  formatName,
  formatTableRef,
  fromTableKey,
  parseTableRef,
  sameTable,
  splitQualified,
  type TableRef,
  tableKey,
  tableRef,
} from "./table-ref.js";
export { writeUtf8 } from "./utf8.js";
export { fromValue, type SqlValue, toValue, ValueKind, valueCase } from "./values.js";
