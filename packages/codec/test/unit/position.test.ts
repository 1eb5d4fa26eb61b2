import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError } from "@dfs/common";
import { Position, parseStartPoint, parseStreamPoint } from "../../dist/position.js";

describe("Position", () => {
  test("text form round-trips and sorts in binlog order", () => {
    const p = Position.parse("mysql-bin.000042:1234");
    assert.equal(p.file, "mysql-bin.000042");
    assert.equal(p.pos, 1234);
    assert.equal(p.toString(), "mysql-bin.000042:1234");
    assert.equal(p.sortable, "0000000042:000000001234");
    const later = [
      Position.at("mysql-bin.000042", 1235),
      Position.at("mysql-bin.000043", 4),
      Position.at("mysql-bin.000100", 4),
    ];
    for (const l of later) {
      assert.ok(p.compare(l) < 0, `${p} before ${l}`);
      assert.ok(l.compare(p) > 0);
      assert.ok(p.sortable < l.sortable, "the sortable form agrees with compare");
    }
    assert.equal(p.compare(Position.at("mysql-bin.000042", 1234)), 0);
  });

  test("file numbers past 999999 still sort (mysql-bin.1000000 after .999999)", () => {
    const a = Position.at("mysql-bin.999999", 500);
    const b = Position.at("mysql-bin.1000000", 4);
    assert.ok(a.compare(b) < 0);
    assert.ok(a.sortable < b.sortable);
  });

  test("a GTID set alone is a position without a file", () => {
    const mysql = Position.parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5");
    assert.equal(mysql.hasFile, false);
    assert.equal(mysql.gtid, "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5");
    assert.equal(mysql.toString(), mysql.gtid);
    assert.equal(mysql.sortable, "");
    const maria = Position.parse("0-1-100,1-2-7");
    assert.equal(maria.gtid, "0-1-100,1-2-7");
    assert.throws(() => mysql.compare(maria), /without a file/);
  });

  test("positions of two servers do not compare", () => {
    const a = Position.at("mysql-bin.000001", 4, "", "server-a");
    const b = Position.at("mysql-bin.000002", 4, "", "server-b");
    assert.throws(() => a.compare(b), /different servers/);
  });

  test("bad text is a ConfigError naming the input", () => {
    for (const bad of ["", "mysql-bin:12", "file.000001", "mysql-bin.000001:-4", "1-2"]) {
      assert.throws(
        () => Position.parse(bad),
        (e: unknown) => e instanceof ConfigError && e.message.includes("position"),
      );
    }
  });

  test("the envelope form carries resume point, start and the transaction's GTID", () => {
    const start = Position.at("mysql-bin.000003", 100, "0-1-5", "mariadb:1");
    const end = Position.at("mysql-bin.000003", 400, "0-1-6", "mariadb:1");
    const w = end.toWire("0-1-6", start);
    assert.deepEqual(w, {
      gtid: "0-1-6",
      file: "mysql-bin.000003",
      pos: 400n,
      startFile: "mysql-bin.000003",
      startPos: 100n,
      sortable: end.sortable,
    });
    const back = Position.fromWire(w, "mariadb:1");
    assert.equal(back.toString(), end.toString());
    assert.equal(back.server, "mariadb:1");
  });

  test("the record form round-trips through storage", () => {
    const p = Position.at("mysql-bin.000007", 99, "0-1-3", "uuid-x");
    assert.ok(Position.fromRecord(p.toJSON()).equals(p));
    assert.ok(Position.fromRecord({ file: "", pos: 0, gtid: null, server: null }).isNone);
  });

  test("start points and stream points", () => {
    assert.deepEqual(parseStartPoint("earliest"), { kind: "earliest" });
    assert.deepEqual(parseStartPoint(" latest "), { kind: "latest" });
    const at = parseStartPoint("mysql-bin.000001:4");
    assert.equal(at.kind === "at" && at.position.toString(), "mysql-bin.000001:4");
    assert.throws(() => parseStartPoint("yesterday"), /earliest/);
    assert.deepEqual(parseStreamPoint("seq:17"), { kind: "seq", seq: 17 });
    assert.deepEqual(parseStreamPoint("17"), { kind: "seq", seq: 17 });
    assert.deepEqual(parseStreamPoint("earliest"), { kind: "earliest" });
    assert.throws(() => parseStreamPoint("seq:x"), /stream sequence/);
  });
});
