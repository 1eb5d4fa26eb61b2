// Logs and messages mask credentials, never host names and ports.
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ConfigError, createLogger, displayUrls, ErrorCode, redactText, waitFor } from "../../dist/index.js";

const SECRET = "Pa55-w0rd";
const dir = mkdtempSync(join(tmpdir(), "dfs-log-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("displayUrls masks credentials (a NATS user name too, it may be a token) and keeps hosts", () => {
  assert.equal(
    displayUrls(`mysql://repl:${SECRET}@db.internal:3306/app?ssl-mode=REQUIRED`),
    "mysql://repl:***@db.internal:3306/app?ssl-mode=REQUIRED",
  );
  assert.equal(
    displayUrls(`nats://${SECRET}@n1:4222, tls://u:${SECRET}@n2:4222`),
    "nats://***@n1:4222,tls://u:***@n2:4222",
  );
  assert.equal(displayUrls("tls://n1.internal:4222"), "tls://n1.internal:4222");
  assert.equal(displayUrls(`nats://u:${SECRET.slice(0, 3)},${SECRET.slice(3)}@h:4222`), "(urls not shown)");
});

test("the logger censors secret keys and masks URLs at any depth, keeping hosts", async () => {
  const file = join(dir, "log.jsonl");
  const fd = openSync(file, "w");
  const log = createLogger({ destination: fd, level: "info" });
  log.info(
    {
      url: `mysql://repl:${SECRET}@db.internal:3306`,
      config: {
        nats: { url: `nats://${SECRET}@n1.internal:4222`, password: SECRET, nkeySeed: SECRET },
        source: { endpoint: { password: SECRET, host: "db.internal" } },
        control: { token: SECRET },
      },
      authorization: `Bearer ${SECRET}`,
    },
    "start",
  );
  log.flush();
  await waitFor(() => readFileSync(file, "utf8").includes("\n"), {
    timeoutMs: 5000,
    intervalMs: 10,
    what: "the log line",
  });
  closeSync(fd);
  const line = readFileSync(file, "utf8");
  assert.ok(!line.includes(SECRET), line);
  assert.match(line, /"url":"mysql:\/\/repl:\*\*\*@db\.internal:3306"/);
  assert.match(line, /"url":"nats:\/\/\*\*\*@n1\.internal:4222"/);
  assert.match(line, /"host":"db\.internal"/);
  assert.match(line, /"password":"\[redacted\]"/);
});

test("redactText masks every URL password in free text, and stays linear on long input", () => {
  assert.equal(
    redactText('cannot read nats://u:S3cr3t@[bad; line "mysql://root:pw@127.0.0.1:13306/db" https://h/p@x'),
    'cannot read nats://u:***@[bad; line "mysql://root:***@127.0.0.1:13306/db" https://h/p@x',
  );
  const started = performance.now();
  redactText(`${"x".repeat(200_000)}://${"y:".repeat(50_000)}`);
  assert.ok(performance.now() - started < 500, "no backtracking blow-up");
  const err = new ConfigError(ErrorCode.CONFIG_INVALID, [
    "target.tls.ca: cannot read mysql://a:topsecret@h (no such file)",
  ]);
  assert.doesNotMatch(err.message, /topsecret/);
  assert.doesNotMatch(err.problems.join(), /topsecret/);
});

test("a URL cut before its @host does not show what may be a password; a port stays", () => {
  assert.equal(displayUrls("mysql://root:S3cr3t-pw"), "mysql://root:***");
  assert.equal(displayUrls("mysql://db.example:3306/x"), "mysql://db.example:3306/x");
  assert.equal(displayUrls("mysql://db.example:99999"), "mysql://db.example:99999");
});
