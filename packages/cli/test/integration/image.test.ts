// The container image without Docker (this machine has no engine): the Dockerfile's build stage is
// replayed in a temporary directory standing for /app (its COPY lines through .dockerignore, its
// ENV, its RUN lines for npm ci, the build and the prune; apt-get is checked, not run), then every
// dfs service of docker-compose.yml is started with the image's ENTRYPOINT and the service's
// command and environment, adapted to the local stack (MySQL host names -> the stack's servers,
// /run/secrets -> files here, ports -> free ones), with deploy/compose/dfs.yaml. The load of
// deploy/compose/load.sh and rows of the test's own go into the demo schema on the source and
// must arrive, the same, in the target through the two DPU groups. The image's HEALTHCHECK runs
// against each service. Differences from the image: Node 20 here (the image has Node 24), and the
// runtime stage's mkdir/USER lines (paths outside /app) are not replayed.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, tempDir, uniqueId, urls } from "@dfs/testkit";
import mysql from "mysql2/promise";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import {
  copyFromContext,
  copyParts,
  dockerignore,
  envPairs,
  interpolateDefaults,
  type Json,
  loadCompose,
  parseDockerfile,
  repoRoot,
  type Stage,
  serviceEnv,
} from "../support/deploy.js";

const root = repoRoot();
const APP = "/app";
const TABLES = ["customers", "orders", "order_items", "page_views"];

/** What the compose network's host names are on this machine. */
const LOCAL: Record<string, string> = {
  "mysql-source:3306": urls.sourceUrl,
  "mysql-target:3306": urls.targetUrl,
  "nats:4222": urls.natsUrl,
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Replays a build stage: WORKDIR, ENV, COPY from the context, RUN. Returns the stage's ENV. */
function replayBuildStage(stage: Stage, app: string, log: string[]): Record<string, string> {
  const ignored = dockerignore(readFileSync(join(root, ".dockerignore"), "utf8"));
  const env: Record<string, string> = {};
  for (const ins of stage.instructions) {
    if (ins.cmd === "WORKDIR") assert.equal(ins.rest, APP, "the build runs in /app");
    else if (ins.cmd === "ENV") Object.assign(env, envPairs(ins.rest));
    else if (ins.cmd === "COPY") {
      const { flags, sources, dest } = copyParts(ins);
      assert.equal(flags.from, undefined, "the build stage copies from the context only");
      copyFromContext(root, ignored, sources, dest, app);
    } else if (ins.cmd === "RUN") {
      if (/^apt-get\b/.test(ins.rest)) {
        // The image's system packages: the tools they bring must be here for the steps after.
        const pkgs = /install\s+(?:-\S+\s+)*([^&]+)/
          .exec(ins.rest)?.[1]
          ?.split(/\s+/)
          .filter((p) => p && !p.startsWith("-"));
        for (const p of pkgs ?? []) {
          const r = spawnSync("sh", ["-c", `command -v ${p}`]);
          assert.equal(r.status, 0, `${p} (apt-get install in the Dockerfile) is not on this machine`);
        }
        log.push(`checked (not run): ${ins.rest}`);
        continue;
      }
      const started = Date.now();
      const r = spawnSync("sh", ["-c", ins.rest], {
        cwd: app,
        env: { ...process.env, ...env },
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        timeout: 15 * 60_000,
      });
      const out = `${r.stdout}\n${r.stderr}`;
      assert.equal(
        r.status,
        0,
        `Dockerfile line ${ins.line}: RUN ${ins.rest} failed (${r.status}):\n${out.slice(-4000)}`,
      );
      log.push(`ran in ${((Date.now() - started) / 1000).toFixed(1)} s: ${ins.rest}`);
    }
  }
  return env;
}

/** A compose URL value (mysql://dfs@mysql-source:3306) as the local stack's server. */
function localUrl(value: string): string {
  for (const [hostPort, url] of Object.entries(LOCAL))
    if (value.includes(`@${hostPort}`) || value.endsWith(`//${hostPort}`)) return url;
  return value;
}

interface Running {
  name: string;
  child: ChildProcess;
  env: NodeJS.ProcessEnv;
  http: number;
  exited: Promise<number | string>;
  output: () => string;
}

function start(name: string, argv: string[], env: NodeJS.ProcessEnv, cwd: string, http: number): Running {
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString("utf8")).slice(-30_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, sig) => resolve(code ?? sig ?? -1)),
  );
  return { name, child, env, http, exited, output: () => out };
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
}

async function rowsOf(conn: mysql.Connection, db: string, table: string): Promise<string> {
  const [rows] = await conn.query(`SELECT * FROM \`${db}\`.\`${table}\` ORDER BY id`);
  return JSON.stringify(rows);
}

test("the Dockerfile's build, replayed here, runs every compose service; rows flow source -> target", {
  timeout: 25 * 60_000,
}, async (t) => {
  await ensureStack();
  const tmp = tempDir("dfs-image-");
  const app = join(tmp, "app");
  const id = uniqueId("img");
  const db = id;
  const running: Running[] = [];
  const src = await sourceConnection();
  const tgt = await mysql.createConnection({
    uri: urls.targetUrl,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  try {
    // ---- the image's build stage ----
    const dockerfile = parseDockerfile(readFileSync(join(root, "Dockerfile"), "utf8"));
    const [build, runtime] = dockerfile.stages as [Stage, Stage];
    const log: string[] = [];
    mkdirSync(app, { recursive: true });
    const buildStarted = Date.now();
    replayBuildStage(build, app, log);
    t.diagnostic(`build stage replayed in ${((Date.now() - buildStarted) / 1000).toFixed(0)} s`);
    for (const line of log) t.diagnostic(line);

    // What the runtime stage gets from it: built code, production dependencies only, the native
    // module compiled (not downloaded), zongji patched.
    const nm = join(app, "node_modules");
    for (const dev of [
      "typescript",
      "turbo",
      "patch-package",
      "@biomejs/biome",
      "ts-proto",
      "@bufbuild/buf",
      "ajv",
      "dclint",
    ])
      assert.ok(!existsSync(join(nm, dev)), `dev dependency ${dev} left in the image`);
    assert.ok(
      existsSync(join(nm, "better-sqlite3/build/Release/better_sqlite3.node")),
      "better-sqlite3 built",
    );
    assert.ok(
      existsSync(join(nm, "better-sqlite3/build/Release/obj.target/better_sqlite3/src/better_sqlite3.o")),
      "better-sqlite3 compiled here, not a downloaded binary",
    );
    const zongji = JSON.parse(readFileSync(join(nm, "@vlasky/zongji/package.json"), "utf8")).version;
    const patch = readdirSync(join(app, "patches")).find((f) => f.startsWith("@vlasky+zongji+"))!;
    assert.equal(patch, `@vlasky+zongji+${zongji}.patch`);
    assert.match(
      readFileSync(join(nm, "@vlasky/zongji/lib/common.js"), "utf8"),
      /dataflowsync/,
      "patch applied",
    );
    for (const f of [
      "packages/cli/dist/index.js",
      "services/monitor/public",
      "deploy/docker/healthcheck.mjs",
    ])
      assert.ok(existsSync(join(app, f)), `${f} in the image`);
    assert.ok(
      !existsSync(join(app, ".env")) && !existsSync(join(app, ".git")) && !existsSync(join(app, "docs")),
    );

    // ---- the runtime stage: ENV, the copy from build (the same folder here), the entry point ----
    const runtimeEnv: Record<string, string> = {};
    for (const ins of runtime.instructions) {
      if (ins.cmd === "ENV") Object.assign(runtimeEnv, envPairs(ins.rest));
      if (ins.cmd === "COPY") {
        const c = copyParts(ins);
        assert.deepEqual([c.flags.from, c.sources, c.dest], ["build", [APP], APP]);
      }
    }
    const inApp = (p: string) => (p.startsWith(`${APP}/`) ? join(app, p.slice(APP.length + 1)) : p);
    const entrypoint = runtime.instructions.findLast((i) => i.cmd === "ENTRYPOINT")!.json!.map(inApp);
    const healthcheck = JSON.parse(
      /CMD (\[.*\])$/.exec(runtime.instructions.findLast((i) => i.cmd === "HEALTHCHECK")!.rest)![1]!,
    ).map(inApp) as string[];

    // ---- the demo schema on the source, in a database of this test's own ----
    await src.query(`CREATE DATABASE \`${db}\``);
    await src.query(`USE \`${db}\``);
    const schema = readFileSync(join(root, "deploy/compose/source-init/01-schema.sql"), "utf8");
    const multi = await sourceConnection(db);
    await multi.query(schema);
    await multi.end();

    // ---- dfs.yaml as compose mounts it, its database and hosts made this test's ----
    const compose = loadCompose();
    const services = Object.entries<Json>(compose.services).filter(([, s]) =>
      ["capture", "dpu", "relmgr", "monitor"].includes(s.command?.[0]),
    );
    const ports = new Map<string, { http: number; grpc: number }>();
    for (const [name] of services) ports.set(name, { http: await freePort(), grpc: await freePort() });
    const yaml = parseYaml(readFileSync(join(root, "deploy/compose/dfs.yaml"), "utf8"));
    yaml.source.include.databases = [db];
    for (const g of yaml.relmgr.groups)
      g.tables = g.tables.map((x: string) => x.replace(/^shop\./, `${db}.`));
    for (const w of yaml.monitor.services) {
      const host = /^([^:]+):/.exec(w.grpc)![1]!;
      const p = ports.get(host);
      assert.ok(p, `monitor.services names ${host}, a compose service`);
      w.grpc = `127.0.0.1:${p.grpc}`;
      w.http = `http://127.0.0.1:${p.http}`;
    }
    const etc = join(tmp, "etc-dfs");
    mkdirSync(etc);
    writeFileSync(join(etc, "dfs.yaml"), toYaml(yaml));

    // ---- secrets as files: the stack's servers have no password; a token for the control planes ----
    const secrets = join(tmp, "secrets");
    mkdirSync(secrets);
    for (const name of Object.keys(compose.secrets))
      writeFileSync(join(secrets, name), name === "control_token" ? `${id}-token\n` : "");

    const envFor = (name: string, svc: Json): NodeJS.ProcessEnv => {
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...runtimeEnv };
      for (const [k, raw] of Object.entries(serviceEnv(svc))) {
        let v = interpolateDefaults(raw);
        if (v.startsWith("/run/secrets/")) v = join(secrets, v.slice("/run/secrets/".length));
        else if (v.startsWith("/var/lib/dfs/"))
          v = join(tmp, "var-lib-dfs", name, v.slice("/var/lib/dfs/".length));
        else v = localUrl(v);
        env[k] = v;
      }
      const p = ports.get(name)!;
      const kind = svc.command[0] as string;
      // This machine's stack is shared: a source id, replica server id and ports of this test's own.
      Object.assign(env, {
        DFS_SOURCE_ID: id,
        DFS_SOURCE_SERVER_ID: String(100_000 + Math.floor(Math.random() * 1_000_000_000)),
        DFS_LOG_LEVEL: "warn",
        ...(kind === "capture" && {
          DFS_CAPTURE_HTTP_PORT: String(p.http),
          DFS_CAPTURE_GRPC_PORT: String(p.grpc),
        }),
        ...(kind === "dpu" && { DFS_DPU_HTTP_PORT: String(p.http), DFS_DPU_GRPC_PORT: String(p.grpc) }),
        ...(kind === "relmgr" && {
          DFS_RELMGR_HTTP_PORT: String(p.http),
          DFS_RELMGR_GRPC_PORT: String(p.grpc),
        }),
        ...(kind === "monitor" && { DFS_MONITOR_PORT: String(p.http) }),
      });
      return env;
    };

    // ---- every dfs service: ENTRYPOINT + the compose command, dfs.yaml at its mounted path here ----
    for (const [name, svc] of services) {
      const command = (svc.command as string[]).map((a) =>
        a === "/etc/dfs/dfs.yaml" ? join(etc, "dfs.yaml") : a,
      );
      running.push(
        start(
          name,
          [...entrypoint.map((a) => (a === "node" ? process.execPath : a)), ...command],
          envFor(name, svc),
          app,
          ports.get(name)!.http,
        ),
      );
    }
    for (const r of running) {
      let code: number | string | undefined;
      void r.exited.then((c) => {
        code = c;
      });
      await waitFor(
        async () => {
          if (code !== undefined) throw new Error(`${r.name} exited (${code}): ${r.output()}`);
          return (await httpGet(`http://127.0.0.1:${r.http}/healthz`)).status === 200;
        },
        { timeoutMs: 90_000, intervalMs: 250, what: `${r.name}'s /healthz` },
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${r.name} output:\n${r.output()}`);
      });
    }

    // ---- the image's HEALTHCHECK against each, as Docker runs it (the container's environment) ----
    for (const r of running) {
      const h = spawnSync(
        healthcheck[0] === "node" ? process.execPath : healthcheck[0]!,
        healthcheck.slice(1),
        {
          cwd: app,
          env: { ...r.env, DFS_HEALTHCHECK_PID: String(r.child.pid) },
          encoding: "utf8",
          timeout: 20_000,
        },
      );
      assert.equal(h.status, 0, `HEALTHCHECK of ${r.name}: ${h.stdout}${h.stderr}`);
      assert.match(h.stdout, new RegExp(`:${r.http}/healthz -> 200`), `${r.name}: ${h.stdout}`);
    }
    const refused = spawnSync(process.execPath, healthcheck.slice(1), {
      cwd: app,
      env: { ...running[0]!.env, DFS_HEALTHCHECK_URL: `http://127.0.0.1:${await freePort()}/healthz` },
      encoding: "utf8",
    });
    assert.equal(refused.status, 1, `a HEALTHCHECK of nothing fails: ${refused.stdout}`);

    // ---- the load (compose's load service: load.sh) and rows of this test's own ----
    const loadSvc = compose.services.load;
    const loadEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
    for (const [k, raw] of Object.entries(serviceEnv(loadSvc))) {
      const v = interpolateDefaults(raw);
      loadEnv[k] = v.startsWith("/run/secrets/") ? join(secrets, v.slice("/run/secrets/".length)) : v;
    }
    const source = new URL(urls.sourceUrl);
    Object.assign(loadEnv, {
      LOAD_HOST: source.hostname,
      LOAD_PORT: source.port,
      LOAD_DATABASE: db,
      LOAD_INTERVAL: "0.2",
      LOAD_ROUNDS: "15",
    });
    const loadScript = (loadSvc.volumes as string[]).find((v) => v.includes("load.sh"))!.split(":")[0]!;
    const load = start("load", ["sh", join(root, loadScript)], loadEnv, tmp, 0);
    await src.query(`USE \`${db}\``);
    await src.query("INSERT INTO customers (name, email) VALUES ('Image Test', 'image@example.com')");
    await src.query("INSERT INTO orders (customer_id, total) VALUES (LAST_INSERT_ID(), 77.70)");
    await src.query("INSERT INTO page_views (path) VALUES ('/image-test')");
    const loadCode = await load.exited;
    assert.equal(loadCode, 0, `load.sh: ${load.output()}`);
    assert.match(load.output(), /15 rounds done/);

    // ---- the target ends equal to the source, table by table (both groups) ----
    const [[counts]] = (await src.query(
      `SELECT (SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM page_views) AS views`,
    )) as unknown as [[{ orders: number; views: number }]];
    assert.ok(
      Number(counts.orders) >= 18 && Number(counts.views) >= 40,
      `the load wrote: ${JSON.stringify(counts)}`,
    );
    for (const table of TABLES) {
      const want = await rowsOf(src, db, table);
      await waitFor(async () => (await rowsOf(tgt, db, table).catch(() => "")) === want, {
        timeoutMs: 120_000,
        intervalMs: 500,
        what: `${db}.${table} on the target to equal the source`,
      }).catch((e: Error) => {
        throw new Error(`${e.message}\n${running.map((r) => `${r.name}:\n${r.output()}`).join("\n")}`);
      });
    }
    const [mine] = (await tgt.query(`SELECT total FROM \`${db}\`.orders WHERE total = 77.70`)) as unknown as [
      unknown[],
    ];
    assert.equal(mine.length, 1, "the test's own order is in the target");

    // ---- what Prometheus scrapes: dfs_ series from each, the DPUs labelled with their group ----
    for (const r of running) {
      const m = await httpGet(`http://127.0.0.1:${r.http}/metrics`);
      assert.equal(m.status, 200, `${r.name} /metrics`);
      assert.match(
        m.body,
        new RegExp(`^dfs_\\w+\\{[^}]*source="${id}"`, "m"),
        `${r.name} serves dfs_ series`,
      );
      const group = r.env.DFS_DPU_GROUP;
      if (group)
        assert.match(
          m.body,
          new RegExp(`dfs_dpu_applied_sequence\\{[^}]*group="${group}"`),
          `${r.name}: group label`,
        );
    }
    const relmgr = running.find((r) => r.name === "relmgr")!;
    assert.match(
      (await httpGet(`http://127.0.0.1:${relmgr.http}/metrics`)).body,
      /^dfs_relmgr_groups\{[^}]*\} 2$/m,
      "relmgr planned two groups",
    );

    // ---- docker stop: SIGTERM, and each service exits 0 ----
    for (const r of running) r.child.kill("SIGTERM");
    for (const r of running) {
      const code = await Promise.race([
        r.exited,
        new Promise((res) => setTimeout(() => res("still running"), 30_000)),
      ]);
      assert.equal(code, 0, `${r.name} after SIGTERM: ${code}\n${r.output()}`);
    }
  } finally {
    for (const r of running)
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await Promise.all(running.map((r) => r.exited));
    await src.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await tgt.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => {});
    await tgt
      .query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer LIKE ?", [`${id}:%`])
      .catch(() => {});
    await src.end();
    await tgt.end();
    const nc = await connectNats({ url: urls.natsUrl, name: "test-image-cleanup" }).catch(() => undefined);
    if (nc) {
      await deleteStreams(nc, id).catch(() => {});
      await nc.close();
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});
