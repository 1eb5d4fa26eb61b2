#!/usr/bin/env node
// The image's HEALTHCHECK: asks the running dfs service for /healthz on its HTTP port.
//
// One image runs every service, so the port is not fixed: this finds the dfs process (PID 1 when
// the image's ENTRYPOINT runs it, else the first process running bin/dfs.js, e.g. under an init),
// reads its command (capture, dpu, relmgr, monitor, run) and its -c file, and loads that config
// with the container's environment as the service did, so DFS_*_PORT variables and the YAML's
// ports are both honoured.
//
//   DFS_HEALTHCHECK_URL   ask this URL instead (nothing else is read)
//   DFS_HEALTHCHECK_PID   the dfs process to look at (default: found as above)
//
// Exit 0 when every endpoint answered 200 within the timeout, 1 otherwise (Docker's contract).
// Nothing secret is printed: only the service, the URL (localhost and a port) and the status.
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

const TIMEOUT_MS = 4000;

/** A variable of the container's environment, trimmed; undefined when unset or empty. */
const envValue = (name) => process.env[name]?.trim() || undefined;

/** argv of a process, or undefined when it cannot be read. */
function argvOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

/** The arguments after bin/dfs.js of the dfs process. */
function dfsArgs() {
  const isDfs = (argv) => argv?.some((a) => /(^|\/)dfs(\.js)?$/.test(a));
  const after = (argv) => argv.slice(argv.findIndex((a) => /(^|\/)dfs(\.js)?$/.test(a)) + 1);
  const wanted = envValue("DFS_HEALTHCHECK_PID");
  if (wanted) {
    const argv = argvOf(wanted);
    if (!isDfs(argv)) throw new Error(`process ${wanted} is not a dfs process`);
    return after(argv);
  }
  const first = argvOf(1);
  if (isDfs(first)) return after(first);
  const pids = readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid)
    .sort((a, b) => Number(a) - Number(b));
  for (const pid of pids) {
    const argv = argvOf(pid);
    if (isDfs(argv)) return after(argv);
  }
  throw new Error("no dfs process found");
}

/** The command and the config file of `dfs <command> [-c FILE]`. */
function parseArgs(args) {
  let command;
  let config;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-c" || a === "--config") config = args[++i];
    else if (a.startsWith("--config=")) config = a.slice("--config=".length);
    else if (!a.startsWith("-") && command === undefined) command = a;
  }
  return { command, config };
}

/** The /healthz URLs of what `command` serves, from the config it runs with. */
async function healthUrls(command, configFile) {
  const { loadConfig } = await import("@dfs/config");
  const cfg = loadConfig(configFile);
  const plain = (port) => `http://127.0.0.1:${port}/healthz`;
  const monitor = `${cfg.monitor.http.tls ? "https" : "http"}://127.0.0.1:${cfg.monitor.http.port}/healthz`;
  const byCommand = {
    capture: [plain(cfg.capture.http.port)],
    dpu: [plain(cfg.dpu.http.port)],
    relmgr: [plain(cfg.relmgr.http.port)],
    monitor: [monitor],
    // dfs run keeps each service's port: capture and the monitor always, the DPU with a target.
    run: [plain(cfg.capture.http.port), ...(cfg.target ? [plain(cfg.dpu.http.port)] : []), monitor],
  };
  const urls = byCommand[command];
  if (!urls) throw new Error(`dfs ${command ?? "(no command)"} has no health endpoint`);
  if (urls.some((u) => /:0\/healthz$/.test(u)))
    throw new Error(`dfs ${command} listens on a port chosen at start (0): set DFS_HEALTHCHECK_URL`);
  return urls;
}

function get(url) {
  return new Promise((resolve) => {
    const lib = url.startsWith("https:") ? https : http;
    // Localhost only; the monitor's certificate names its public host, not 127.0.0.1.
    const req = lib.get(url, { timeout: TIMEOUT_MS, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (err) => resolve(err.message));
  });
}

async function main() {
  const override = envValue("DFS_HEALTHCHECK_URL");
  let urls;
  let what = "dfs";
  if (override) urls = [override];
  else {
    const { command, config } = parseArgs(dfsArgs());
    what = `dfs ${command}`;
    urls = await healthUrls(command, config);
  }
  let ok = true;
  for (const url of urls) {
    const status = await get(url);
    if (status !== 200) ok = false;
    console.log(`${what}: ${url} -> ${status}`);
  }
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.log(`healthcheck: ${err.message}`);
    process.exitCode = 1;
  },
);
