// The source's binlog retention behind dfs_capture_source_binlog_*: read from SHOW BINARY LOGS and
// the expiry variables of each server kind, on a stand-in session; and the watch that refreshes it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger, waitFor } from "@dfs/common";
import { RetentionWatch, readRetention, retentionOf } from "../../dist/retention.js";
import { CaptureTelemetry } from "../../dist/telemetry.js";

function session(vars: Record<string, string | null>, files: string[]) {
  return {
    async query(sql: string) {
      const m = /^SELECT @@GLOBAL\.(\w+) AS v$/.exec(sql);
      if (m) {
        if (!(m[1]! in vars)) throw Object.assign(new Error("unknown variable"), { errno: 1193 });
        return [{ v: vars[m[1]!] }];
      }
      if (sql === "SHOW BINARY LOGS") return files.map((f) => ({ Log_name: f, File_size: 100 }));
      throw new Error(`unexpected query ${sql}`);
    },
  } as never;
}

test("MySQL 8 / MariaDB 10.6+: binlog_expire_logs_seconds, oldest and newest file", async () => {
  const r = await readRetention(
    session({ binlog_expire_logs_seconds: "2592000", expire_logs_days: "0" }, [
      "mysql-bin.000041",
      "mysql-bin.000042",
      "mysql-bin.000043",
    ]),
  );
  assert.deepEqual(r, { oldestFile: 41, newestFile: 43, expireSeconds: 2592000 });
});

test("MySQL 8.4 has no expire_logs_days; MySQL 5.7 and old MariaDB only expire_logs_days", async () => {
  const mysql84 = await readRetention(session({ binlog_expire_logs_seconds: "3600" }, ["b.000007"]));
  assert.deepEqual(mysql84, { oldestFile: 7, newestFile: 7, expireSeconds: 3600 });
  const old = await readRetention(session({ expire_logs_days: "1.5" }, ["b.000002", "b.000003"]));
  assert.deepEqual(old, { oldestFile: 2, newestFile: 3, expireSeconds: 129600 });
});

test("no expiry configured is 0 (never), no binlogs listed is 0", () => {
  assert.deepEqual(retentionOf([], "0", "0"), { oldestFile: 0, newestFile: 0, expireSeconds: 0 });
  assert.deepEqual(retentionOf([{ name: "m.000001" }], null, null).expireSeconds, 0);
});

test("the watch sets the gauges, keeps the last values when a reading fails, and stops", async () => {
  const telemetry = new CaptureTelemetry("s", 4096);
  const readings: (() => Promise<{ oldestFile: number; newestFile: number; expireSeconds: number }>)[] = [
    async () => ({ oldestFile: 3, newestFile: 5, expireSeconds: 60 }),
    async () => {
      throw new Error("source away");
    },
    async () => ({ oldestFile: 4, newestFile: 6, expireSeconds: 60 }),
  ];
  let n = 0;
  const gauges = async () => {
    const out: Record<string, number> = {};
    for (const m of await telemetry.registry.getMetricsAsJSON())
      if (m.name.startsWith("dfs_capture_source_binlog_") || m.name === "dfs_capture_journal_limit_bytes")
        out[m.name] = Number(m.values[0]?.value);
    return out;
  };
  // Readings after the first wait until the test has seen the first one.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const watch = new RetentionWatch({
    read: async () => {
      const i = n++;
      if (i > 0) await released;
      return readings[Math.min(i, readings.length - 1)]!();
    },
    intervalMs: 20,
    onUpdate: (r) => telemetry.retention(r),
    log: createLogger({ level: "fatal" }),
  });
  watch.start();
  try {
    await waitFor(async () => (await gauges()).dfs_capture_source_binlog_oldest_file_number === 3, {
      timeoutMs: 5000,
      what: "the first reading",
    });
    assert.equal((await gauges()).dfs_capture_journal_limit_bytes, 4096);
    assert.equal((await gauges()).dfs_capture_source_binlog_expire_seconds, 60);
    release();
    await waitFor(async () => (await gauges()).dfs_capture_source_binlog_newest_file_number === 6, {
      timeoutMs: 5000,
      what: "the reading after the failed one",
    });
    assert.ok(n >= 3, "the failed reading did not stop the watch");
  } finally {
    await watch.stop();
  }
  const after = n;
  await new Promise((r) => setTimeout(r, 100)); // a stopped watch reads no more
  assert.equal(n, after);
});
