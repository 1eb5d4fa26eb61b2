/**
 * `dfs doctor`'s checks of the target: reachable, accepting writes (not read-only), the configured
 * user's privileges on the databases the DPU writes (and on its own meta database), and, for the
 * pipeline use, that the mappings compile against both servers' schemas.
 */
import { accessSync, constants, existsSync, readdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { errorMessage, TransientError } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { endpointName, MysqlSession, quoteId } from "@dfs/mysql";
import {
  accountOf,
  type Grants,
  grantStatement,
  hasGlobal,
  hasOnDatabase,
  parseGrants,
} from "./doctor-grants.js";
import { type CheckResult, fail, ok, warn } from "./doctor-report.js";
import { connectFailure } from "./doctor-source.js";

/** Writing rows needs these everywhere the DPU writes; the meta database also CREATE (its tables). */
const DML = ["SELECT", "INSERT", "UPDATE", "DELETE"] as const;
/** The sync use replays the source's DDL: CREATE is needed (databases and tables), the rest when it happens. */
const DDL_NEEDED = ["CREATE"] as const;
const DDL_LATER = ["ALTER", "DROP", "INDEX"] as const;

/** The target databases the DPU writes: the pipeline's mapped tables', or the sync use's. */
export function targetDatabases(cfg: DfsConfig, sourceDatabases: readonly string[] | null): string[] | null {
  if (cfg.pipeline)
    return [...new Set(cfg.pipeline.mappings.map((m) => m.target.slice(0, m.target.indexOf("."))))].sort();
  if (cfg.target?.database) return [cfg.target.database];
  return sourceDatabases ? [...sourceDatabases] : null;
}

/** The privilege checks of the target, from the user's grants (unit-testable). */
export function targetPrivilegeChecks(
  g: Grants,
  o: {
    account: string;
    databases: readonly string[] | null;
    /** The sync use of every source database into the same names: any database may come. */
    anyDatabase: boolean;
    metaDatabase: string;
    pipeline: boolean;
  },
): CheckResult[] {
  const out: CheckResult[] = [];
  const lacking = (privs: readonly string[], db: string) => privs.filter((p) => !hasOnDatabase(g, p, db));
  const needed = o.pipeline ? [...DML] : [...DML, ...DDL_NEEDED];
  const global = needed.filter((p) => !hasGlobal(g, p)).length === 0;
  if (o.anyDatabase && global)
    out.push(
      ok("target: privileges", `${needed.join(", ")} on *.* (every database the source has or creates)`),
    );
  else if (o.databases === null)
    out.push(
      warn(
        "target: privileges",
        "the source's databases could not be listed, so neither could the target's",
        "fix the source first",
      ),
    );
  else if (o.databases.length === 0)
    out.push(
      warn(
        "target: privileges",
        `no database to write yet, and the target user ${o.account} lacks ${needed.join(", ")} on *.* for those the source creates`,
        grantStatement(needed, o.account),
      ),
    );
  else {
    const missing = o.databases
      .map((db) => ({ db, privs: lacking(needed, db) }))
      .filter((m) => m.privs.length > 0);
    out.push(
      missing.length > 0
        ? fail(
            "target: privileges",
            `the target user ${o.account} lacks ${missing.map((m) => `${m.privs.join(", ")} on ${quoteId(m.db)}`).join("; ")}`,
            missing.map((m) => grantStatement(m.privs, o.account, m.db)).join("; "),
          )
        : o.anyDatabase
          ? warn(
              "target: privileges",
              `${needed.join(", ")} on ${o.databases.map(quoteId).join(", ")}, not on *.*: databases the source creates later would be refused`,
              grantStatement(needed, o.account),
            )
          : ok("target: privileges", `${needed.join(", ")} on ${o.databases.map(quoteId).join(", ")}`),
    );
  }
  if (!o.pipeline) {
    // "*.*" stands for every database when any may come; else the databases listed.
    const scopes = o.anyDatabase ? [undefined] : (o.databases ?? []);
    const later = scopes
      .map((db) => ({
        db,
        privs: DDL_LATER.filter((p) => (db ? !hasOnDatabase(g, p, db) : !hasGlobal(g, p))),
      }))
      .filter((m) => m.privs.length > 0);
    if (later.length > 0)
      out.push(
        warn(
          "target: DDL privileges",
          `the target user ${o.account} lacks ${later.map((m) => `${m.privs.join(", ")} on ${m.db ? quoteId(m.db) : "*.*"}`).join("; ")}: the source's ALTER, DROP and CREATE INDEX would be refused`,
          later.map((m) => grantStatement(m.privs, o.account, m.db)).join("; "),
        ),
      );
  }
  const meta = lacking([...DML, "CREATE"], o.metaDatabase);
  out.push(
    meta.length === 0
      ? ok(
          "target: meta database",
          `${quoteId(o.metaDatabase)} (checkpoints${o.pipeline ? ", key maps" : ""}) writable`,
        )
      : fail(
          "target: meta database",
          `the target user ${o.account} lacks ${meta.join(", ")} on ${quoteId(o.metaDatabase)}, where the DPU keeps its checkpoint`,
          grantStatement(meta, o.account, o.metaDatabase),
        ),
  );
  return out;
}

export async function checkTarget(
  cfg: DfsConfig,
  sourceDatabases: readonly string[] | null,
): Promise<CheckResult[]> {
  const target = cfg.target;
  if (!target)
    return cfg.archive ? [checkArchive(cfg.archive.dir)] : [ok("target", "none configured: capture only")];
  let s: MysqlSession;
  try {
    s = await MysqlSession.open(target.endpoint, { role: "target", connectTimeoutMs: 5000 });
  } catch (err) {
    return [connectFailure("target: reachable", err, "target.url", "DFS_TARGET_URL")];
  }
  const out: CheckResult[] = [];
  try {
    const [row] = await s.query<{ v: string; u: string }[]>("SELECT VERSION() AS v, CURRENT_USER() AS u");
    const account = accountOf(String(row?.u ?? target.endpoint.user));
    out.push(ok("target: reachable", `${row?.v ?? "?"} at ${endpointName(target.endpoint)} as ${account}`));
    const vars = await s.query<{ Variable_name: string; Value: string }[]>(
      "SHOW GLOBAL VARIABLES WHERE Variable_name IN (?, ?)",
      ["read_only", "super_read_only"],
    );
    const readOnly = vars.filter((r) => r.Value === "1" || String(r.Value).toUpperCase() === "ON");
    out.push(
      readOnly.length === 0
        ? ok("target: writable", "read_only OFF")
        : fail(
            "target: writable",
            `the target is read-only (${readOnly.map((r) => r.Variable_name).join(", ")} ON): every write is refused`,
            `SET GLOBAL ${readOnly.map((r) => `${r.Variable_name} = OFF`).join(", ")}, or point target.url at the primary`,
          ),
    );
    const grantRows = await s.query<Record<string, string>[]>("SHOW GRANTS FOR CURRENT_USER()");
    const grants = parseGrants(grantRows.map((r) => String(Object.values(r)[0] ?? "")));
    out.push(
      ...targetPrivilegeChecks(grants, {
        account,
        databases: targetDatabases(cfg, sourceDatabases),
        metaDatabase: cfg.dpu.metaDatabase,
        pipeline: Boolean(cfg.pipeline),
        anyDatabase:
          !cfg.pipeline &&
          !target.database &&
          cfg.source.include.databases.length === 0 &&
          cfg.source.include.tables.length === 0,
      }),
    );
  } finally {
    await s.close();
  }
  if (cfg.pipeline) out.push(...(await mappingCheck(cfg, sourceDatabases !== null)));
  return out;
}

/** The pipeline's mappings compiled against both servers, as the DPU does at start-up: a row per problem. */
async function mappingCheck(cfg: DfsConfig, sourceReadable: boolean): Promise<CheckResult[]> {
  const check = "pipeline: mappings";
  if (!sourceReadable)
    return [warn(check, "not checked: the source could not be read", "fix the source first")];
  const { checkMappings } = await import("@dfs/dpu");
  try {
    const problems = await checkMappings(cfg);
    const n = cfg.pipeline!.mappings.length;
    if (problems.length === 0)
      return [ok(check, `${n} mapping(s) compile against the source's and target's tables`)];
    const fix = "fix the pipeline section (docs/pipeline.md), or create the table or column named";
    return problems.map((p) => fail(check, p, fix));
  } catch (err) {
    return [
      fail(
        check,
        errorMessage(err),
        "fix what the detail names",
        err instanceof TransientError ? "unavailable" : "config",
      ),
    ];
  }
}

/** The backup use: the archive's folder (or, before it exists, the folder it will be made in) is writable. */
function checkArchive(dir: string): CheckResult {
  let at = resolve(dir);
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    accessSync(at, constants.W_OK);
    const files = at === resolve(dir) ? readdirSync(at).filter((f) => f.endsWith(".sqlite")).length : 0;
    return ok("archive", `no target (backup use): the DPU archives into ${dir} (${files} file(s) so far)`);
  } catch (err) {
    return fail("archive", `${at}: ${errorMessage(err)}`, "make archive.dir a writable folder");
  }
}
