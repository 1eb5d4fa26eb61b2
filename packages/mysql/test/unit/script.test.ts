// runScript with a recording session (no server): statements with large values go alone through
// the binary protocol, and a statement past max_allowed_packet is an error naming the setting,
// raised before anything is sent (the server would drop the connection and a retry never end).
import assert from "node:assert/strict";
import { test } from "node:test";
import { runScript } from "../../dist/script.js";
import type { MysqlSession } from "../../dist/session.js";

function recorder() {
  const sent: string[] = [];
  const session = {
    query: async (sql: string) => {
      sent.push(`query ${sql}`);
      return [];
    },
    execute: async (sql: string, params: unknown[]) => {
      sent.push(`execute ${sql} [${params.map((p) => (p as Uint8Array).byteLength).join(",")}]`);
      return {};
    },
    format: (sql: string) => sql,
  } as unknown as MysqlSession;
  return { session, sent };
}

test("a statement with large values is executed alone, the text around it batched", async () => {
  const { session, sent } = recorder();
  const blob = Buffer.alloc(1000);
  await runScript(
    session,
    [
      { sql: "BEGIN" },
      { sql: "INSERT 1" },
      { sql: "INSERT ?", params: [blob], execute: true },
      { sql: "INSERT 3" },
      { sql: "COMMIT" },
    ],
    1 << 20,
  );
  assert.deepEqual(sent, ["query BEGIN;\nINSERT 1", "execute INSERT ? [1000]", "query INSERT 3;\nCOMMIT"]);
});

test("a statement larger than max_allowed_packet is a ConfigError naming it, before anything is sent", async () => {
  const { session, sent } = recorder();
  await assert.rejects(
    runScript(
      session,
      [{ sql: "INSERT ?", params: [Buffer.alloc(5000)], execute: true }],
      1 << 20,
      undefined,
      4096,
    ),
    {
      code: "DFS_PACKET_TOO_LARGE",
      message: /max_allowed_packet \(4096 bytes\).*raise max_allowed_packet on the target/,
    },
  );
  await assert.rejects(
    runScript(session, [{ sql: `SELECT '${"x".repeat(5000)}'` }], 1 << 20, undefined, 4096),
    {
      code: "DFS_PACKET_TOO_LARGE",
    },
  );
  assert.deepEqual(sent, []);
});
