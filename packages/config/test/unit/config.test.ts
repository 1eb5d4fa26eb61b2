import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, ErrorCode } from "@dfs/common";
import { parseMysqlUrl } from "@dfs/mysql";
import { describeConfig, ENV_OVERRIDES, loadConfig, parseConfig } from "../../dist/index.js";
import { listConfigKeys } from "../../dist/schema.js";

const PASSWORD = "Hunter2-s3cr3t";
const TOKEN = "tok-9f8e7d6c";
const minimal = () => ({ source: { id: "shop", url: `mysql://repl:${PASSWORD}@db.local:3307/shop` } });

/** The ConfigError thrown by `fn`, checked for its code. */
function configError(fn: () => unknown, code = ErrorCode.CONFIG_INVALID): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail("expected a ConfigError");
}

/** Asserts that exactly one problem mentions `where`, and that it matches `pattern`. */
function hasProblem(err: ConfigError, where: string, pattern?: RegExp): string {
  const hits = err.problems.filter((p) => p.includes(where));
  assert.equal(hits.length, 1, `expected one problem naming ${where} in:\n${err.problems.join("\n")}`);
  if (pattern) assert.match(hits[0]!, pattern);
  return hits[0]!;
}

const tmp = mkdtempSync(join(tmpdir(), "dfs-config-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
function writeYaml(name: string, text: string): string {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
}

describe("defaults", () => {
  test("a minimal config gets every default", () => {
    const cfg = parseConfig(minimal(), {});
    assert.equal(cfg.source.serverId, 4201);
    assert.deepEqual(cfg.source.include, { databases: [], tables: [] });
    assert.deepEqual(cfg.source.exclude, { databases: [], tables: [], columns: [] });
    assert.equal(cfg.source.start.from, "latest");
    assert.equal(cfg.target, undefined);
    assert.equal(cfg.nats.url, "nats://127.0.0.1:4222");
    assert.equal(cfg.nats.token, undefined);
    assert.deepEqual(cfg.nats.stream, {
      replicas: 1,
      maxAge: 7 * 86_400_000,
      maxBytes: -1,
      duplicateWindow: 120_000,
    });
    assert.equal(cfg.capture.journal.path, "./data/shop/journal.db");
    assert.ok(cfg.capture.journal.path.includes(cfg.source.id));
    assert.equal(cfg.capture.journal.maxBytes, 2 * 1024 ** 3);
    assert.equal(cfg.capture.journal.trimIntervalMs, 1000);
    assert.equal(cfg.capture.maxBufferBytes, 8 * 1024 ** 2);
    assert.deepEqual(cfg.capture.batch, { maxRows: 1000, maxBytes: 512 * 1024 });
    assert.deepEqual(cfg.capture.publish, {
      maxInFlight: 256,
      maxInFlightBytes: 8 * 1024 ** 2,
      ackTimeoutMs: 10_000,
    });
    assert.equal(cfg.capture.journal.groupCommitMs, 5);
    assert.equal(cfg.capture.journal.groupCommitBytes, 4 * 1024 ** 2);
    assert.equal(cfg.capture.heartbeatIntervalMs, 1000);
    assert.deepEqual(cfg.capture.lease, { enabled: true, ttlMs: 15_000, waitMs: "expiry" });
    assert.deepEqual(cfg.capture.reconnect, { initialMs: 500, maxMs: 30_000 });
    assert.equal(cfg.capture.http.port, 9101);
    assert.equal(cfg.capture.grpc.port, 50101);
    assert.equal(cfg.log.level, "info");
    assert.equal(cfg.control.token, undefined);
  });

  test("empty sections (YAML null) count as absent", () => {
    const file = writeYaml(
      "empty-sections.yaml",
      "source:\n  id: shop\n  url: mysql://u:p@h\ncapture:\n  # journal:\ntarget:\n",
    );
    const cfg = loadConfig(file, {});
    assert.equal(cfg.capture.batch.maxRows, 1000);
    assert.equal(cfg.target, undefined);
  });
});

describe("sizes and durations", () => {
  test("strings with units and plain numbers become bytes and milliseconds", () => {
    const cfg = parseConfig(
      {
        ...minimal(),
        nats: { stream: { maxAge: "1d", maxBytes: "1GiB", duplicateWindow: "30s" } },
        capture: {
          journal: { maxBytes: "64MiB", trimIntervalMs: 250 },
          maxBufferBytes: 4096,
          batch: { maxRows: "500", maxBytes: "1.5KiB" },
          publish: { ackTimeoutMs: "2m" },
          reconnect: { initialMs: "100ms", maxMs: "1h" },
        },
      },
      {},
    );
    assert.equal(cfg.nats.stream.maxAge, 86_400_000);
    assert.equal(cfg.nats.stream.maxBytes, 1024 ** 3);
    assert.equal(cfg.nats.stream.duplicateWindow, 30_000);
    assert.equal(cfg.capture.journal.maxBytes, 64 * 1024 ** 2);
    assert.equal(cfg.capture.journal.trimIntervalMs, 250);
    assert.equal(cfg.capture.maxBufferBytes, 4096);
    assert.equal(cfg.capture.batch.maxRows, 500);
    assert.equal(cfg.capture.batch.maxBytes, 1536);
    assert.equal(cfg.capture.publish.ackTimeoutMs, 120_000);
    assert.deepEqual(cfg.capture.reconnect, { initialMs: 100, maxMs: 3_600_000 });
  });

  test("a bad size or duration names the path and the accepted forms", () => {
    const err = configError(() =>
      parseConfig({ ...minimal(), capture: { maxBufferBytes: "lots", heartbeatIntervalMs: "1 year" } }, {}),
    );
    hasProblem(err, "capture.maxBufferBytes", /512KiB, 64MiB, 2GiB \(got "lots"\)/);
    hasProblem(err, "capture.heartbeatIntervalMs", /500ms, 30s, 5m, 2h, 7d \(got "1 year"\)/);
  });

  test("-1 means unlimited only where allowed", () => {
    assert.equal(
      parseConfig({ ...minimal(), nats: { stream: { maxBytes: -1 } } }, {}).nats.stream.maxBytes,
      -1,
    );
    const err = configError(() => parseConfig({ ...minimal(), capture: { journal: { maxBytes: -1 } } }, {}));
    hasProblem(err, "capture.journal.maxBytes");
  });
});

describe("validation errors", () => {
  test("an unknown key is named, with a suggestion", () => {
    const err = configError(() =>
      parseConfig({ ...minimal(), capture: { jornal: { path: "/x" } } }, {}, "sync.yaml"),
    );
    hasProblem(err, "sync.yaml: capture.jornal: unknown key", /did you mean "journal"/);
  });

  test("a wrong type names the path and the value", () => {
    const raw = { ...minimal(), capture: { publish: { maxInFlight: "abc" }, lease: { enabled: "yes" } } };
    const err = configError(() => parseConfig(raw, {}, "examples/sync.yaml"));
    assert.ok(
      err.problems.includes(
        'examples/sync.yaml: capture.publish.maxInFlight: must be a positive integer (got "abc")',
      ),
      err.message,
    );
    hasProblem(err, "capture.lease.enabled", /must be true or false \(got "yes"\)/);
  });

  test("two bad keys give two problems, all reported at once", () => {
    const raw = { ...minimal(), capture: { batch: { maxRows: 0 } }, log: { level: "verbose" }, bogus: 1 };
    const err = configError(() => parseConfig(raw, {}));
    assert.equal(err.problems.length, 3, err.message);
    hasProblem(err, "capture.batch.maxRows", /between 1 and 100000 \(got 0\)/);
    hasProblem(err, "log.level", /one of "fatal", .*"trace" \(got "verbose"\)/);
    hasProblem(err, "bogus: unknown key");
    assert.match(err.message, /^3 problems:/);
  });

  test("missing required keys are each named", () => {
    const err = configError(() => parseConfig({}, {}));
    assert.deepEqual(err.problems, ["config: source.id: is required", "config: source.url: is required"]);
  });

  test("from: position needs file and position", () => {
    const err = configError(() =>
      parseConfig({ source: { ...minimal().source, start: { from: "position" } } }, {}),
    );
    hasProblem(err, "source.start.file", /required when source\.start\.from is "position"/);
    hasProblem(err, "source.start.position");
    const start = { from: "position", file: "mysql-bin.000042", position: 4 };
    const cfg = parseConfig({ source: { ...minimal().source, start } }, {});
    assert.deepEqual(cfg.source.start, { ...start, snapshot: false });
  });

  test("from: gtid needs a GTID set or MariaDB GTID position", () => {
    const with_ = (gtid?: string) => ({ source: { ...minimal().source, start: { from: "gtid", gtid } } });
    hasProblem(
      configError(() => parseConfig(with_(), {})),
      "source.start.gtid",
    );
    hasProblem(
      configError(() => parseConfig(with_("nope"), {})),
      "source.start.gtid",
    );
    assert.equal(parseConfig(with_("0-1-100"), {}).source.start.gtid, "0-1-100");
    const set = "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7, 4E11FA47-71CA-11E1-9E33-C80AA9429562:1-3";
    assert.equal(parseConfig(with_(set), {}).source.start.gtid, set);
  });

  test("cross-field rules", () => {
    const raw = {
      ...minimal(),
      nats: { stream: { maxAge: "1m", duplicateWindow: "2m" } },
      capture: { http: { port: 8080 }, grpc: { port: 8080 }, reconnect: { initialMs: "1m", maxMs: "1s" } },
    };
    const err = configError(() => parseConfig(raw, {}));
    hasProblem(err, "nats.stream.duplicateWindow", /must not exceed nats\.stream\.maxAge/);
    hasProblem(err, "capture.grpc.port", /must differ from capture\.http\.port/);
    hasProblem(err, "capture.reconnect.initialMs", /capture\.reconnect\.maxMs/);
  });

  test("patterns and ids are checked", () => {
    const source = {
      ...minimal().source,
      id: "a.b",
      include: { tables: ["orders"] },
      exclude: { columns: ["x.y"] },
    };
    const err = configError(() => parseConfig({ source }, {}));
    hasProblem(err, "source.id", /got "a\.b"/);
    hasProblem(err, "source.include.tables[0]", /"db\.table" pattern/);
    hasProblem(err, "source.exclude.columns[0]", /"db\.table\.column" pattern/);
  });
});

describe("environment overrides", () => {
  test("env wins over YAML and numbers are coerced", () => {
    const env = {
      DFS_SOURCE_ID: "billing",
      DFS_SOURCE_SERVER_ID: " 77 ",
      DFS_CAPTURE_HTTP_PORT: "0",
      DFS_LOG_LEVEL: "debug",
      DFS_NATS_URL: "nats://a:4222,nats://b:4222",
      DFS_TARGET_URL: "mariadb://w:pw@target",
      DFS_START_FROM: "earliest",
      DFS_NATS_TOKEN: "",
    };
    const cfg = parseConfig({ ...minimal(), log: { level: "warn" }, nats: { token: TOKEN } }, env);
    assert.equal(cfg.source.id, "billing");
    assert.equal(cfg.source.serverId, 77);
    assert.equal(cfg.capture.http.port, 0);
    assert.equal(cfg.capture.journal.path, "./data/billing/journal.db");
    assert.equal(cfg.log.level, "debug");
    assert.equal(cfg.nats.url, "nats://a:4222,nats://b:4222");
    assert.equal(cfg.nats.token, TOKEN, "an empty variable is ignored");
    assert.equal(cfg.target?.url, "mariadb://w:pw@target");
    assert.equal(cfg.source.start.from, "earliest");
  });

  test("a bad env value names the variable", () => {
    const err = configError(() =>
      parseConfig(minimal(), { DFS_SOURCE_SERVER_ID: "abc", DFS_LOG_LEVEL: "loud" }),
    );
    assert.ok(
      err.problems.includes('DFS_SOURCE_SERVER_ID (source.serverId): must be a positive integer (got "abc")'),
      err.message,
    );
    hasProblem(err, "DFS_LOG_LEVEL (log.level)");
  });

  test("no file: env and defaults only", () => {
    const cfg = loadConfig(undefined, { DFS_SOURCE_ID: "s1", DFS_SOURCE_URL: "mysql://u@h" });
    assert.equal(cfg.source.id, "s1");
    assert.equal(cfg.capture.batch.maxRows, 1000);
    const err = configError(() => loadConfig(undefined, {}));
    hasProblem(err, "source.url: is required");
  });
});

describe("secrets", () => {
  const leaks = (text: string) => text.includes(PASSWORD) || text.includes(TOKEN);

  test("passwords and tokens never appear in errors", () => {
    const bad = [
      { source: { id: "s", url: `mysql://repl:${PASSWORD}@db:99999/x` } },
      { source: { id: "s", url: `http://repl:${PASSWORD}@db/x` } },
      { source: { id: "s", url: `mysql://repl:${PASSWORD}#x@db/x` } },
      { source: { id: "s", url: `mysql://repl:${PASSWORD}/x@db/x` } },
      { source: { id: "s", url: `mysql://repl:${PASSWORD}@db/x?ssl=1` } },
      { ...minimal(), target: { url: `mysql://w:${PASSWORD}@h/a/b` } },
      { ...minimal(), nats: { url: `nats://u:${PASSWORD}@h:x`, token: 12 } },
      { ...minimal(), nats: { url: `nats://${TOKEN}@h:x` } },
      { ...minimal(), nats: { url: `nats://u:${PASSWORD.slice(0, 5)},${PASSWORD.slice(5)}@h` } },
      { ...minimal(), control: { token: [TOKEN] } },
    ];
    for (const raw of bad) {
      const err = configError(() => parseConfig(raw, { DFS_NATS_TOKEN: TOKEN }));
      assert.ok(!leaks(err.message) && !err.problems.some(leaks), err.message);
      assert.ok(!err.message.includes(PASSWORD.slice(5)), err.message);
    }
    const envErr = configError(() => parseConfig(minimal(), { DFS_SOURCE_URL: `pg://u:${PASSWORD}@h` }));
    assert.ok(!leaks(envErr.message), envErr.message);
    hasProblem(envErr, "DFS_SOURCE_URL (source.url)", /pg:\/\/u:\*\*\*@h/);
  });

  test("describeConfig redacts URLs and tokens", () => {
    const raw = {
      ...minimal(),
      target: { url: `mariadb://w:${PASSWORD}@t:3306/x` },
      nats: { url: `nats://${TOKEN}@n1:4222, nats://u:${PASSWORD}@n2:4222`, token: TOKEN },
      control: { token: TOKEN },
    };
    const cfg = parseConfig(raw, {});
    const safe = describeConfig(cfg);
    const text = JSON.stringify(safe);
    assert.ok(!leaks(text), text);
    assert.equal((safe.control as { token: string }).token, "[redacted]");
    assert.equal((safe.nats as { token: string }).token, "[redacted]");
    assert.match((safe.source as { url: string }).url, /^mysql:\/\/repl:\*\*\*@db\.local:3307\/shop$/);
    assert.equal(cfg.source.url, raw.source.url, "the config itself is not changed");
  });

  test("parseMysqlUrl errors do not echo the password", () => {
    for (const url of [`mysql://u:${PASSWORD}@h:0`, `ftp://u:${PASSWORD}@h`, `mysql://u:${PASSWORD}@`]) {
      const err = configError(() => parseMysqlUrl(url));
      assert.ok(!err.message.includes(PASSWORD), err.message);
    }
  });
});

describe("parseMysqlUrl", () => {
  test("parts, percent-decoding and the default port", () => {
    assert.deepEqual(parseMysqlUrl("mysql://us%40er:p%23ss%3Aw@db.example:3307/app%20db"), {
      host: "db.example",
      port: 3307,
      user: "us@er",
      password: "p#ss:w",
      database: "app db",
    });
    assert.deepEqual(parseMysqlUrl("mariadb://root@[::1]"), {
      host: "::1",
      port: 3306,
      user: "root",
      password: "",
    });
    assert.equal(parseMysqlUrl("mysql://u:p@h/").database, undefined);
  });

  test("problems are named", () => {
    assert.match(configError(() => parseMysqlUrl("postgres://u:p@h")).message, /must start with mysql:\/\//);
    assert.match(configError(() => parseMysqlUrl("mysql://h:3306")).message, /has no user name/);
    assert.match(configError(() => parseMysqlUrl("mysql://u:p@h/a/b")).message, /single database name/);
  });
});

describe("loadConfig", () => {
  test("reads YAML", () => {
    const file = writeYaml(
      "ok.yaml",
      "source:\n  id: shop\n  url: mysql://u:p@h\ncapture:\n  batch: { maxBytes: 1MiB }\n",
    );
    const cfg = loadConfig(file, { DFS_LOG_LEVEL: "trace" });
    assert.equal(cfg.capture.batch.maxBytes, 1024 ** 2);
    assert.equal(cfg.log.level, "trace");
  });

  test("validation problems name the file", () => {
    const file = writeYaml(
      "typo.yaml",
      "source:\n  id: shop\n  url: mysql://u:p@h\ncapture:\n  jornal: {}\n",
    );
    const err = configError(() => loadConfig(file, {}));
    assert.deepEqual(err.problems, [`${file}: capture.jornal: unknown key (did you mean "journal"?)`]);
  });

  test("a YAML syntax error is CONFIG_UNREADABLE with line and column", () => {
    const file = writeYaml("broken.yaml", `source:\n  id: shop\n  url: mysql://u:${PASSWORD}@h\n\tnats: x\n`);
    const err = configError(() => loadConfig(file, {}), ErrorCode.CONFIG_UNREADABLE);
    assert.match(
      err.problems[0]!,
      new RegExp(`^${file.replace(/[.\\]/g, "\\$&")}:4:\\d+: YAML syntax error`),
    );
    assert.ok(!err.message.includes(PASSWORD), err.message);
    const dup = writeYaml("dup.yaml", "log:\n  level: info\n  level: debug\n");
    assert.match(
      configError(() => loadConfig(dup, {}), ErrorCode.CONFIG_UNREADABLE).message,
      /:3:3: .*unique/,
    );
  });

  test("a missing file is CONFIG_UNREADABLE naming the path", () => {
    const file = join(tmp, "nope.yaml");
    const err = configError(() => loadConfig(file, {}), ErrorCode.CONFIG_UNREADABLE);
    assert.equal(err.problems.length, 1);
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    assert.match(err.message, /no such file/);
  });

  test("a top level that is not a mapping is rejected", () => {
    const file = writeYaml("list.yaml", "- a\n- b\n");
    assert.match(configError(() => loadConfig(file, {})).message, /top level must be a mapping/);
  });
});

/** A Markdown table row starting with these cells, whatever the column padding. */
function tableRow(...cells: string[]): RegExp {
  const esc = (c: string) => c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^\\|\\s*${cells.map(esc).join("\\s*\\|\\s*")}\\s*\\|`, "m");
}

describe("documentation", () => {
  const docs = readFileSync(new URL("../../../../docs/configuration.md", import.meta.url), "utf8");

  test("every key has a description and a row in docs/configuration.md", () => {
    for (const key of listConfigKeys()) {
      assert.ok(key.description, `${key.path} has no .describe()`);
      if (key.leaf)
        assert.ok(
          tableRow(`\`${key.path}\``).test(docs),
          `docs/configuration.md lacks a row for ${key.path}`,
        );
    }
  });

  test("every environment override is in docs/configuration.md", () => {
    for (const { env, path } of ENV_OVERRIDES) {
      assert.ok(
        tableRow(`\`${env}\``, `\`${path}\``).test(docs),
        `docs/configuration.md lacks ${env} -> ${path}`,
      );
    }
  });
});

describe("archive (the backup use)", () => {
  test("defaults: a folder per source, one file a day, no retention; sizes and ages converted", () => {
    const { target: _t, ...noTarget } = minimal() as Record<string, unknown>;
    const cfg = parseConfig({ ...noTarget, archive: {} }, {});
    assert.equal(cfg.target, undefined);
    assert.deepEqual(cfg.archive, {
      dir: `./data/${cfg.source.id}/archive`,
      period: "day",
      maxFileBytes: 1024 ** 3,
      retention: {},
    });
    const kept = parseConfig(
      { ...noTarget, archive: { retention: { maxAge: "90d", maxBytes: "5GiB" } } },
      {},
    );
    assert.deepEqual(kept.archive?.retention, { maxAge: 90 * 86_400_000, maxBytes: 5 * 1024 ** 3 });
  });

  test("examples/backup.yaml: no target, an archive", () => {
    const file = fileURLToPath(new URL("../../../../examples/backup.yaml", import.meta.url));
    const cfg = loadConfig(file, {});
    assert.equal(cfg.target, undefined);
    assert.equal(cfg.archive?.period, "day");
    assert.equal(cfg.archive?.retention.maxAge, 30 * 86_400_000);
  });

  test("refused beside a target: a DPU writes to one sink", () => {
    const err = configError(() =>
      parseConfig(
        { ...minimal(), target: { url: "mysql://root@127.0.0.1:13307" }, archive: {} },
        {},
        "b.yaml",
      ),
    );
    hasProblem(err, "b.yaml: archive", /without a target/);
  });
});
