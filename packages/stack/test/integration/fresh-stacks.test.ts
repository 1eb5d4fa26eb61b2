// Stacks initialised side by side from nothing: every MariaDB bootstrap (mariadb-install-db) and
// server has a temporary-file directory of its own. With the shared /tmp, two bootstraps at once
// (a stack's source and target always are) sometimes removed each other's temporary tables and
// one failed ("Unknown table 'mysql.tmp_user_sys'"); three stacks at once make six.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { stackDown, stackUp, stackUrls } from "../../dist/index.js";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      server.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

test("three fresh stacks initialised at once all start; each server keeps its temporary files apart", {
  timeout: 300_000,
}, async () => {
  const stacks: { dir: string; ports: { source: number; target: number; nats: number } }[] = [];
  const used = new Set<number>();
  const port = async () => {
    for (;;) {
      const p = await freePort();
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
  };
  for (let i = 0; i < 3; i++)
    stacks.push({
      dir: mkdtempSync(join(tmpdir(), "dfs-fresh-stack-")),
      ports: { source: await port(), target: await port(), nats: await port() },
    });
  try {
    const results = await Promise.allSettled(stacks.map((s) => stackUp(s)));
    const failed = results.flatMap((r, i) =>
      r.status === "rejected" ? [`stack ${i}: ${String(r.reason)}`] : [],
    );
    assert.deepEqual(failed, [], "every stack started");
    const tmpdirs = new Set<string>();
    for (const s of stacks) {
      const urls = stackUrls(s);
      for (const url of [urls.sourceUrl, urls.targetUrl]) {
        const c = await createConnection(url);
        try {
          const [rows] = await c.query<RowDataPacket[]>("SELECT @@tmpdir AS d");
          const d = String(rows[0]!.d);
          assert.ok(d.startsWith(s.dir), `${url}: tmpdir ${d} is in its stack's own directory`);
          tmpdirs.add(d);
        } finally {
          await c.end();
        }
      }
    }
    assert.equal(tmpdirs.size, 6, "six servers, six temporary-file directories");
  } finally {
    for (const s of stacks) {
      await stackDown(s).catch(() => {});
      rmSync(s.dir, { recursive: true, force: true });
    }
  }
});
