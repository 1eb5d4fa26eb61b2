/**
 * @dfs/nats: the connection to NATS, subject and stream naming, stream provisioning, the
 * single-capture lease and reading what was published last. Publishing itself is the capture's job.
 */
export { connectNats, type NatsConnection, type NatsOptions } from "./connect.js";
export { acquireLease, type Lease, type LeaseOptions } from "./lease.js";
export { ensureStreams, type LastPublished, lastPublished, type StreamSettings } from "./streams.js";
export { decodeToken, encodeToken, subjects } from "./subjects.js";
