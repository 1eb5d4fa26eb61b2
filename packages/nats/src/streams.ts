import { ConfigError, ErrorCode, errorMessage, retryTransient, type TransientRetry } from "@dfs/common";
import {
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StoredMsg,
  type StreamConfig,
} from "@nats-io/jetstream";
import { compare, type NatsConnection, nanos, parseSemVer } from "@nats-io/transport-node";
import { brokerError } from "./connect.js";
import { dlqStreamSubjects, mainStreamSubjects, subjects } from "./subjects.js";

export interface StreamSettings {
  /** Copies of each message (1 on a single server, 3 or 5 in a cluster). */
  replicas: number;
  /** Messages older than this are dropped; 0 keeps them until `maxBytes` is reached. */
  maxAgeMs: number;
  /** Size limit per stream; the oldest messages go first (discard old). 0 or less: unlimited. */
  maxBytes: number;
  /** How long JetStream remembers Nats-Msg-Id values to drop republished duplicates (main stream). */
  duplicateWindowMs: number;
}

/** StreamSettings from the config's `nats.stream` section (durations and sizes already numbers). */
export function streamSettingsOf(s: {
  replicas: number;
  maxAge: number;
  maxBytes: number;
  duplicateWindow: number;
}): StreamSettings {
  return {
    replicas: s.replicas,
    maxAgeMs: s.maxAge,
    maxBytes: s.maxBytes,
    duplicateWindowMs: s.duplicateWindow,
  };
}

/** JetStream API error codes this module decides on. */
const STREAM_NAME_IN_USE = 10058;
const STREAM_NOT_FOUND = 10059;

type Desired = Partial<StreamConfig> & { name: string; subjects: string[] };

/**
 * Creates or updates the source's main stream and its dead-letter stream so that their settings
 * match `settings`. Safe to call on every start and from several processes at once. Dead letters
 * live in a separate stream so that the main stream has a single writer, the capture, and its last
 * message always tells the capture where it stopped.
 */
export async function ensureStreams(
  nc: NatsConnection,
  source: string,
  settings: StreamSettings,
): Promise<void> {
  checkSettings(settings);
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (err) {
    throw brokerError(err, "JetStream is not available");
  }
  // allow_direct (reads served by any replica) exists since nats-server 2.9; older servers reject it.
  const version = nc.info?.version;
  const direct = version !== undefined && compare(parseSemVer(version), parseSemVer("2.9.0")) >= 0;
  const common = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(settings.maxAgeMs),
    max_bytes: settings.maxBytes > 0 ? settings.maxBytes : -1,
    num_replicas: settings.replicas,
    ...(direct ? { allow_direct: true } : {}),
  };
  await ensureStream(jsm, source, {
    name: subjects.streamName(source),
    description: `dfs changes captured from source ${source}`,
    subjects: mainStreamSubjects(source),
    duplicate_window: nanos(settings.duplicateWindowMs),
    ...common,
  });
  // The DLQ keeps the server's default duplicate window (2 min, or max_age if shorter).
  await ensureStream(jsm, source, {
    name: subjects.dlqStreamName(source),
    description: `dfs dead letters of source ${source}`,
    subjects: dlqStreamSubjects(source),
    ...common,
  });
}

/**
 * ensureStreams, retried with backoff while JetStream cannot answer yet (a cluster still electing
 * its leaders, a replicated stream's peers catching up: "timeout"); settings it refuses stop at
 * once. Aborted by `signal`.
 */
export async function ensureStreamsWithRetry(
  nc: NatsConnection,
  source: string,
  settings: StreamSettings,
  retry: TransientRetry,
): Promise<void> {
  return retryTransient(() => ensureStreams(nc, source, settings), retry);
}

function checkSettings(s: StreamSettings): void {
  const problems: string[] = [];
  if (!Number.isInteger(s.replicas) || s.replicas < 1 || s.replicas > 5) {
    problems.push(`stream replicas must be an integer from 1 to 5, got ${s.replicas}`);
  }
  if (!(s.maxAgeMs >= 0)) problems.push(`stream max age must be >= 0 ms, got ${s.maxAgeMs}`);
  if (!(s.duplicateWindowMs > 0))
    problems.push(`duplicate window must be > 0 ms, got ${s.duplicateWindowMs}`);
  // The server refuses a duplicate window longer than max age (it could not remember ids that long).
  if (s.maxAgeMs > 0 && s.duplicateWindowMs > s.maxAgeMs) {
    problems.push(
      `duplicate window (${s.duplicateWindowMs} ms) must not exceed stream max age (${s.maxAgeMs} ms)`,
    );
  }
  if (problems.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, problems);
}

async function ensureStream(jsm: JetStreamManager, source: string, want: Desired): Promise<void> {
  let existing: StreamConfig | undefined;
  try {
    existing = (await jsm.streams.info(want.name)).config;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND)) {
      throw brokerError(err, `cannot read stream ${want.name}`);
    }
  }
  if (existing === undefined) {
    try {
      await jsm.streams.add({ ...want });
      return;
    } catch (err) {
      // Another process created it between our info and add: fall through and compare with theirs.
      if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE))
        throw streamError(err, want.name, "create");
    }
    existing = (await jsm.streams.info(want.name).catch((err) => Promise.reject(brokerError(err, want.name))))
      .config;
  }
  checkOwner(existing, source);
  if (!differs(existing, want)) return;
  try {
    // The client merges these fields into the current config, so settings we do not manage survive.
    const { name, ...update } = want;
    await jsm.streams.update(name, update);
  } catch (err) {
    throw streamError(err, want.name, "update");
  }
}

/**
 * Source ids that differ only in case or in '-' versus '_' map to the same stream name. Refuse to
 * take over a stream whose subjects belong to another source rather than silently rewiring it.
 */
function checkOwner(existing: StreamConfig, source: string): void {
  const other = (existing.subjects ?? []).find((s) => !s.startsWith(`dfs.${source}.`));
  if (other !== undefined) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `stream ${existing.name} already exists for subject ${other}, not for source "${source}" (source ids that differ only in case or '-'/'_' share a stream name)`,
    ]);
  }
}

function differs(existing: StreamConfig, want: Desired): boolean {
  for (const [key, value] of Object.entries(want)) {
    const have = (existing as unknown as Record<string, unknown>)[key];
    if (Array.isArray(value)) {
      const a = [...((have as string[] | undefined) ?? [])].sort().join("\n");
      if (a !== [...value].sort().join("\n")) return true;
    } else if (have !== value) {
      return true;
    }
  }
  return false;
}

function streamError(err: unknown, name: string, what: string): Error {
  const e = brokerError(err, `cannot ${what} stream ${name}`);
  // Anything the server refuses (replicas on a single server, storage change, overlapping subjects)
  // will not fix itself: a person must change the config or the stream.
  if (e instanceof JetStreamApiError) {
    return new ConfigError(
      ErrorCode.CONFIG_INVALID,
      [`cannot ${what} stream ${name}: ${errorMessage(e)} (err_code ${e.code})`],
      {
        cause: e,
      },
    );
  }
  return e;
}

export interface LastPublished {
  seq: number;
  /** The Nats-Msg-Id header of that message, if it had one. */
  msgId: string | undefined;
  /** Every header of the message; a header sent several times has its values joined with ",". */
  headers: Record<string, string>;
}

/**
 * The stream's last message, or null when the stream holds none. The capture calls this on start to
 * learn what it published last, so it reads the server's stream state and not a cache.
 */
export async function lastPublished(nc: NatsConnection, stream: string): Promise<LastPublished | null> {
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(stream);
    if (state.messages === 0) return null;
    // The last sequence can be a deleted message (deleted by hand); walk back over deletions, which
    // can be at most num_deleted messages.
    const floor = Math.max(state.first_seq, state.last_seq - (state.num_deleted ?? 0));
    for (let seq = state.last_seq; seq >= floor; seq--) {
      const sm = await jsm.streams.getMessage(stream, { seq });
      if (sm !== null) return toLastPublished(sm);
    }
    return null;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) {
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        [`stream ${stream} does not exist (ensureStreams creates it)`],
        {
          cause: err,
        },
      );
    }
    throw brokerError(err, `cannot read the last message of stream ${stream}`);
  }
}

function toLastPublished(sm: StoredMsg): LastPublished {
  const headers: Record<string, string> = {};
  // A stored message without headers has an empty header object; iterate defensively.
  if (sm.header) {
    for (const [key, values] of sm.header) headers[key] = values.join(",");
  }
  return { seq: sm.seq, msgId: headers["Nats-Msg-Id"], headers };
}
