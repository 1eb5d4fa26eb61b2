// One table decides the exit code of every kind of error (sysexits style); the codes are distinct.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AssertionError,
  ConfigError,
  DataError,
  DfsError,
  ErrorCode,
  RefusedError,
  TransientError,
} from "@dfs/common";
import { ExitCode, errorReport, exitCodeOf, UsageError } from "../../dist/exit.js";

test("the exit codes are the sysexits values and distinct", () => {
  assert.deepEqual(
    { ...ExitCode },
    { OK: 0, USAGE: 64, DATAERR: 65, UNAVAILABLE: 69, SOFTWARE: 70, CONFIG: 78 },
  );
  assert.equal(new Set(Object.values(ExitCode)).size, Object.values(ExitCode).length);
});

test("the project's errors map by their code", () => {
  const cases: [DfsError, number][] = [
    [new ConfigError(ErrorCode.CONFIG_INVALID, ["x: is required"]), 78],
    [new ConfigError(ErrorCode.CONFIG_UNREADABLE, ["f: no such file"]), 78],
    [new ConfigError(ErrorCode.SOURCE_SETTINGS, ["binlog_format is STATEMENT"]), 78],
    [new ConfigError(ErrorCode.SOURCE_PRIVILEGES, ["lacks REPLICATION SLAVE"]), 78],
    [new RefusedError(ErrorCode.SOURCE_ACCESS_DENIED, "access denied"), 78],
    [new RefusedError(ErrorCode.TARGET_READ_ONLY, "read only"), 78],
    [new ConfigError(ErrorCode.CHECKPOINT_PURGED, ["purged"]), 78],
    [new TransientError(ErrorCode.SOURCE_UNAVAILABLE, "ECONNREFUSED"), 69],
    [new TransientError(ErrorCode.TARGET_UNAVAILABLE, "gone"), 69],
    [new TransientError(ErrorCode.BROKER_UNAVAILABLE, "nats down"), 69],
    [new ConfigError(ErrorCode.LEASE_HELD, ["held"]), 69],
    [new DataError(ErrorCode.DATA_INVALID, "poison row"), 65],
    [new DataError(ErrorCode.OBJECT_MISSING, "no such table"), 65],
    [new AssertionError("invariant"), 70],
  ];
  for (const [err, code] of cases) assert.equal(exitCodeOf(err), code, `${err.code}`);
  // Every ErrorCode has a place (a new one without one would be 70 only by accident).
  for (const code of Object.values(ErrorCode))
    assert.equal(typeof exitCodeOf(new DfsError(code, "x")), "number");
});

test("an error that crossed a worker thread keeps its meaning by its code", () => {
  const err = Object.assign(new Error("capture: refused"), { code: ErrorCode.SOURCE_ACCESS_DENIED });
  assert.equal(exitCodeOf(err), 78);
});

test("driver, socket and control-plane errors map by their numbers and names", () => {
  const mysql = (errno: number, code: string) =>
    Object.assign(new Error(code), { errno, code, sqlState: "HY000" });
  assert.equal(exitCodeOf(mysql(1045, "ER_ACCESS_DENIED_ERROR")), 78);
  assert.equal(exitCodeOf(mysql(1142, "ER_TABLEACCESS_DENIED_ERROR")), 78);
  assert.equal(exitCodeOf(mysql(1213, "ER_LOCK_DEADLOCK")), 69);
  assert.equal(exitCodeOf(mysql(1146, "ER_NO_SUCH_TABLE")), 65);
  assert.equal(exitCodeOf(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })), 69);
  const grpc = (codeName: string) =>
    Object.assign(new Error(codeName), { name: "ControlCallError", codeName });
  assert.equal(exitCodeOf(grpc("UNAVAILABLE")), 69);
  assert.equal(exitCodeOf(grpc("UNAUTHENTICATED")), 78);
  assert.equal(exitCodeOf(grpc("INVALID_ARGUMENT")), 64);
  assert.equal(exitCodeOf(grpc("INTERNAL")), 70);
  assert.equal(exitCodeOf(new UsageError("bad")), 64);
  assert.equal(exitCodeOf(new TypeError("x is undefined")), 70);
  assert.equal(exitCodeOf("a string"), 70);
});

test("the report names the project's code; only a bug shows its stack", () => {
  assert.equal(
    errorReport(new TransientError(ErrorCode.BROKER_UNAVAILABLE, "NATS at nats://h:4222 is not reachable")),
    "DFS_BROKER_UNAVAILABLE: NATS at nats://h:4222 is not reachable",
  );
  assert.equal(errorReport(new UsageError("takes one position")), "takes one position");
  const bug = errorReport(new TypeError("boom"));
  assert.match(bug, /^internal error \(please report it with this output\): TypeError: boom\n\s+at /);
});
