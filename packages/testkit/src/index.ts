import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type DecodedChange,
  decodeBatch,
  decodeChanges,
  decodeDdl,
  decodeHeartbeat,
  Headers,
} from "@dfs/codec";
import { waitFor } from "@dfs/common";
import { type DfsConfig, parseConfig } from "@dfs/config";
import { subjects } from "@dfs/nats";
import type { DdlEvent, Heartbeat } from "@dfs/proto";
import { stackUp, stackUrls } from "@dfs/stack";
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import mysql from "mysql2/promise";

export const urls = stackUrls();

function answers(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Starts the project's stack if it is not up (idempotent, shared by all test files). Servers
 * already answering on the stack's ports (a stack another checkout of the project started, which
 * `stack up` here would refuse as not its own) are used as they are.
 */
export async function ensureStack(): Promise<void> {
  const up = await Promise.all([urls.sourceUrl, urls.targetUrl, urls.natsUrl].map(answers));
  if (up.every(Boolean)) return;
  // DFS_STACK_EXTERNAL=1: the servers belong to another checkout; never start (or take) them here.
  if (process.env.DFS_STACK_EXTERNAL === "1")
    throw new Error("DFS_STACK_EXTERNAL=1, but the stack's servers do not all answer");
  await stackUp({ log: () => {} });
}

/** A name no other test uses: for source ids, databases and streams. */
export function uniqueId(prefix = "t"): string {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

export function tempDir(prefix = "dfs-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A connection to the stack's source MariaDB (root, multiple statements allowed). */
export async function sourceConnection(database?: string): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: "127.0.0.1",
    port: 13306,
    user: "root",
    database,
    multipleStatements: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  });
}

/** A config for one test: its own source id, journal and include rule; deep-merged overrides. */
export function testConfig(
  sourceId: string,
  database: string,
  overrides: Record<string, unknown> = {},
): DfsConfig {
  const base: Record<string, unknown> = {
    source: {
      id: sourceId,
      url: urls.sourceUrl,
      serverId: 5000 + Math.floor(Math.random() * 50_000),
      include: { databases: [database] },
    },
    nats: { url: urls.natsUrl },
    capture: {
      journal: { path: join(tempDir(), "journal.db") },
      heartbeatIntervalMs: 500,
      http: { port: 0 },
      grpc: { port: 0 },
    },
    dpu: { http: { port: 0 }, grpc: { port: 0 } },
    monitor: { http: { port: 0 } },
    log: { level: "warn" },
  };
  return parseConfig(merge(base, overrides), {}, "test");
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && cur && typeof cur === "object" && !Array.isArray(cur)
        ? merge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** One message of a source's stream, decoded. */
export type StreamMessage =
  | { kind: "batch"; seq: number; subject: string; msgId: string; events: DecodedChange[]; txnLast: boolean }
  | { kind: "ddl"; seq: number; subject: string; msgId: string; ddl: DdlEvent }
  | { kind: "heartbeat"; seq: number; subject: string; msgId: string; heartbeat: Heartbeat };

function decode(m: JsMsg): StreamMessage {
  const kind = m.headers?.get(Headers.kind);
  const msgId = m.headers?.get("Nats-Msg-Id") ?? "";
  const base = { seq: m.seq, subject: m.subject, msgId };
  if (kind === "ddl") return { kind, ...base, ddl: decodeDdl(m.data) };
  if (kind === "heartbeat") return { kind, ...base, heartbeat: decodeHeartbeat(m.data) };
  const batch = decodeBatch(m.data);
  return { kind: "batch", ...base, events: decodeChanges(batch), txnLast: batch.txnLast };
}

/** Every message currently in the source's stream, in stream order. */
export async function readStream(nc: NatsConnection, sourceId: string): Promise<StreamMessage[]> {
  const stream = subjects.streamName(sourceId);
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const total = info.state.last_seq;
  const out: StreamMessage[] = [];
  if (info.state.messages === 0) return out;
  const consumer = await jetstream(nc).consumers.get(stream, { opt_start_seq: info.state.first_seq });
  while (out.length === 0 || out[out.length - 1]!.seq < total) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
    let got = 0;
    for await (const m of batch) {
      out.push(decode(m));
      got++;
    }
    if (got === 0) break;
  }
  return out;
}

/** All row changes in the stream, in order. */
export function changesOf(messages: StreamMessage[]): DecodedChange[] {
  return messages.flatMap((m) => (m.kind === "batch" ? m.events : []));
}

/** Polls the stream until `done(messages)` holds. */
export async function waitForStream(
  nc: NatsConnection,
  sourceId: string,
  done: (messages: StreamMessage[]) => boolean,
  timeoutMs = 30_000,
): Promise<StreamMessage[]> {
  let last: StreamMessage[] = [];
  await waitFor(
    async () => {
      last = await readStream(nc, sourceId);
      return done(last);
    },
    { timeoutMs, intervalMs: 250, what: `stream of ${sourceId} to reach the expected state` },
  ).catch((err: Error) => {
    throw new Error(
      `${err.message}; stream has ${last.length} messages, ${changesOf(last).length} row changes`,
    );
  });
  return last;
}

/** Deletes a test source's streams (main and DLQ). */
export async function deleteStreams(nc: NatsConnection, sourceId: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const name of [subjects.streamName(sourceId), subjects.dlqStreamName(sourceId)]) {
    await jsm.streams.delete(name).catch(() => {});
  }
}
export {
  killChild,
  type ServiceChild,
  spawnServiceChild,
  toYaml,
  waitChildReady,
  writeConfig,
} from "./child.js";
export {
  freePort,
  type PrivateNats,
  type PrivateStack,
  startPrivateNats,
  startPrivateStack,
} from "./private-stack.js";
