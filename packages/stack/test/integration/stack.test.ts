import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import {
  type ComponentStatus,
  STACK_DEFAULTS,
  stackStatus,
  stackUp,
  stackUrls,
  startComponent,
  stopComponent,
} from "../../dist/index.js";

// The stack is shared with other test files, so this file never calls stackDown().

const STREAM = "DFS_STACK_TEST";

async function queryOne(url: string, sql: string): Promise<RowDataPacket> {
  const connection = await createConnection(url);
  try {
    const [rows] = await connection.query<RowDataPacket[]>(sql);
    assert.ok(rows[0], `no row from ${sql}`);
    return rows[0];
  } finally {
    await connection.end();
  }
}

/** Minimal NATS request/reply over raw protocol, enough to drive the JetStream API without a client lib. */
function natsRequest(port: number, subject: string, payload: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: STACK_DEFAULTS.host, port });
    let buffer = Buffer.alloc(0);
    let sent = false;
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(10_000, () => fail(new Error(`no reply to ${subject}`)));
    socket.once("error", fail);
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf("\r\n");
        if (end < 0) return;
        const line = buffer.subarray(0, end).toString("utf8");
        if (line.startsWith("MSG ")) {
          const size = Number(line.split(" ").at(-1));
          if (buffer.length < end + 2 + size + 2) return;
          const body = buffer.subarray(end + 2, end + 2 + size).toString("utf8");
          socket.destroy();
          resolve(JSON.parse(body) as Record<string, unknown>);
          return;
        }
        buffer = buffer.subarray(end + 2);
        if (line.startsWith("-ERR")) return fail(new Error(line));
        if (line === "PING") socket.write("PONG\r\n");
        if (line.startsWith("INFO ") && !sent) {
          sent = true;
          const body = JSON.stringify(payload);
          socket.write(
            `CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.stacktest 1\r\n` +
              `PUB ${subject} _INBOX.stacktest ${Buffer.byteLength(body)}\r\n${body}\r\n`,
          );
        }
      }
    });
  });
}

async function streamMessages(port: number): Promise<number> {
  const info = await natsRequest(port, `$JS.API.STREAM.INFO.${STREAM}`, {});
  assert.equal(info.error, undefined, JSON.stringify(info.error));
  return (info.state as { messages: number }).messages;
}

function byName(statuses: ComponentStatus[]): Record<string, ComponentStatus> {
  return Object.fromEntries(statuses.map((s) => [s.name, s]));
}

test("stack: up, binlog settings, idempotent up, NATS restart keeps JetStream data", async (t) => {
  const first = await stackUp();
  assert.deepEqual(first.map((s) => s.name).sort(), ["nats", "source", "target"]);
  for (const status of first) {
    assert.equal(status.up, true, `${status.name} should be up`);
    assert.equal(status.startedByStack, true, `${status.name} should be started by the stack`);
    assert.ok(status.pid, `${status.name} should have a pid`);
  }
  const urls = stackUrls();

  await t.test("source has full row-based binlog", async () => {
    const row = await queryOne(
      urls.sourceUrl,
      "SELECT @@binlog_format AS f, @@binlog_row_image AS i, @@binlog_row_metadata AS m, @@log_bin AS b, @@server_id AS s",
    );
    assert.deepEqual({ ...row }, { f: "ROW", i: "FULL", m: "FULL", b: 1, s: 1 });
  });

  await t.test("target is reachable with server_id 2", async () => {
    const row = await queryOne(urls.targetUrl, "SELECT @@server_id AS s");
    assert.equal(row.s, 2);
  });

  await t.test("second up leaves running components alone", async () => {
    const again = await stackUp();
    assert.deepEqual(
      again.map((s) => [s.name, s.pid]),
      first.map((s) => [s.name, s.pid]),
    );
  });

  await t.test("NATS stop/start keeps JetStream data", async () => {
    const natsPort = Number(new URL(urls.natsUrl).port);
    const created = await natsRequest(natsPort, `$JS.API.STREAM.CREATE.${STREAM}`, {
      name: STREAM,
      subjects: ["dfs.stack.test"],
      storage: "file",
    });
    assert.equal(created.error, undefined, JSON.stringify(created.error));
    const ack = await natsRequest(natsPort, "dfs.stack.test", { at: Date.now() });
    assert.equal(ack.stream, STREAM);
    const before = await streamMessages(natsPort);
    assert.ok(before >= 1);

    await stopComponent("nats");
    const down = byName(await stackStatus());
    assert.equal(down.nats?.up, false);
    assert.equal(down.source?.up, true, "stopping NATS must not touch MariaDB");

    const restarted = await startComponent("nats");
    assert.equal(restarted.up, true);
    assert.notEqual(restarted.pid, byName(first).nats?.pid);
    assert.equal(byName(await stackStatus()).nats?.up, true);
    assert.equal(await streamMessages(natsPort), before);
  });
});
