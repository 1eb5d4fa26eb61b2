// The deploy files, checked without Docker: docker-compose.yml against the Compose Specification's
// JSON schema (as dclint ships it, from the npm registry), and the Dockerfile, .dockerignore,
// docker-compose.yml, deploy/compose/dfs.yaml and deploy/prometheus/prometheus.yml against each
// other and against what the services need.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { type DfsConfig, loadConfig } from "@dfs/config";
import { Ajv } from "ajv";
import { parse as parseYaml } from "yaml";
import {
  copyParts,
  dockerignore,
  envPairs,
  interpolateDefaults,
  type Json,
  loadCompose,
  parseDockerfile,
  repoRoot,
  serviceEnv,
} from "../support/deploy.js";

const root = repoRoot();
const read = (rel: string) => readFileSync(join(root, rel), "utf8");
const DFS_COMMANDS = new Set(["capture", "dpu", "relmgr", "monitor", "run"]);
const SECRET_NAME = /PASSWORD|TOKEN|SECRET|NKEY|CREDENTIAL/i;

/** The Compose Specification schema, from the dclint package (which ships compose-spec's schema). */
function composeValidator() {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve("dclint/package.json"));
  const schema = JSON.parse(readFileSync(join(dir, "schemas", "compose.schema.json"), "utf8"));
  assert.equal(schema.title, "Compose Specification");
  delete schema.$schema; // draft-07 written with an https:// URI ajv does not know by that name
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addFormat("duration", /^[-+]?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  return ajv.compile(schema);
}

/** The dfs services of the compose file: those whose command is a dfs service command. */
function dfsServices(compose: Json): [string, Json][] {
  return Object.entries<Json>(compose.services).filter(
    ([, s]) => Array.isArray(s.command) && DFS_COMMANDS.has(s.command[0]),
  );
}

/** dfs.yaml loaded with a compose service's environment, its secret files replaced by dummies. */
function configOf(service: Json, dir: string): DfsConfig {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(serviceEnv(service))) {
    if (k.endsWith("_FILE")) {
      const file = join(dir, k);
      writeFileSync(file, "dummy-secret\n");
      env[k] = file;
    } else env[k] = interpolateDefaults(v);
  }
  const mount = (service.volumes as string[]).find((v) => v.endsWith(":/etc/dfs/dfs.yaml:ro"));
  assert.ok(mount, "dfs.yaml is mounted at /etc/dfs/dfs.yaml");
  return loadConfig(join(root, mount.split(":")[0]!), env);
}

function httpPortOf(cfg: DfsConfig, command: string): number {
  if (command === "capture") return cfg.capture.http.port;
  if (command === "dpu") return cfg.dpu.http.port;
  if (command === "relmgr") return cfg.relmgr.http.port;
  return cfg.monitor.http.port;
}

test("docker-compose.yml validates against the Compose Specification schema", () => {
  const validate = composeValidator();
  const compose: Json = parseYaml(read("docker-compose.yml"), { merge: true });
  const ok = validate(compose);
  assert.ok(ok, `docker-compose.yml: ${JSON.stringify(validate.errors, null, 2)}`);

  // ...and the check fails on what Compose would refuse.
  const typo: Json = structuredClone(compose);
  typo.services.capture.environmnet = typo.services.capture.environment;
  assert.equal(validate(typo), false, "an unknown service key is refused");
  const badPort: Json = structuredClone(compose);
  badPort.services.monitor.ports = [{ target: 8080, published: "8080", bogus: true }];
  assert.equal(validate(badPort), false, "an unknown port attribute is refused");
  const badTop: Json = structuredClone(compose);
  badTop.volume = {};
  assert.equal(validate(badTop), false, "an unknown top-level key is refused");
  const badDepends: Json = structuredClone(compose);
  badDepends.services.capture.depends_on.nats.condition = "service_happy";
  assert.equal(validate(badDepends), false, "an unknown depends_on condition is refused");
});

test("the Dockerfile: two stages on Node LTS slim, built in the first, non-root runtime with a HEALTHCHECK", () => {
  const df = parseDockerfile(read("Dockerfile"));
  assert.equal(df.stages.length, 2, "a build stage and a runtime stage");
  const [build, runtime] = df.stages as [(typeof df.stages)[0], (typeof df.stages)[0]];
  for (const s of [build, runtime])
    assert.match(s.from, /^node:(22|24)[.\d]*-[a-z]+-slim$|^node:(22|24)[.\d]*-slim$/);
  assert.equal(build.name, "build");

  const runs = build.instructions.filter((i) => i.cmd === "RUN").map((i) => i.rest);
  const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
  const buildRun = runs.findIndex((r) => /\bnpm run build\b/.test(r));
  const prune = runs.findIndex((r) => /\bnpm prune --omit=dev\b/.test(r));
  assert.ok(
    ci >= 0 && buildRun > ci && prune > buildRun,
    `npm ci, then build, then prune: ${runs.join(" | ")}`,
  );
  const buildEnv = build.instructions.filter((i) => i.cmd === "ENV").map((i) => envPairs(i.rest));
  assert.ok(
    buildEnv.some((e) => e.npm_config_build_from_source === "true"),
    "better-sqlite3 compiled in the build stage",
  );
  assert.ok(
    runs.some((r) => /apt-get install/.test(r) && /\bg\+\+/.test(r) && /python3/.test(r)),
    "the build stage has the toolchain",
  );

  // Every workspace's manifest and the patches are copied before npm ci runs.
  const ciLine = build.instructions.find((i) => i.cmd === "RUN" && /\bnpm ci\b/.test(i.rest))!.line;
  const before = build.instructions
    .filter((i) => i.cmd === "COPY" && i.line < ciLine)
    .flatMap((i) => copyParts(i).sources.map((s) => s.replace(/\/$/, "")));
  const workspaces: string[] = [];
  for (const pattern of JSON.parse(read("package.json")).workspaces as string[]) {
    if (pattern.endsWith("/*")) {
      const dir = pattern.slice(0, -2);
      for (const name of readdirSync(join(root, dir)).sort())
        if (readdirSync(join(root, dir, name)).includes("package.json")) workspaces.push(`${dir}/${name}`);
    } else workspaces.push(pattern);
  }
  for (const w of workspaces)
    assert.ok(before.includes(`${w}/package.json`), `COPY ${w}/package.json before npm ci`);
  for (const f of ["package.json", "package-lock.json", "patches"])
    assert.ok(before.includes(f), `COPY ${f} before npm ci`);

  const last = (cmd: string) => runtime.instructions.filter((i) => i.cmd === cmd).at(-1);
  const user = last("USER")?.rest;
  assert.ok(user && user !== "root" && user !== "0", `runtime USER is not root (${user})`);
  assert.ok(
    !runtime.instructions.some((i) => i.cmd === "RUN" && /apt-get|npm (ci|install)|g\+\+|make/.test(i.rest)),
    "the runtime stage installs nothing: no toolchain, no dev dependencies",
  );
  const copies = runtime.instructions.filter((i) => i.cmd === "COPY").map(copyParts);
  assert.ok(
    copies.length > 0 && copies.every((c) => c.flags.from === "build"),
    "runtime copies from build only",
  );
  assert.deepEqual(last("ENTRYPOINT")?.json, ["node", "/app/packages/cli/bin/dfs.js"]);
  const cmd = last("CMD")?.json ?? [];
  assert.ok(DFS_COMMANDS.has(cmd[0]!), `CMD runs a service: ${cmd.join(" ")}`);
  const health = last("HEALTHCHECK")?.rest ?? "";
  assert.match(health, /CMD \["node", ?"\/app\/deploy\/docker\/healthcheck\.mjs"\]/);
  assert.ok(
    build.instructions.some((i) => i.cmd === "COPY" && copyParts(i).sources.includes("deploy/docker/")),
    "the healthcheck script is in the image",
  );
  for (const i of [...build.instructions, ...runtime.instructions].filter(
    (x) => x.cmd === "ENV" || x.cmd === "ARG",
  ))
    assert.doesNotMatch(i.rest, SECRET_NAME, `no secret in the image: ${i.cmd} ${i.rest}`);
});

test(".dockerignore keeps secrets, local data and build output out of the context, and the Dockerfile's sources in", () => {
  const ignored = dockerignore(read(".dockerignore"));
  for (const p of [
    ".env",
    ".git/config",
    ".stack/source/ibdata1",
    "node_modules/yaml/package.json",
    "packages/cli/node_modules/x/index.js",
    "packages/cli/dist/index.js",
    "services/capture/dist-test/unit/a.test.js",
    "services/capture/test/unit/a.test.ts",
    "data/shop/journal.db",
    "docs/configuration.md",
    "proto/src/gen/dfs/v1/envelope.ts",
  ])
    assert.ok(ignored(p), `${p} is left out`);
  for (const p of [
    "package.json",
    "packages/cli/src/index.ts",
    "services/monitor/public/index.html",
    "patches/x.patch",
  ])
    assert.ok(!ignored(p), `${p} is in the context`);
  const df = parseDockerfile(read("Dockerfile"));
  for (const i of df.stages[0]!.instructions.filter((x) => x.cmd === "COPY"))
    for (const s of copyParts(i).sources)
      assert.ok(!ignored(s.replace(/\/$/, "")), `COPY ${s}: in the context`);
});

test("@vlasky/zongji is pinned to the exact version the patch is for", () => {
  const patches = readdirSync(join(root, "patches")).filter((f) => f.startsWith("@vlasky+zongji+"));
  assert.equal(patches.length, 1, `one zongji patch: ${patches.join(", ")}`);
  const version = /^@vlasky\+zongji\+(.+)\.patch$/.exec(patches[0]!)![1]!;
  const lock = JSON.parse(read("package-lock.json"));
  assert.equal(lock.packages["node_modules/@vlasky/zongji"].version, version);
  let dependents = 0;
  for (const [path, entry] of Object.entries<Json>(lock.packages)) {
    const spec = entry.dependencies?.["@vlasky/zongji"];
    if (spec === undefined || path.includes("node_modules/")) continue;
    dependents++;
    assert.equal(
      spec,
      version,
      `${path || "root"} depends on @vlasky/zongji ${spec}, not exactly ${version}`,
    );
    assert.equal(JSON.parse(read(`${path}/package.json`)).dependencies["@vlasky/zongji"], version);
  }
  assert.ok(dependents >= 1);
});

test("compose: MySQL 8.4 source with ROW/FULL/FULL binlog and GTID, target, NATS JetStream, a load", () => {
  const s = loadCompose().services;
  assert.equal(s["mysql-source"].image, "mysql:8.4");
  assert.equal(s["mysql-target"].image, "mysql:8.4");
  const flags = new Set<string>(s["mysql-source"].command);
  for (const f of [
    "--log-bin=mysql-bin",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
    "--gtid-mode=ON",
    "--enforce-gtid-consistency=ON",
  ])
    assert.ok(flags.has(f), `source ${f}`);
  assert.ok(!flags.has("--server-id=0"));
  assert.ok(s.nats.command.includes("--jetstream"), "NATS with JetStream");
  assert.ok(
    s["mysql-source"].volumes.some((v: string) =>
      v.startsWith("./deploy/compose/source-init:/docker-entrypoint-initdb.d"),
    ),
  );
  assert.match(s.load.entrypoint.join(" "), /load\.sh/);
  assert.ok(s.load.volumes.some((v: string) => v.startsWith("./deploy/compose/load.sh:")));
});

test("compose: no secret in the file; every secret is a file under /run/secrets the service is given", () => {
  const compose = loadCompose();
  const declared = compose.secrets as Record<string, Json>;
  const example = read(".env.example");
  for (const [name, def] of Object.entries(declared)) {
    assert.ok(def.environment || def.file, `secret ${name} comes from .env or a file`);
    if (def.environment)
      assert.match(
        example,
        new RegExp(`^${def.environment}=$`, "m"),
        `.env.example: ${def.environment}= (empty)`,
      );
  }
  for (const [name, svc] of Object.entries<Json>(compose.services)) {
    const given = new Set<string>(
      (svc.secrets ?? []).map((x: Json) => (typeof x === "string" ? x : x.source)),
    );
    for (const [k, v] of Object.entries(serviceEnv(svc))) {
      if (!SECRET_NAME.test(k)) continue;
      assert.match(k, /_FILE$/, `${name}: ${k} is a secret given in clear`);
      const m = /^\/run\/secrets\/([\w-]+)$/.exec(v);
      assert.ok(m, `${name}: ${k}=${v} is not a Docker secret`);
      assert.ok(given.has(m[1]!), `${name}: ${k} names secret ${m[1]} it is not given`);
      assert.ok(declared[m[1]!], `${name}: secret ${m[1]} is not declared`);
    }
  }
  assert.ok(read(".gitignore").split("\n").includes(".env"), ".env is not committed");
});

test("compose: dfs services run the image's commands with dfs.yaml; two DPU groups that are relmgr's groups", () => {
  const compose = loadCompose();
  const dir = mkdtempSync(join(tmpdir(), "dfs-deploy-"));
  try {
    const services = dfsServices(compose);
    const commands = services.map(([, s]) => s.command[0]).sort();
    for (const c of ["capture", "dpu", "monitor", "relmgr"])
      assert.ok(commands.includes(c), `a ${c} service`);
    for (const [name, s] of services) {
      assert.deepEqual(s.command.slice(1), ["-c", "/etc/dfs/dfs.yaml"], `${name}: -c /etc/dfs/dfs.yaml`);
      assert.equal(s.build?.dockerfile, "Dockerfile", `${name}: built from ./Dockerfile`);
    }
    assert.equal(services.filter(([, s]) => s.command[0] === "capture").length, 1, "one capture per source");

    const dpus = services.filter(([, s]) => s.command[0] === "dpu");
    const groups = dpus.map(([name, s]) => {
      const g = serviceEnv(s).DFS_DPU_GROUP;
      assert.ok(g, `${name}: DFS_DPU_GROUP`);
      return g;
    });
    assert.ok(groups.length >= 2, "two DPU groups");
    assert.equal(new Set(groups).size, groups.length, "one service per group");
    const capture = configOf(services.find(([, s]) => s.command[0] === "capture")![1], dir);
    assert.deepEqual(capture.relmgr.groups.map((g) => g.name).sort(), [...groups].sort());
    assert.equal(capture.control.host, "0.0.0.0", "control planes reachable from the monitor's container");
    assert.equal(capture.monitor.http.host, "0.0.0.0", "the monitor reachable through its published port");
    assert.match(capture.capture.journal.path, /^\/var\/lib\/dfs\//, "the journal on the image's volume");

    // Every table of the demo schema belongs to a group, or no DPU would apply it.
    const db = capture.source.include.databases;
    assert.deepEqual(db, ["shop"]);
    const tables = [...read("deploy/compose/source-init/01-schema.sql").matchAll(/CREATE TABLE (\w+)/g)].map(
      (m) => `shop.${m[1]}`,
    );
    assert.ok(tables.length >= 2);
    const grouped = capture.relmgr.groups.flatMap((g) => g.tables);
    for (const t of tables) assert.ok(grouped.includes(t), `${t} is in a relmgr group`);

    // The monitor watches every dfs service at the address and ports the compose network has.
    const monitor = configOf(services.find(([, s]) => s.command[0] === "monitor")![1], dir);
    const watched = monitor.monitor.services.map((w) => `${w.kind} ${w.grpc} ${w.http}`).sort();
    const expected = services
      .filter(([, s]) => s.command[0] !== "monitor")
      .map(([name, s]) => {
        const kind = s.command[0];
        const cfg = configOf(s, dir);
        const grpc =
          kind === "capture"
            ? cfg.capture.grpc.port
            : kind === "dpu"
              ? cfg.dpu.grpc.port
              : cfg.relmgr.grpc.port;
        return `${kind} ${name}:${grpc} http://${name}:${httpPortOf(cfg, kind)}`;
      })
      .sort();
    assert.deepEqual(watched, expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Prometheus scrapes every dfs service's /metrics and loads alerts.yml; Grafana gets the dashboards", () => {
  const compose = loadCompose();
  const prom = compose.services.prometheus;
  assert.ok(prom.volumes.includes("./deploy/prometheus:/etc/prometheus:ro"));
  assert.ok(prom.command.includes("--config.file=/etc/prometheus/prometheus.yml"));
  const config = parseYaml(read("deploy/prometheus/prometheus.yml"));
  assert.ok(config.rule_files.includes("alerts.yml"), "rule_files: alerts.yml (beside prometheus.yml)");
  const targets = new Set<string>(
    config.scrape_configs.flatMap((j: Json) => {
      assert.equal(j.metrics_path ?? "/metrics", "/metrics");
      return j.static_configs.flatMap((s: Json) => s.targets);
    }),
  );
  const dir = mkdtempSync(join(tmpdir(), "dfs-deploy-"));
  try {
    for (const [name, s] of dfsServices(compose)) {
      const port = httpPortOf(configOf(s, dir), s.command[0]);
      assert.ok(targets.has(`${name}:${port}`), `Prometheus scrapes ${name}:${port}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const grafana = compose.services.grafana;
  for (const v of [
    "./deploy/grafana:/var/lib/grafana/dashboards:ro",
    "./deploy/grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro",
    "./deploy/grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro",
  ])
    assert.ok(grafana.volumes.includes(v), `grafana mounts ${v}`);
  const ds = parseYaml(read("deploy/grafana/provisioning/datasources/prometheus.yaml"));
  assert.equal(ds.datasources[0].url, "http://prometheus:9090", "the datasource is the compose service");
});
