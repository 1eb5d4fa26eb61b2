import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, DataError, ErrorCode, RefusedError, TransientError } from "@dfs/common";
import { classifyMysqlError, mysqlErrorKind } from "../../dist/errors.js";

/** A driver error as mysql2 and zongji raise them. */
function driver(errno: number | undefined, code: string, fatal = false, message = "boom"): Error {
  return Object.assign(new Error(message), { errno, code, fatal, sqlState: "HY000" });
}

test("every error number with a meaning maps to its kind", () => {
  const cases: [number | undefined, string, boolean, string][] = [
    [1213, "ER_LOCK_DEADLOCK", false, "transient"],
    [1205, "ER_LOCK_WAIT_TIMEOUT", false, "transient"],
    [2013, "PROTOCOL_CONNECTION_LOST", true, "transient"],
    [undefined, "ECONNREFUSED", true, "transient"],
    [undefined, "PROTOCOL_CONNECTION_LOST", true, "transient"],
    [1927, "ER_CONNECTION_KILLED", true, "transient"],
    [1045, "ER_ACCESS_DENIED_ERROR", true, "auth"],
    [1142, "ER_TABLEACCESS_DENIED_ERROR", false, "permission"],
    [1227, "ER_SPECIFIC_ACCESS_DENIED_ERROR", false, "permission"],
    [1290, "ER_OPTION_PREVENTS_STATEMENT", false, "read-only"],
    [1836, "ER_READ_ONLY_MODE", false, "read-only"],
    [1146, "ER_NO_SUCH_TABLE", false, "missing"],
    [1049, "ER_BAD_DB_ERROR", true, "missing"],
    [1062, "ER_DUP_ENTRY", false, "data"],
    [1406, "ER_DATA_TOO_LONG", false, "data"],
    [3819, "ER_CHECK_CONSTRAINT_VIOLATED", false, "data"],
    [4025, "ER_CONSTRAINT_FAILED", false, "data"],
    [1236, "ER_MASTER_FATAL_ERROR_READING_BINLOG", false, "fatal"],
    [undefined, "", false, "fatal"],
  ];
  for (const [errno, code, fatal, kind] of cases)
    assert.equal(mysqlErrorKind(driver(errno, code, fatal)), kind, `${errno} ${code}`);
  assert.equal(mysqlErrorKind(new TypeError("decode failed")), "fatal", "a bug in decoding is not retried");
  assert.equal(mysqlErrorKind(null), "fatal");
});

test("classified errors are the project's classes with codes by role", () => {
  const lost = classifyMysqlError(driver(undefined, "ECONNREFUSED", true), "target", "target 127.0.0.1:3306");
  assert.ok(lost instanceof TransientError);
  assert.equal(lost.code, ErrorCode.TARGET_UNAVAILABLE);
  const ro = classifyMysqlError(driver(1290, "ER_OPTION_PREVENTS_STATEMENT"), "target", "target h:1");
  assert.ok(ro instanceof RefusedError);
  assert.equal(ro.code, ErrorCode.TARGET_READ_ONLY);
  assert.equal(ro.errno, 1290);
  const denied = classifyMysqlError(driver(1045, "ER_ACCESS_DENIED_ERROR", true), "source", "source h:1");
  assert.ok(denied instanceof RefusedError);
  assert.equal(denied.code, ErrorCode.SOURCE_ACCESS_DENIED);
  assert.match(denied.message, /^source h:1: boom \(errno 1045\); check the user and password/);
  const missing = classifyMysqlError(driver(1146, "ER_NO_SUCH_TABLE"), "source", "s");
  assert.ok(missing instanceof DataError);
  assert.equal(missing.code, ErrorCode.OBJECT_MISSING);
  const dup = classifyMysqlError(driver(1062, "ER_DUP_ENTRY"), "target", "t");
  assert.ok(dup instanceof DataError);
  assert.equal(dup.code, ErrorCode.DATA_INVALID);
  const purged = classifyMysqlError(driver(1236, "X"), "source", "s");
  assert.ok(purged instanceof ConfigError);
  assert.equal(purged.code, ErrorCode.CHECKPOINT_PURGED);
  assert.equal(classifyMysqlError(lost, "source", "x"), lost, "an error already classified passes through");
});
