// Helpers of the endpoint fuzz tests: raw TCP, HTTP/1, HTTP/2 and gRPC clients that send what no
// client library would and report what became of it (a status, a GOAWAY, or how the connection
// ended), WebSocket frames built by hand, and a per-table checksum. Not part of the service's API.
import http2 from "node:http2";
import { connect } from "node:net";
import type { Random } from "@dfs/common";
import { WebSocket } from "ws";

/** How long one input may take to be answered or closed. */
export const DEADLINE_MS = 5_000;

/** What became of one input: a status, or how the connection ended. */
export type Outcome = string;

export const q = (name: string) => `\`${name.replace(/`/g, "``")}\``;

/**
 * Writes raw bytes to a port; resolves with what came back first (or "closed"/"silent"). `end`
 * half-closes after writing (a peer that sent a truncated input and left); `untilClose` waits for
 * the close instead of returning at the first HTTP status line.
 */
export function raw(
  port: number,
  bytes: Buffer,
  o: { untilClose?: boolean; end?: boolean } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    let got = "";
    const done = (o: Outcome) => {
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done(got ? `answered ${got.slice(0, 12)}, open` : "silent"), DEADLINE_MS);
    s.on("data", (d) => {
      got += d.toString("latin1");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      if (status && !o.untilClose) done(`http ${status[1]}`);
    });
    s.on("error", () => done(got ? "answered, reset" : "reset"));
    s.on("close", () => done(got ? `answered ${got.length} bytes, closed` : "closed"));
    s.write(bytes, () => {});
    if (o.end) s.end();
  });
}

/** One HTTP/1.1 request written by hand (methods, paths and headers no client library would send). */
export function httpRaw(
  port: number,
  head: string,
  body: Buffer = Buffer.alloc(0),
  o: { end?: boolean } = {},
): Promise<Outcome> {
  return raw(port, Buffer.concat([Buffer.from(head, "latin1"), body]), o);
}

/** One gRPC call with a body of our making; resolves with its grpc-status (or how it ended). */
export function grpcCall(
  port: number,
  path: string,
  body: Buffer,
  o: { token?: string; headers?: Record<string, string> } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    let status: string | undefined;
    const done = (out: Outcome) => {
      clearTimeout(timer);
      session.destroy();
      resolve(out);
    };
    const timer = setTimeout(() => done(status ? `grpc ${status}` : "timeout"), DEADLINE_MS);
    session.on("error", () => done(status ? `grpc ${status}` : "session error"));
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
      ...o.headers,
    });
    req.on("response", (h) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    });
    req.on("trailers", (h) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    });
    req.on("data", () => {});
    req.on("error", () => done(status ? `grpc ${status}` : "stream error"));
    req.on("close", () => done(status ? `grpc ${status}` : `closed (rst ${req.rstCode})`));
    req.end(body);
  });
}

/** A gRPC message frame: compression flag, 4-byte length, bytes. */
export function frame(bytes: Buffer, o: { length?: number; compressed?: boolean } = {}): Buffer {
  const h = Buffer.alloc(5);
  h[0] = o.compressed ? 1 : 0;
  h.writeUInt32BE(o.length ?? bytes.length, 1);
  return Buffer.concat([h, bytes]);
}

/** Whether gRPC sees a complete message in `body` (else grpc-js answers UNIMPLEMENTED itself). */
export function hasMessage(body: Buffer, encoding = "identity"): boolean {
  const complete = body.length >= 5 && body.readUInt32BE(1) <= body.length - 5;
  const decompressable = body[0] === 0 || encoding === "gzip" || encoding === "deflate";
  return complete && decompressable;
}

export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** One HTTP/2 frame: 24-bit length (`length` may lie about the payload), type, flags, stream id. */
export function h2Frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer,
  length?: number,
): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(length ?? payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fff_ffff, 5);
  return Buffer.concat([h, payload]);
}

/**
 * Writes an HTTP/2 connection's bytes and reads the server's frames: resolves at the first answer
 * to them, "goaway <error code>", "rst <error code>" (a stream refused) or "response" (HEADERS
 * on a stream), then closes the connection itself (node's HTTP/2 server, under grpc-js, leaves a
 * connection open after a GOAWAY for an error until the peer closes it); else with how the
 * connection ended. `end` half-closes after writing (the input is truncated: the server cannot
 * know until the peer leaves).
 */
export function h2Raw(port: number, bytes: Buffer, o: { end?: boolean } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    let got = Buffer.alloc(0);
    const done = (out: Outcome) => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(() => done(got.length ? "answered, open" : "silent"), DEADLINE_MS);
    s.on("data", (d) => {
      got = Buffer.concat([got, d]);
      // The server's frames: GOAWAY (type 7) carries its error code in its payload's second word,
      // RST_STREAM (type 3) in its first; HEADERS (type 1) answers a stream.
      for (let at = 0; at + 9 <= got.length; at += 9 + got.readUIntBE(at, 3)) {
        const type = got[at + 3];
        if (type === 7 && at + 9 + 8 <= got.length) return done(`goaway ${got.readUInt32BE(at + 13)}`);
        if (type === 3 && at + 9 + 4 <= got.length) return done(`rst ${got.readUInt32BE(at + 9)}`);
        if (type === 1) return done("response");
      }
    });
    s.on("error", () => done("reset"));
    s.on("close", () => done("closed"));
    s.write(bytes, () => {});
    if (o.end) s.end();
  });
}

/**
 * A protocol error in an HTTP/2 connection, after the preface and an empty SETTINGS: what it is,
 * its bytes, whether to half-close after it (a truncated input: the server waits for the rest
 * until the peer leaves), and what h2Raw may see in answer: a connection error is a GOAWAY with
 * its code (1 PROTOCOL_ERROR, 3 FLOW_CONTROL_ERROR, 6 FRAME_SIZE_ERROR, 9 COMPRESSION_ERROR...);
 * a header block that decodes is a stream error (RST_STREAM) or an answer on the stream.
 */
export function h2Bad(r: Random): { what: string; bytes: Buffer; end: boolean; answer: RegExp } {
  const settings = h2Frame(4, 0, 0, Buffer.alloc(0));
  const start = (...frames: Buffer[]) => Buffer.concat([H2_PREFACE, settings, ...frames]);
  const goaway = /^goaway [1-9]\d*$/;
  const big = 16_385 + r.int(1024 * 1024);
  switch (r.int(9)) {
    case 0: // above SETTINGS_MAX_FRAME_SIZE (16 KiB, the default)
      return {
        what: `DATA of ${big} bytes`,
        bytes: start(h2Frame(0, 0, 1, r.bytes(big))),
        end: false,
        answer: goaway,
      };
    case 1: {
      // a frame header that promises more than follows
      const n = 1 + r.int(16_000);
      const type = r.pick([0, 1, 4, 6, 8]);
      return {
        what: `type ${type} frame cut at ${n >> 1}/${n}`,
        bytes: start(h2Frame(type, 0, type === 4 || type === 6 ? 0 : 1, r.bytes(n >> 1), n)),
        end: true,
        answer: /^goaway [1-9]\d*$|^closed$|^reset$/,
      };
    }
    case 2: // HEADERS whose header block is random HPACK
      return {
        what: "HEADERS of random HPACK",
        bytes: start(h2Frame(1, 0x4 | (r.chance(0.5) ? 1 : 0), 1, r.bytes(1 + r.int(2000)))),
        end: false,
        answer: /^goaway [1-9]\d*$|^rst [1-9]\d*$|^response$/,
      };
    case 3:
      return {
        what: "DATA on stream 0",
        bytes: start(h2Frame(0, 0, 0, r.bytes(r.int(100)))),
        end: false,
        answer: goaway,
      };
    case 4: // SETTINGS whose length is not a multiple of 6
      return {
        what: "SETTINGS of a bad length",
        bytes: start(h2Frame(4, 0, 0, r.bytes(6 * r.int(4) + 1 + r.int(5)))),
        end: false,
        answer: goaway,
      };
    case 5: {
      // WINDOW_UPDATE by 0, or past 2^31-1
      const w = Buffer.alloc(4);
      w.writeUInt32BE(r.chance(0.5) ? 0 : 0x7fff_ffff);
      return {
        what: `WINDOW_UPDATE ${w.readUInt32BE(0)} twice`,
        bytes: start(h2Frame(8, 0, 0, w), h2Frame(8, 0, 0, w)),
        end: false,
        answer: goaway,
      };
    }
    case 6:
      return {
        what: "PING of a bad length",
        bytes: start(h2Frame(6, 0, 0, r.bytes(r.pick([0, 7, 9, 100])))),
        end: false,
        answer: goaway,
      };
    case 7: {
      // CONTINUATION without a HEADERS before it, or HEADERS followed by a run of CONTINUATIONs
      const n = 1 + r.int(300);
      const frames = [h2Frame(1, 0, 1, r.bytes(20))];
      for (let i = 0; i < n; i++) frames.push(h2Frame(9, 0, 1, r.bytes(1 + r.int(64))));
      return {
        what: `${n} CONTINUATION frames`,
        bytes: start(...(r.chance(0.5) ? frames : frames.slice(1))),
        end: true,
        answer: /^goaway [1-9]\d*$|^rst [1-9]\d*$|^closed$|^reset$/,
      };
    }
    default: {
      // random frames: random types, flags, streams and payloads (some of them valid)
      const frames = Array.from({ length: 1 + r.int(20) }, () =>
        h2Frame(r.int(12), r.int(256), r.int(8), r.bytes(r.int(200))),
      );
      return {
        what: "random frames",
        bytes: start(...frames),
        end: true,
        answer: /^goaway \d+$|^rst \d+$|^response$|^closed$|^reset$/,
      };
    }
  }
}

/** A raw WebSocket upgrade request. */
export function wsUpgrade(r: Random, path = "/ws"): Buffer {
  const key = r.bytes(16).toString("base64");
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
}

/** One masked client frame (`length` may lie about the payload). */
export function wsFrame(
  fin: boolean,
  opcode: number,
  payload: Buffer,
  o: { length?: number; rsv?: number } = {},
): Buffer {
  const n = o.length ?? payload.length;
  const mask = Buffer.from([1, 2, 3, 4]);
  const head =
    n < 126
      ? Buffer.from([0, 0x80 | n])
      : n < 65_536
        ? Buffer.from([0, 0x80 | 126, n >> 8, n & 0xff])
        : Buffer.concat([
            Buffer.from([0, 0x80 | 127]),
            Buffer.from(BigInt(n).toString(16).padStart(16, "0"), "hex"),
          ]);
  head[0] = (fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode;
  return Buffer.concat([head, mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}

/** A malformed WebSocket frame sequence: what it is, its bytes, and whether it is truncated. */
export function wsBad(r: Random): { what: string; bytes: Buffer; truncated: boolean } {
  const kind = r.int(9);
  switch (kind) {
    case 0:
      return {
        what: "unmasked frame",
        bytes: Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]),
        truncated: false,
      };
    case 1:
      return {
        what: "reserved bits",
        bytes: wsFrame(true, 1, Buffer.from("{}"), { rsv: 1 + r.int(7) }),
        truncated: false,
      };
    case 2:
      return {
        what: "reserved opcode",
        bytes: wsFrame(true, r.pick([3, 4, 5, 6, 7, 11, 12, 15]), r.bytes(4)),
        truncated: false,
      };
    case 3:
      return { what: "fragmented ping", bytes: wsFrame(false, 9, r.bytes(3)), truncated: false };
    case 4:
      return {
        what: "control frame above 125 bytes",
        bytes: wsFrame(true, 9, r.bytes(126 + r.int(500))),
        truncated: false,
      };
    case 5:
      return {
        what: "continuation with nothing to continue",
        bytes: wsFrame(true, 0, Buffer.from("x")),
        truncated: false,
      };
    case 6:
      return {
        what: "text frame of invalid UTF-8",
        bytes: wsFrame(true, 1, Buffer.from([0xc3, 0x28, 0xff])),
        truncated: false,
      };
    case 7: {
      const n = 1 + r.int(60_000);
      return {
        what: `frame cut at ${n >> 1}/${n}`,
        bytes: wsFrame(true, 1, r.bytes(n >> 1), { length: n }),
        truncated: true,
      };
    }
    default:
      return {
        what: "length 2^63 - 1",
        bytes: Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]),
        truncated: false,
      };
  }
}

/**
 * Writes a raw WebSocket upgrade and frames and reads until the server closes: resolves with the
 * upgrade's status, the close code of the server's close frame if it sent one, and how it ended.
 */
export function wsRaw(port: number, bytes: Buffer, o: { end?: boolean } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    let got = Buffer.alloc(0);
    const done = (how: string) => {
      clearTimeout(timer);
      s.destroy();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(got.toString("latin1"))?.[1] ?? "no status";
      const at = got.indexOf("\r\n\r\n");
      // The server's frames (unmasked): a close frame (opcode 8) starts with its 2-byte code.
      let code = "";
      for (let i = at < 0 ? got.length : at + 4; i + 2 <= got.length; ) {
        const len = got[i + 1]! & 0x7f;
        const head = len === 126 ? 4 : len === 127 ? 10 : 2;
        const n =
          len === 126 ? got.readUInt16BE(i + 2) : len === 127 ? Number(got.readBigUInt64BE(i + 2)) : len;
        if ((got[i]! & 0x0f) === 8 && n >= 2 && i + head + 2 <= got.length)
          code = `close ${got.readUInt16BE(i + head)}, `;
        i += head + n;
      }
      resolve(`${status}, ${code}${how}`);
    };
    const timer = setTimeout(() => done("silent"), DEADLINE_MS);
    s.on("data", (d) => {
      got = Buffer.concat([got, d]);
    });
    s.on("error", () => done("reset"));
    s.on("close", () => done("closed"));
    s.write(bytes, () => {});
    if (o.end) s.end();
  });
}

/** Opens the monitor's socket, sends `frames`, collects `expect` messages or the close, then closes. */
export function wsExchange(
  port: number,
  frames: (string | Buffer)[],
  expect: number,
): Promise<{ messages: string[]; closed: number | null }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { maxPayload: 64 * 1024 * 1024 });
    const messages: string[] = [];
    let closed: number | null = null;
    const done = () => {
      clearTimeout(timer);
      ws.terminate();
      resolve({ messages, closed });
    };
    const timer = setTimeout(done, DEADLINE_MS);
    ws.on("open", () => {
      for (const f of frames) ws.send(f, { binary: typeof f !== "string" });
    });
    ws.on("message", (d) => {
      const text = d.toString();
      if (!text.includes('"type":"state"')) messages.push(text);
      if (messages.length >= expect) done();
    });
    ws.on("close", (code) => {
      closed = code;
      done();
    });
    ws.on("error", () => done());
  });
}

export function randomPath(r: Random): string {
  return r.pick([
    "/",
    "/healthz",
    "/metrics",
    "/readyz",
    "/ws",
    "//healthz",
    "/healthz/../metrics",
    "/%2e%2e/%2e%2e/etc/passwd",
    `/app.js?x=${"%".repeat(r.int(50))}`,
    `/${r.bytes(r.int(30)).toString("hex")}`,
    `/${"a/".repeat(r.int(3000))}`,
    "*",
    "http://[::1",
    "/\u0000",
  ]);
}

export interface Queryable {
  query(sql: string, params?: unknown): Promise<[unknown, unknown]>;
}

/**
 * A table's checksum over every column: its column list, COUNT(*) and SUM(CRC32) of the row as
 * text (each column as HEX of its binary form, NULL as 'N', so NULL and '' differ).
 */
export async function tableChecksum(conn: Queryable, db: string, table: string): Promise<string> {
  const [cols] = await conn.query(
    "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    [db, table],
  );
  const names = (cols as { c: string }[]).map((x) => x.c);
  if (names.length === 0) return "<missing>";
  const row = `CONCAT_WS('|', ${names.map((c) => `COALESCE(HEX(CAST(${q(c)} AS BINARY)), 'N')`).join(", ")})`;
  const [rows] = await conn.query(
    `SELECT COUNT(*) AS n, COALESCE(SUM(CRC32(${row})), 0) AS s FROM ${q(db)}.${q(table)}`,
  );
  const x = (rows as { n: string; s: string }[])[0]!;
  return `${names.join(",")} n=${x.n} crc=${x.s}`;
}
