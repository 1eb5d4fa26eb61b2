/**
 * @dfs/nats: the connection to NATS, subject and stream naming, stream provisioning, the
 * single-capture lease, the stream writer a publisher writes through, and reading what was
 * published last.
 */
export {
  brokerError,
  connectNats,
  connectNatsWithRetry,
  HEADER_ROOM,
  isBrokerUnavailable,
  maxMessageBytes,
  type NatsConnection,
  type NatsOptions,
} from "./connect.js";
export { acquireLease, type Lease, type LeaseOptions } from "./lease.js";
export { PLAN_BUCKET, type Plan, publishPlan, readPlan, type TableGroupPlan, watchPlan } from "./plan.js";
export { jetStreamWriter, type StreamWriter } from "./stream-writer.js";
export {
  ensureStreams,
  ensureStreamsWithRetry,
  type LastPublished,
  lastPublished,
  type StreamSettings,
  streamSettingsOf,
} from "./streams.js";
export { decodeToken, encodeToken, subjects } from "./subjects.js";
