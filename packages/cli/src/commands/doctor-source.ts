/**
 * `dfs doctor`'s checks of the source: reachable, the server settings capture needs (binary log,
 * row format and image, row metadata, server id, GTIDs, retention) and the configured user's
 * privileges. Each finding is one row with how to fix it; capture's own start-up check
 * (services/capture/src/checks.ts) refuses to start on the same FAILs.
 */
import { errorMessage, RefusedError, TransientError } from "@dfs/common";
import { captureFilter, type DfsConfig } from "@dfs/config";
import { endpointName, MysqlSession, quoteId } from "@dfs/mysql";
import {
  accountOf,
  type Grants,
  grantStatement,
  hasGlobal,
  hasOnDatabase,
  hasOnSomeTables,
  parseGrants,
} from "./doctor-grants.js";
import { type CheckResult, fail, ok, warn } from "./doctor-report.js";

/** Binlogs kept for less than this are worth a warning: a capture stopped over a weekend loses its place. */
export const SHORT_RETENTION_SECONDS = 3 * 24 * 3600;

const VARIABLES = [
  "version",
  "log_bin",
  "binlog_format",
  "binlog_row_image",
  "binlog_row_metadata",
  "server_id",
  "gtid_mode",
  "enforce_gtid_consistency",
  "gtid_binlog_pos",
  "gtid_strict_mode",
  "binlog_expire_logs_seconds",
  "expire_logs_days",
  "log_bin_compress",
  "binlog_transaction_compression",
] as const;

type Variables = Partial<Record<(typeof VARIABLES)[number], string>>;

/** The server's global variables that the checks read; one that the server lacks is absent. */
async function readVariables(s: MysqlSession): Promise<Variables> {
  const rows = await s.query<{ Variable_name: string; Value: string }[]>(
    `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${VARIABLES.map(() => "?").join(", ")})`,
    VARIABLES,
  );
  return Object.fromEntries(rows.map((r) => [r.Variable_name.toLowerCase(), String(r.Value)])) as Variables;
}

/** What a failed connect to a MySQL server means for the table: unreachable, or refused. */
export function connectFailure(check: string, err: unknown, urlKey: string, envVar: string): CheckResult {
  if (err instanceof TransientError)
    return fail(
      check,
      errorMessage(err),
      `start the server, or fix the host and port in ${urlKey} (${envVar})`,
      "unavailable",
    );
  if (err instanceof RefusedError)
    return fail(check, errorMessage(err), `fix the user name and password in ${urlKey} (${envVar})`);
  return fail(check, errorMessage(err), `fix ${urlKey} (${envVar})`);
}

const on = (v: string | undefined) => v !== undefined && (v === "1" || v.toUpperCase() === "ON");

/** The settings checks, from the server's variables alone (unit-testable). */
export function settingsChecks(v: Variables, cfg: Pick<DfsConfig, "source">): CheckResult[] {
  const out: CheckResult[] = [];
  const mariadb = /mariadb/i.test(v.version ?? "");
  const cnf = "in the server's config file ([mysqld]) and restart";
  out.push(
    on(v.log_bin)
      ? ok("source: log_bin", "ON")
      : fail(
          "source: log_bin",
          `log_bin is ${v.log_bin ?? "absent"}: no binary log to read`,
          `log-bin = mysql-bin ${cnf}`,
        ),
  );
  const format = v.binlog_format?.toUpperCase();
  out.push(
    format === "ROW"
      ? ok("source: binlog_format", "ROW")
      : fail(
          "source: binlog_format",
          `${v.binlog_format ?? "absent"}: capture needs row events`,
          `SET GLOBAL binlog_format = 'ROW', and binlog_format = ROW ${cnf}`,
        ),
  );
  const image = v.binlog_row_image?.toUpperCase();
  out.push(
    image === undefined || image === "FULL"
      ? ok("source: binlog_row_image", v.binlog_row_image ?? "absent (the server logs full rows)")
      : fail(
          "source: binlog_row_image",
          `${v.binlog_row_image}: rows are logged without all their columns`,
          `SET GLOBAL binlog_row_image = 'FULL', and binlog_row_image = FULL ${cnf}`,
        ),
  );
  if (v.binlog_row_metadata === undefined)
    out.push(
      warn(
        "source: binlog_row_metadata",
        "the server has no binlog_row_metadata (before MySQL 8.0 / MariaDB 10.5): column names come from information_schema, so rows read after an ALTER may decode with the newer columns",
        "upgrade the server to MySQL 8 or MariaDB 10.5 or later",
      ),
    );
  else
    out.push(
      v.binlog_row_metadata.toUpperCase() === "FULL"
        ? ok("source: binlog_row_metadata", "FULL")
        : fail(
            "source: binlog_row_metadata",
            `${v.binlog_row_metadata}: rows do not carry their column names and types`,
            `SET GLOBAL binlog_row_metadata = 'FULL', and binlog_row_metadata = FULL ${cnf}`,
          ),
    );
  const serverId = Number(v.server_id ?? "0");
  if (serverId === 0)
    out.push(
      fail(
        "source: server_id",
        "0: a server without a server id refuses replicas",
        `server-id = 1 (any unique number) ${cnf}`,
      ),
    );
  else if (serverId === cfg.source.serverId)
    out.push(
      fail(
        "source: server_id",
        `the source's server_id ${serverId} equals source.serverId, the id capture connects with`,
        "set source.serverId (DFS_SOURCE_SERVER_ID) to a number no server or replica of this source uses",
      ),
    );
  else out.push(ok("source: server_id", `${serverId}; capture connects as replica ${cfg.source.serverId}`));
  out.push(gtidCheck(v, mariadb));
  out.push(retentionCheck(v));
  // Compressed events are ones capture cannot decode (it refuses to start on them).
  for (const name of ["log_bin_compress", "binlog_transaction_compression"] as const) {
    const value = v[name];
    if (value === undefined) continue;
    out.push(
      value === "1" || value.toUpperCase() === "ON"
        ? fail(
            `source: ${name}`,
            "ON: the binlog holds compressed events capture cannot decode",
            `SET GLOBAL ${name} = OFF, and ${name} = OFF ${cnf}`,
          )
        : ok(`source: ${name}`, "OFF"),
    );
  }
  return out;
}

function gtidCheck(v: Variables, mariadb: boolean): CheckResult {
  if (mariadb)
    return ok(
      "source: GTID",
      `MariaDB GTIDs, always on (gtid_binlog_pos ${v.gtid_binlog_pos || "empty"}, gtid_strict_mode ${v.gtid_strict_mode ?? "?"})`,
    );
  if (v.gtid_mode === undefined)
    return ok("source: GTID", "this server has no GTIDs; positions are file:position");
  if (v.gtid_mode.toUpperCase() === "ON") return ok("source: GTID", `gtid_mode ON`);
  return warn(
    "source: GTID",
    `gtid_mode ${v.gtid_mode}: positions are file:position only, which do not survive a failover to another server`,
    "gtid_mode = ON and enforce_gtid_consistency = ON in the server's config (MySQL's online procedure steps through OFF_PERMISSIVE and ON_PERMISSIVE)",
  );
}

function retentionCheck(v: Variables): CheckResult {
  const seconds = Number(v.binlog_expire_logs_seconds ?? "0");
  const days = Number(v.expire_logs_days ?? "0");
  const kept = seconds > 0 ? seconds : days * 86400;
  const fix = `SET GLOBAL binlog_expire_logs_seconds = ${7 * 86400} (7 days), and the same in the server's config`;
  if (!Number.isFinite(kept) || kept <= 0)
    return ok("source: binlog retention", "binlogs are never purged automatically (watch the disk)");
  const text = kept % 86400 === 0 ? `${kept / 86400} day(s)` : `${(kept / 3600).toFixed(1)} hour(s)`;
  if (kept < SHORT_RETENTION_SECONDS)
    return warn(
      "source: binlog retention",
      `binlogs are kept ${text}: a capture stopped longer than that loses its position and needs a new snapshot`,
      fix,
    );
  return ok("source: binlog retention", `binlogs are kept ${text}`);
}

/** The databases the config captures that this server has (as far as the user sees), plus literal includes. */
async function includedDatabases(s: MysqlSession, cfg: DfsConfig): Promise<string[]> {
  const filter = captureFilter(cfg);
  const rows = await s.query<{ name: string }[]>(
    "SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
  );
  const names = new Set(rows.map((r) => r.name));
  for (const d of cfg.source.include.databases) if (!/[*?]/.test(d)) names.add(d);
  return [...names].filter((d) => filter.includesDatabase(d)).sort();
}

/** The privilege checks, from the user's grants (unit-testable). */
export function privilegeChecks(
  g: Grants,
  o: { account: string; mariadb: boolean; databases: readonly string[]; everything: boolean },
): CheckResult[] {
  const out: CheckResult[] = [];
  const roleNote =
    g.roles.length > 0 ? ` (roles granted: ${g.roles.join(", ")}; their privileges are not counted)` : "";
  out.push(
    hasGlobal(g, "REPLICATION SLAVE")
      ? ok("source: REPLICATION SLAVE", "granted on *.*")
      : fail(
          "source: REPLICATION SLAVE",
          `the source user ${o.account} lacks REPLICATION SLAVE: it cannot read the binlog${roleNote}`,
          `${grantStatement(["REPLICATION SLAVE"], o.account)}`,
        ),
  );
  const client = o.mariadb ? "BINLOG MONITOR" : "REPLICATION CLIENT";
  out.push(
    hasGlobal(g, client)
      ? ok(`source: ${client}`, "granted on *.*")
      : fail(
          `source: ${client}`,
          `the source user ${o.account} lacks ${client}: it cannot list binlogs or read the position${roleNote}`,
          grantStatement([client], o.account),
        ),
  );
  if (hasGlobal(g, "SELECT")) {
    out.push(ok("source: SELECT", "granted on *.* (every included database)"));
    return out;
  }
  const missing = o.databases.filter((d) => !hasOnDatabase(g, "SELECT", d));
  if (o.databases.length === 0)
    out.push(
      o.everything
        ? fail(
            "source: SELECT",
            `the source user ${o.account} has no SELECT on *.* and sees no database to capture${roleNote}`,
            grantStatement(["SELECT"], o.account),
          )
        : warn(
            "source: SELECT",
            "no included database exists on the source yet",
            "check source.include.databases",
          ),
    );
  else if (missing.length > 0) {
    const partial = missing.filter((d) => hasOnSomeTables(g, "SELECT", d));
    out.push(
      fail(
        "source: SELECT",
        `the source user ${o.account} lacks SELECT on ${missing.map(quoteId).join(", ")} (snapshots and table metadata need it)${partial.length > 0 ? `; only some tables of ${partial.map(quoteId).join(", ")}` : ""}${roleNote}`,
        missing.map((d) => grantStatement(["SELECT"], o.account, d)).join("; "),
      ),
    );
  } else if (o.everything)
    out.push(
      warn(
        "source: SELECT",
        `granted on ${o.databases.map(quoteId).join(", ")}, not on *.*: databases created later cannot be snapshotted`,
        grantStatement(["SELECT"], o.account),
      ),
    );
  else out.push(ok("source: SELECT", `granted on ${o.databases.map(quoteId).join(", ")}`));
  return out;
}

export interface SourceFindings {
  results: CheckResult[];
  /** The included databases (null when the source could not be read). */
  databases: string[] | null;
}

/** Every check of the source, in the table's order. */
export async function checkSource(cfg: DfsConfig): Promise<SourceFindings> {
  const check = "source: reachable";
  let s: MysqlSession;
  try {
    s = await MysqlSession.open(cfg.source.endpoint, { role: "source", connectTimeoutMs: 5000 });
  } catch (err) {
    return { results: [connectFailure(check, err, "source.url", "DFS_SOURCE_URL")], databases: null };
  }
  try {
    const v = await readVariables(s);
    const [who] = await s.query<{ u: string }[]>("SELECT CURRENT_USER() AS u");
    const account = accountOf(String(who?.u ?? cfg.source.endpoint.user));
    const results = [ok(check, `${v.version ?? "?"} at ${endpointName(cfg.source.endpoint)} as ${account}`)];
    results.push(...settingsChecks(v, cfg));
    const grantRows = await s.query<Record<string, string>[]>("SHOW GRANTS FOR CURRENT_USER()");
    const grants = parseGrants(grantRows.map((r) => String(Object.values(r)[0] ?? "")));
    const databases = await includedDatabases(s, cfg);
    const everything = cfg.source.include.databases.length === 0 && cfg.source.include.tables.length === 0;
    const mariadb = /mariadb/i.test(v.version ?? "");
    results.push(...privilegeChecks(grants, { account, mariadb, databases, everything }));
    return { results, databases };
  } finally {
    await s.close();
  }
}
