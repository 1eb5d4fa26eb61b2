import { readFileSync } from "node:fs";
import {
  ConfigError,
  DfsError,
  displayUrls,
  ErrorCode,
  errorMessage,
  retryTransient,
  TransientError,
  type TransientRetry,
} from "@dfs/common";
import { JetStreamApiError } from "@nats-io/jetstream";
import {
  type Authenticator,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  errors,
  type NatsConnection,
  nkeyAuthenticator,
  type TlsOptions,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";

export type { NatsConnection };

/**
 * Room left in a message for its headers (ids, position, chunk headers, a dead letter's error cut
 * at 2,000 characters: well under 8 KiB).
 */
export const HEADER_ROOM = 8 * 1024;

/**
 * Most payload bytes of one message on this connection: the server's max_payload as its info says
 * now (1 MiB when unknown) less HEADER_ROOM, and at least 64 KiB. A larger payload goes as chunks
 * (@dfs/codec chunks.ts).
 */
export function maxMessageBytes(nc: NatsConnection): number {
  return Math.max(64 * 1024, (nc.info?.max_payload ?? 1024 * 1024) - HEADER_ROOM);
}

/** The `nats` section's connection keys (a DfsConfig's `nats` can be passed as it is). */
export interface NatsOptions {
  /** One URL or a comma-separated list (cluster seeds): nats://host:4222, tls://..., host:port. */
  url: string;
  /** Shown by the server's monitoring pages, so name the service (and source) that connects. */
  name: string;
  token?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  /** A user nkey seed ("SU..."). */
  nkeySeed?: string | undefined;
  /** A credentials file (user JWT + seed), read at every (re)connect so a renewed one is used. */
  credsFile?: string | undefined;
  /** TLS files (PEM); set, or a tls:// URL, means the connection must be TLS. */
  tls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined } | undefined;
}

/** The authenticator of the one auth method configured, if any. */
function authenticatorOf(o: NatsOptions): Authenticator | undefined {
  if (o.token) return tokenAuthenticator(o.token);
  if (o.user) return usernamePasswordAuthenticator(o.user, o.password);
  if (o.nkeySeed) return nkeyAuthenticator(new TextEncoder().encode(o.nkeySeed));
  const file = o.credsFile;
  if (file) return credsAuthenticator(() => readFileSync(file));
  return undefined;
}

/** TLS options: files read by the client; `{}` (TLS with the system's CAs) for a bare tls:// URL. */
function tlsOf(o: NatsOptions, servers: string[]): TlsOptions | undefined {
  const wantsTls = o.tls !== undefined || servers.some((s) => s.toLowerCase().startsWith("tls://"));
  if (!wantsTls) return undefined;
  const t: TlsOptions = {};
  if (o.tls?.ca) t.caFile = o.tls.ca;
  if (o.tls?.cert) t.certFile = o.tls.cert;
  if (o.tls?.key) t.keyFile = o.tls.key;
  return t;
}

/** The client's connection options for these settings (without the retry policy). */
export function natsConnectionOptions(o: NatsOptions): ConnectionOptions {
  const servers = parseServers(o.url);
  const authenticator = authenticatorOf(o);
  const tls = tlsOf(o, servers);
  return { servers, name: o.name, ...(authenticator ? { authenticator } : {}), ...(tls ? { tls } : {}) };
}

/** How long the first connect may take before the caller is told NATS is down. */
const FIRST_CONNECT_TIMEOUT_MS = 5_000;

/**
 * Connects to NATS and keeps the connection for the life of the process: after the first connect the
 * client reconnects forever, because the capture keeps journaling while NATS is away and only needs
 * the connection back eventually. The first connect is bounded so a wrong URL or a stopped server is
 * reported (as a TransientError the caller retries with backoff) instead of hanging start-up.
 */
export async function connectNats(opts: NatsOptions): Promise<NatsConnection> {
  const base = natsConnectionOptions(opts);
  const where = displayUrls(opts.url);

  // With waitOnFirstConnect the client retries the first connect forever and offers no way to cancel
  // it. The reconnect-to-server hook runs before every dial attempt and, if it throws, makes the
  // pending connect reject, so after our deadline it stops the background dialing (which would
  // otherwise keep the process alive) instead of leaking it.
  let gaveUp = false;
  const pending = connect({
    ...base,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // No Error (with a stack) made ahead of every request and publish: they were 5% of capture's
    // thread under an OLTP load. Errors still say what failed; they lack the caller's stack.
    noAsyncTraces: true,
    waitOnFirstConnect: true,
    timeout: FIRST_CONNECT_TIMEOUT_MS,
    reconnectToServer: () => {
      if (gaveUp) throw new Error("first connect abandoned");
      return null;
    },
  });

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), FIRST_CONNECT_TIMEOUT_MS);
  });
  try {
    const winner = await Promise.race([pending, deadline]);
    if (winner !== "timeout") return winner;
  } catch (err) {
    throw connectError(err, where);
  } finally {
    clearTimeout(timer);
  }

  gaveUp = true;
  // The dial loop may still succeed in the instant before it checks the flag: close that connection.
  pending.then((nc) => nc.close()).catch(() => {});
  // The retrying connect hides why it failed; one plain attempt tells (refused, TLS, credentials).
  const reason = await connect({ ...base, timeout: 2000, maxReconnectAttempts: 0 }).then(
    async (nc) => {
      await nc.close();
      return "";
    },
    (err: unknown) => {
      if (err instanceof errors.AuthorizationError) throw connectError(err, where);
      return `: ${errorMessage(err)}`;
    },
  );
  throw new TransientError(
    ErrorCode.BROKER_UNAVAILABLE,
    `NATS at ${where} is not reachable (no connection within ${FIRST_CONNECT_TIMEOUT_MS} ms)${reason}`,
    { details: { url: where } },
  );
}

/** Splits and checks the URL list up front, so a typo is a config error and not an endless retry. */
function parseServers(url: string): string[] {
  const servers = url
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const bad = servers.filter((s) => {
    try {
      const u = new URL(s.includes("://") ? s : `nats://${s}`);
      return !["nats:", "tls:"].includes(u.protocol) || u.hostname === "";
    } catch {
      return true;
    }
  });
  if (servers.length === 0 || bad.length > 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `nats url "${displayUrls(url)}" is not a valid NATS URL (expected nats://host:port[,nats://host:port...])`,
    ]);
  }
  return servers;
}

function connectError(err: unknown, where: string): DfsError {
  if (err instanceof DfsError) return err;
  if (err instanceof errors.AuthorizationError || err instanceof errors.UserAuthenticationExpiredError) {
    return new ConfigError(
      ErrorCode.CONFIG_INVALID,
      [`NATS at ${where} rejected the credentials: ${errorMessage(err)}`],
      {
        cause: err,
      },
    );
  }
  return new TransientError(
    ErrorCode.BROKER_UNAVAILABLE,
    `cannot connect to NATS at ${where}: ${errorMessage(err)}`,
    {
      cause: err,
      details: { url: where },
    },
  );
}

/**
 * True for errors that mean "NATS or JetStream is away or slow right now": retrying later can help.
 * Decided on error classes (and the API's 503 status), never on message text.
 */
export function isBrokerUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof JetStreamApiError) return err.status === 503;
  return (
    err instanceof errors.TimeoutError ||
    err instanceof errors.RequestError ||
    err instanceof errors.NoRespondersError ||
    err instanceof errors.ConnectionError ||
    err instanceof errors.ClosedConnectionError ||
    err instanceof errors.DrainingConnectionError ||
    // Not exported by @nats-io/jetstream: thrown when no JetStream answers (not enabled, or restarting).
    err.name === "JetStreamNotEnabled"
  );
}

/** Wraps an error from a NATS call: unavailability becomes TransientError(BROKER_UNAVAILABLE). */
export function brokerError(err: unknown, what: string): Error {
  if (err instanceof DfsError) return err;
  if (isBrokerUnavailable(err)) {
    return new TransientError(ErrorCode.BROKER_UNAVAILABLE, `${what}: ${errorMessage(err)}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(`${what}: ${String(err)}`);
}

/**
 * Connects, retrying with backoff while NATS is not reachable (a capture or DPU started before
 * NATS waits for it); credentials it refuses and malformed URLs stop at once. Aborted by `signal`.
 */
export async function connectNatsWithRetry(
  opts: NatsOptions,
  retry: TransientRetry,
): Promise<NatsConnection> {
  return retryTransient(() => connectNats(opts), retry);
}
