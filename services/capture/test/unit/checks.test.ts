// The source check alone, on a stand-in session (no server): settings that would make rows
// undecodable (compressed binlog events) are refused with the fix, beside the usual ones.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorCode } from "@dfs/common";
import { checkSource } from "../../dist/checks.js";

function session(vars: Record<string, string | null>) {
  return {
    async query(sql: string) {
      const m = /^SELECT @@GLOBAL\.(\w+) AS v$/.exec(sql);
      if (m) {
        if (!(m[1]! in vars)) throw Object.assign(new Error("unknown variable"), { errno: 1193 });
        return [{ v: vars[m[1]!] }];
      }
      if (sql.startsWith("SHOW GRANTS")) return [{ g: "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`" }];
      if (sql === "SHOW BINARY LOGS") return [{ Log_name: "mysql-bin.000001", File_size: 1000 }];
      throw new Error(`unexpected query ${sql}`);
    },
  } as never;
}

const GOOD = {
  version: "10.11.19-MariaDB",
  log_bin: "1",
  binlog_format: "ROW",
  binlog_row_image: "FULL",
  binlog_row_metadata: "FULL",
  server_id: "1",
};

test("a source with compressed binlog events is refused, naming the setting and the fix", async () => {
  const facts = await checkSource(session({ ...GOOD, log_bin_compress: "0" }), null);
  assert.equal(facts.isMariaDb, true);
  for (const [name, value, re] of [
    ["log_bin_compress", "1", /log_bin_compress is ON: .*SET GLOBAL log_bin_compress = OFF/],
    [
      "binlog_transaction_compression",
      "1",
      /binlog_transaction_compression is ON: .*SET GLOBAL binlog_transaction_compression = OFF/,
    ],
  ] as const) {
    await assert.rejects(
      checkSource(session({ ...GOOD, [name]: value }), null),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, ErrorCode.SOURCE_SETTINGS);
        assert.match(err.message, re);
        return true;
      },
    );
  }
});
