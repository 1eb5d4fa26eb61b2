// `dfs ctl` against a running capture: the command-line client of the control plane.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startCapture } from "@dfs/capture";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";

const run = promisify(execFile);
const DFS = fileURLToPath(new URL("../../bin/dfs.js", import.meta.url));

async function dfs(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [DFS, ...args], { env: { ...process.env, DFS_LOG_LEVEL: "warn" } });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

test("dfs ctl reads status, pauses and resumes capture; a wrong token is exit code 78 (config)", async () => {
  await ensureStack();
  const id = uniqueId("ctl");
  const src = await sourceConnection();
  await src.query(`CREATE DATABASE \`${id}\``);
  const capture = await startCapture(testConfig(id, id, { control: { token: "cli-token" } }));
  const address = `127.0.0.1:${capture.endpoints.grpc}`;
  try {
    const status = await dfs("ctl", "capture", "status", "--address", address, "--token", "cli-token");
    assert.equal(status.code, 0, status.err);
    const s = JSON.parse(status.out) as { service: string; state: string; sourceId: string };
    assert.deepEqual([s.service, s.state, s.sourceId], ["capture", "running", id]);

    const paused = await dfs("ctl", "capture", "pause", "--address", address, "--token", "cli-token");
    assert.equal(JSON.parse(paused.out).state, "paused");
    assert.equal(capture.status().state, "paused");
    const resumed = await dfs("ctl", "capture", "resume", "--address", address, "--token", "cli-token");
    assert.equal(JSON.parse(resumed.out).state, "running");

    const wrong = await dfs("ctl", "capture", "pause", "--address", address, "--token", "nope");
    assert.equal(wrong.code, 78);
    assert.match(wrong.err, /capture\.pause: UNAUTHENTICATED: wrong token/);
    assert.ok(!wrong.err.includes("cli-token"), "the real token is never printed");
    assert.equal(capture.status().state, "running");

    // dfs snapshot asks the same control plane; a table that does not exist is a bad argument (64).
    const bad = await dfs("snapshot", "--address", address, "--token", "cli-token", `${id}.nosuch`);
    assert.equal(bad.code, 64);
    assert.match(bad.err, /INVALID_ARGUMENT: .*nosuch: table .* does not exist/);
    await src.query(`CREATE TABLE \`${id}\`.t (id INT PRIMARY KEY)`);
    await src.query(`INSERT INTO \`${id}\`.t VALUES (1), (2), (3)`);
    const snap = await dfs("snapshot", "--address", address, "--token", "cli-token", "--wait", `${id}.t`);
    assert.equal(snap.code, 0, snap.err);
    assert.match(snap.out, /snapshot [0-9a-f-]+ started\nsnapshot [0-9a-f-]+ done/);
    assert.equal(capture.status().snapshot?.rowsRead, 3);

    const usage = await dfs("ctl", "nosuch", "status");
    assert.equal(usage.code, 64);
    assert.match(
      usage.err,
      /^dfs ctl: .*'nosuch' is invalid for argument 'service'\. Allowed choices are capture, relmgr, dpu/,
    );
    const away = await dfs("ctl", "capture", "status", "--address", "127.0.0.1:1", "--token", "cli-token");
    assert.equal(away.code, 69, "a control plane that does not answer is unavailable");
    assert.match(away.err, /^dfs ctl: capture\.status: UNAVAILABLE/);
  } finally {
    await capture.stop();
    const nc = await connectNats({ url: urls.natsUrl, name: "test-ctl" });
    await deleteStreams(nc, id).catch(() => {});
    await nc.close();
    await src.query(`DROP DATABASE \`${id}\``);
    await src.end();
  }
});
