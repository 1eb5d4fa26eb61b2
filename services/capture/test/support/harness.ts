// Shared helpers of the capture data-path tests (*.test.ts). Not part of the service's API.

import { decodeBatch, decodeDdl, Headers } from "@dfs/codec";
import { waitFor } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { connectNats, subjects } from "@dfs/nats";
import type { ChangeBatch, DdlEvent } from "@dfs/proto";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Connection } from "mysql2/promise";
import { type CaptureService, startCapture } from "../../dist/index.js";

/** One stored message with its raw payload, decoded when it is a batch or a DDL event. */
export interface RawMessage {
  seq: number;
  subject: string;
  msgId: string;
  kind: string;
  data: Uint8Array;
  batch?: ChangeBatch;
  ddl?: DdlEvent;
}

function decodeRaw(m: JsMsg): RawMessage {
  const kind = m.headers?.get(Headers.kind) ?? "";
  const out: RawMessage = {
    seq: m.seq,
    subject: m.subject,
    msgId: m.headers?.get("Nats-Msg-Id") ?? "",
    kind,
    data: m.data,
  };
  if (kind === "batch") out.batch = decodeBatch(m.data);
  else if (kind === "ddl") out.ddl = decodeDdl(m.data);
  return out;
}

/** Every message in the source's main stream, in stream order, payloads kept. */
export async function readRaw(nc: NatsConnection, sourceId: string): Promise<RawMessage[]> {
  const stream = subjects.streamName(sourceId);
  const info = await (await jetstreamManager(nc)).streams.info(stream);
  const out: RawMessage[] = [];
  if (info.state.messages === 0) return out;
  const consumer = await jetstream(nc).consumers.get(stream, { opt_start_seq: info.state.first_seq });
  while (out.length === 0 || out[out.length - 1]!.seq < info.state.last_seq) {
    let got = 0;
    for await (const m of await consumer.fetch({ max_messages: 2000, expires: 2000 })) {
      out.push(decodeRaw(m));
      got++;
    }
    if (got === 0) break;
  }
  return out;
}

/** Polls the stream until `done(messages)` holds; the deadline error says what was there. */
export async function waitForRaw(
  nc: NatsConnection,
  sourceId: string,
  done: (messages: RawMessage[]) => boolean,
  timeoutMs = 60_000,
): Promise<RawMessage[]> {
  let last: RawMessage[] = [];
  await waitFor(
    async () => {
      last = await readRaw(nc, sourceId);
      return done(last);
    },
    { timeoutMs, intervalMs: 300, what: `stream of ${sourceId}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; stream has ${last.length} messages, ${rowCount(last)} row changes`);
  });
  return last;
}

export function batchesOf(messages: RawMessage[]): ChangeBatch[] {
  return messages.flatMap((m) => (m.batch ? [m.batch] : []));
}

export function rowCount(messages: RawMessage[]): number {
  return batchesOf(messages).reduce((n, b) => n + b.rows.length, 0);
}

/** Whether `needle` occurs anywhere in `data` (as UTF-8 bytes). */
export function bytesContain(data: Uint8Array, needle: string): boolean {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).includes(Buffer.from(needle, "utf8"));
}

/** A running capture of one test: its ids, a source connection, a NATS connection. */
export interface Harness {
  id: string;
  /** The database capture includes (the first of `dbs`). */
  db: string;
  /** Every database the test created: `<id>_db`, `<id>_db2`, ... */
  dbs: string[];
  conn: Connection;
  nc: NatsConnection;
  capture: CaptureService;
  cfg: DfsConfig;
  /** Stops capture (if running) and starts it again with the same config and journal. */
  restart(): Promise<CaptureService>;
  /** Stops capture, closes connections, drops the test's databases and streams. */
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** How many databases to create (default 1). */
  databases?: number;
  /** Deep-merged into the test config (see testkit's testConfig); a function gets the database names. */
  overrides?: Record<string, unknown> | ((dbs: string[]) => Record<string, unknown>);
}

/** Creates the test's databases, starts capture including the first one, and connects. */
export async function startHarness(prefix: string, options: HarnessOptions = {}): Promise<Harness> {
  await ensureStack();
  const id = uniqueId(prefix);
  const dbs = Array.from({ length: options.databases ?? 1 }, (_, i) => `${id}_db${i === 0 ? "" : i + 1}`);
  const db = dbs[0]!;
  const conn = await sourceConnection();
  const opened: { nc?: NatsConnection; capture?: CaptureService } = {};
  const close = async () => {
    await opened.capture?.stop().catch(() => {});
    if (opened.nc) {
      await deleteStreams(opened.nc, id).catch(() => {});
      await opened.nc.close().catch(() => {});
    }
    for (const d of dbs) await conn.query(`DROP DATABASE IF EXISTS \`${d}\``).catch(() => {});
    await conn.end().catch(() => {});
  };
  try {
    for (const d of dbs) await conn.query(`CREATE DATABASE \`${d}\``);
    opened.nc = await connectNats({ url: urls.natsUrl, name: `capture-test-${id}` });
    const overrides =
      typeof options.overrides === "function" ? options.overrides(dbs) : (options.overrides ?? {});
    const cfg = testConfig(id, db, overrides);
    opened.capture = await startCapture(cfg);
    const h: Harness = {
      id,
      db,
      dbs,
      conn,
      nc: opened.nc,
      capture: opened.capture,
      cfg,
      async restart() {
        await opened.capture?.stop().catch(() => {});
        opened.capture = await startCapture(cfg);
        h.capture = opened.capture;
        return h.capture;
      },
      close,
    };
    return h;
  } catch (err) {
    await close();
    throw err;
  }
}
