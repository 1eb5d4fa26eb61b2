export {
  type ChangeEvent,
  decodeBatch,
  decodeDdl,
  decodeHeartbeat,
  encodeBatch,
  encodeDdl,
  encodeHeartbeat,
  expandBatch,
  type OpCode,
  opCode,
} from "./batch.js";
export { binlogFileNumber, Headers, type MessageKind, sortablePosition } from "./position.js";
export { encodeBatchWithRows, RowsWriter } from "./rows-writer.js";
export { fromValue, type SqlValue, toValue, ValueKind, valueCase } from "./values.js";
