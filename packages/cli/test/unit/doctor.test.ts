// dfs doctor without servers: the verdict and table of given results, and the checks' logic on
// given server variables and SHOW GRANTS lines.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "@dfs/config";
import { hasGlobal, hasOnDatabase, likePattern, parseGrants } from "../../dist/commands/doctor-grants.js";
import {
  type CheckResult,
  fail,
  ok,
  renderTable,
  summary,
  verdict,
  warn,
  wrap,
} from "../../dist/commands/doctor-report.js";
import { privilegeChecks, settingsChecks } from "../../dist/commands/doctor-source.js";
import { targetPrivilegeChecks } from "../../dist/commands/doctor-target.js";

const byCheck = (results: CheckResult[], check: string) => {
  const r = results.find((x) => x.check === check);
  assert.ok(r, `a row for ${check}`);
  return r;
};

test("verdict: 0 with warnings only, 78 for a wrong setting, 69 when a server is away", () => {
  const good = [ok("a", "fine"), warn("b", "short retention", "raise it")];
  assert.equal(verdict([]), 0);
  assert.equal(verdict(good), 0);
  assert.equal(verdict([...good, fail("c", "binlog_format STATEMENT", "SET GLOBAL ...")]), 78);
  assert.equal(verdict([...good, fail("nats", "refused", "start it", "unavailable")]), 69);
  // Unreachable comes first: what lies behind it was not checked.
  assert.equal(verdict([fail("c", "x", "y"), fail("nats", "refused", "start it", "unavailable")]), 69);
});

test("summary counts failures, unreachable servers and warnings", () => {
  assert.equal(summary([ok("a", "x"), ok("b", "y")]), "2 checks: all ok");
  assert.equal(summary([ok("a", "x"), warn("b", "y", "z")]), "2 checks: all ok (1 warning)");
  assert.equal(
    summary([fail("a", "x", "y"), fail("n", "x", "y", "unavailable"), warn("b", "y", "z")]),
    "3 checks: 2 failed (1 unreachable), 1 warning; exit code 69 (unavailable)",
  );
  assert.equal(summary([fail("a", "x", "y")]), "1 checks: 1 failed; exit code 78 (config)");
});

test("the table: a header and one aligned line per check when not wrapped", () => {
  const results = [
    ok("source: log_bin", "ON"),
    fail("source: REPLICATION SLAVE", "lacks it", "GRANT REPLICATION SLAVE ON *.* TO 'u'@'%'"),
    warn("source: binlog retention", "kept 1 day(s)", "SET GLOBAL binlog_expire_logs_seconds = 604800"),
  ];
  const lines = renderTable(results).split("\n");
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^CHECK +STATUS +DETAIL +HOW TO FIX$/);
  assert.match(lines[1]!, /^source: log_bin +ok +ON +-$/);
  assert.match(
    lines[2]!,
    /^source: REPLICATION SLAVE +FAIL +lacks it +GRANT REPLICATION SLAVE ON \*\.\* TO 'u'@'%'$/,
  );
  // Columns line up: STATUS and DETAIL start at the same place on every line.
  const at = (s: string, word: string) => s.indexOf(word);
  assert.equal(at(lines[1]!, "ok"), at(lines[0]!, "STATUS"));
  assert.equal(at(lines[2]!, "lacks"), at(lines[0]!, "DETAIL"));
  assert.equal(at(lines[3]!, "kept"), at(lines[0]!, "DETAIL"));
});

test("the table wraps detail and fix to a terminal's width", () => {
  const long = "word ".repeat(60).trim();
  const table = renderTable([fail("target: privileges", long, long)], 100);
  const lines = table.split("\n");
  assert.ok(lines.length > 3, table);
  for (const l of lines) assert.ok(l.length <= 100, `${l.length}: ${l}`);
  assert.match(lines[1]!, /^target: privileges +FAIL +word/);
  assert.match(lines[2]!, /^ {20,}word/, "continuation lines leave the first columns empty");
  assert.equal(lines.join(" ").match(/word/g)!.length, 120, "no word lost");
});

test("wrap keeps words whole and cuts only a word longer than the width", () => {
  assert.deepEqual(wrap("aa bb cc", 5), ["aa bb", "cc"]);
  assert.deepEqual(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
  assert.deepEqual(wrap("short", 10), ["short"]);
});

test("SHOW GRANTS lines: global, database patterns, tables, columns, routines, roles", () => {
  const g = parseGrants([
    "GRANT SELECT, REPLICATION CLIENT ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*ABC'",
    "GRANT INSERT, UPDATE ON `shop\\_1`.* TO `u`@`%`",
    "GRANT DELETE ON `app%`.* TO `u`@`%`",
    "GRANT SELECT (`a`, `b`), INSERT ON `crm`.`clients` TO `u`@`%`",
    "GRANT EXECUTE ON PROCEDURE `crm`.`p` TO `u`@`%`",
    "GRANT ALL PRIVILEGES ON `my db`.* TO `u`@`%`",
    "GRANT `reader`,`writer` TO `u`@`%`",
    "GRANT PROXY ON ''@'%' TO 'u'@'%' WITH GRANT OPTION",
  ]);
  assert.deepEqual(g.roles, ["`reader`", "`writer`"]);
  assert.ok(hasGlobal(g, "SELECT"));
  assert.ok(hasGlobal(g, "REPLICATION CLIENT"));
  assert.ok(hasGlobal(g, "BINLOG MONITOR"), "REPLICATION CLIENT is MariaDB's BINLOG MONITOR");
  assert.ok(!hasGlobal(g, "REPLICATION SLAVE"));
  assert.ok(hasOnDatabase(g, "INSERT", "shop_1"));
  assert.ok(!hasOnDatabase(g, "INSERT", "shopx1"), "an escaped _ is literal");
  assert.ok(hasOnDatabase(g, "DELETE", "app_prod"), "% matches any run");
  assert.ok(!hasOnDatabase(g, "DELETE", "shop_1"));
  assert.ok(hasOnDatabase(g, "DROP", "my db"), "ALL PRIVILEGES on a quoted name with a space");
  assert.ok(!hasOnDatabase(g, "INSERT", "crm"), "a table grant is not the database");
  assert.ok(likePattern("a_b").test("axb"));
  assert.ok(!likePattern("a\\_b").test("axb"));
});

test("settings: every wrong setting is a FAIL naming the fix; old servers and short retention warn", () => {
  const cfg = { source: parseConfig({ source: { id: "s", url: "mysql://u@h:3306" } }).source };
  const good = settingsChecks(
    {
      version: "10.11.6-MariaDB",
      log_bin: "ON",
      binlog_format: "ROW",
      binlog_row_image: "FULL",
      binlog_row_metadata: "FULL",
      server_id: "1",
      gtid_binlog_pos: "0-1-5",
      expire_logs_days: "0",
    },
    cfg,
  );
  assert.deepEqual(
    good.filter((r) => r.status !== "ok"),
    [],
  );
  const bad = settingsChecks(
    {
      version: "8.0.36",
      log_bin: "OFF",
      binlog_format: "STATEMENT",
      binlog_row_image: "MINIMAL",
      binlog_row_metadata: "MINIMAL",
      server_id: String(cfg.source.serverId),
      gtid_mode: "OFF",
      binlog_expire_logs_seconds: "3600",
    },
    cfg,
  );
  assert.equal(verdict(bad), 78);
  assert.equal(byCheck(bad, "source: log_bin").status, "FAIL");
  assert.match(byCheck(bad, "source: binlog_format").fix, /SET GLOBAL binlog_format = 'ROW'/);
  assert.match(byCheck(bad, "source: binlog_row_image").fix, /binlog_row_image = 'FULL'/);
  assert.match(byCheck(bad, "source: binlog_row_metadata").fix, /binlog_row_metadata = 'FULL'/);
  assert.match(byCheck(bad, "source: server_id").detail, /equals source\.serverId/);
  assert.equal(byCheck(bad, "source: GTID").status, "warn");
  const retention = byCheck(bad, "source: binlog retention");
  assert.equal(retention.status, "warn");
  assert.match(retention.detail, /1\.0 hour/);
  const old = settingsChecks(
    { version: "5.7.44-log", log_bin: "ON", binlog_format: "ROW", server_id: "3" },
    cfg,
  );
  assert.equal(byCheck(old, "source: binlog_row_metadata").status, "warn");
  assert.equal(verdict(old), 0);
});

test("source privileges: each missing one is a FAIL with the GRANT that adds it", () => {
  const account = "'doc'@'%'";
  const only = parseGrants(["GRANT SELECT ON *.* TO `doc`@`%`"]);
  const r = privilegeChecks(only, { account, mariadb: true, databases: ["shop"], everything: true });
  assert.equal(byCheck(r, "source: REPLICATION SLAVE").status, "FAIL");
  assert.equal(byCheck(r, "source: REPLICATION SLAVE").fix, "GRANT REPLICATION SLAVE ON *.* TO 'doc'@'%'");
  assert.equal(byCheck(r, "source: BINLOG MONITOR").fix, "GRANT BINLOG MONITOR ON *.* TO 'doc'@'%'");
  assert.equal(byCheck(r, "source: SELECT").status, "ok");
  const mysql = privilegeChecks(
    parseGrants(["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `doc`@`%`"]),
    {
      account,
      mariadb: false,
      databases: ["shop", "crm"],
      everything: false,
    },
  );
  const select = byCheck(mysql, "source: SELECT");
  assert.equal(select.status, "FAIL");
  assert.equal(select.fix, "GRANT SELECT ON `shop`.* TO 'doc'@'%'; GRANT SELECT ON `crm`.* TO 'doc'@'%'");
  assert.equal(byCheck(mysql, "source: REPLICATION CLIENT").status, "ok");
});

test("target privileges: DML (and CREATE for sync) on every database written, and the meta database", () => {
  const g = parseGrants(["GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON `shop`.* TO `w`@`%`"]);
  const r = targetPrivilegeChecks(g, {
    account: "'w'@'%'",
    databases: ["shop", "crm"],
    anyDatabase: false,
    metaDatabase: "_dfs",
    pipeline: false,
  });
  const privs = byCheck(r, "target: privileges");
  assert.equal(privs.status, "FAIL");
  assert.match(privs.detail, /lacks SELECT, INSERT, UPDATE, DELETE, CREATE on `crm`/);
  assert.equal(privs.fix, "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON `crm`.* TO 'w'@'%'");
  assert.equal(byCheck(r, "target: meta database").status, "FAIL");
  assert.equal(byCheck(r, "target: DDL privileges").status, "warn");
  const all = targetPrivilegeChecks(parseGrants(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`"]), {
    account: "'root'@'localhost'",
    databases: [],
    anyDatabase: true,
    metaDatabase: "_dfs",
    pipeline: false,
  });
  assert.equal(verdict(all), 0);
  assert.deepEqual(
    all.map((x) => x.status),
    ["ok", "ok"],
  );
});
