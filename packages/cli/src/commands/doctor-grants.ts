/**
 * The privileges a user holds, read from SHOW GRANTS FOR CURRENT_USER(): for `dfs doctor`, which
 * tells which privilege is missing on what, and the GRANT that adds it. Grant lines are parsed, never
 * printed (MariaDB's hold the password hash).
 */
import { quoteId, sqlLiteral } from "@dfs/mysql";

export type GrantScope =
  | { kind: "global" }
  /** A database-level grant; its name is a LIKE pattern (`_` and `%` wildcards, `\` escapes). */
  | { kind: "database"; pattern: RegExp }
  | { kind: "table"; db: string; table: string }
  /** PROXY, routines, ...: not what the checks look at. */
  | { kind: "other" };

export interface Grant {
  privileges: Set<string>;
  scope: GrantScope;
}

export interface Grants {
  grants: Grant[];
  /** Roles granted to the user (their privileges are not in these lines: see `roles` in the doctor). */
  roles: string[];
}

/** An identifier as SHOW GRANTS writes it: `name` (backticks doubled inside) or a bare name. */
const IDENT = "(?:`(?:[^`]|``)*`|[A-Za-z0-9_$]+|\\*)";
const SCOPE = new RegExp(`^(${IDENT})\\.(${IDENT})$`);
/** GRANT <privileges> ON [TABLE|FUNCTION|PROCEDURE] <scope> TO ...; the scope may hold quoted spaces. */
const GRANT_ON = new RegExp(
  `^GRANT\\s+(.+?)\\s+ON\\s+(?:(TABLE|FUNCTION|PROCEDURE)\\s+)?(${IDENT}\\.${IDENT}|\\S+)\\s+TO\\s`,
  "is",
);

function unquote(id: string): string {
  return id.startsWith("`") ? id.slice(1, -1).replace(/``/g, "`") : id;
}

/** A database-grant name as a regular expression: `_` any character, `%` any run, `\x` literal x. */
export function likePattern(name: string): RegExp {
  let body = "";
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === "\\" && i + 1 < name.length) body += name[++i]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    else if (c === "%") body += ".*";
    else if (c === "_") body += ".";
    else body += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${body}$`, "s");
}

/** Splits "SELECT, INSERT (a, b), UPDATE" at the commas outside parentheses. */
function splitPrivileges(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const c of list) {
    if (c === "(") depth++;
    if (c === ")") depth--;
    if (c === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  // Column privileges ("SELECT (a, b)") count as the privilege on part of the table.
  return out
    .map((p) =>
      p
        .replace(/\(.*\)/s, "")
        .trim()
        .replace(/\s+/g, " ")
        .toUpperCase(),
    )
    .filter(Boolean);
}

function parseScope(on: string): GrantScope {
  const m = SCOPE.exec(on.trim());
  if (!m) return { kind: "other" };
  const [db, table] = [m[1]!, m[2]!];
  if (db === "*" && table === "*") return { kind: "global" };
  if (db === "*") return { kind: "other" };
  if (table === "*") return { kind: "database", pattern: likePattern(unquote(db)) };
  return { kind: "table", db: unquote(db), table: unquote(table) };
}

/** The grants of SHOW GRANTS lines (MySQL 5.7/8, MariaDB). */
export function parseGrants(lines: readonly string[]): Grants {
  const grants: Grant[] = [];
  const roles: string[] = [];
  for (const line of lines) {
    const priv = GRANT_ON.exec(line);
    if (priv) {
      const routine = priv[2] !== undefined && priv[2].toUpperCase() !== "TABLE";
      grants.push({
        privileges: new Set(splitPrivileges(priv[1]!)),
        scope: routine ? { kind: "other" } : parseScope(priv[3]!),
      });
      continue;
    }
    const role = /^GRANT\s+(.+?)\s+TO\s/is.exec(line);
    if (role) roles.push(...role[1]!.split(",").map((r) => r.trim()));
  }
  return { grants, roles };
}

/** Privileges that also grant `name` (aliases and renames across MySQL and MariaDB versions). */
const IMPLIED_BY: Record<string, readonly string[]> = {
  "REPLICATION SLAVE": ["REPLICATION REPLICA"],
  // MariaDB 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR; before that SUPER covered it.
  "REPLICATION CLIENT": ["BINLOG MONITOR", "SUPER"],
  "BINLOG MONITOR": ["REPLICATION CLIENT", "SUPER"],
};

function grantsPrivilege(g: Grant, name: string): boolean {
  if (g.privileges.has("ALL PRIVILEGES") || g.privileges.has("ALL") || g.privileges.has(name)) return true;
  return (IMPLIED_BY[name] ?? []).some((p) => g.privileges.has(p));
}

/** Whether the user holds `name` on *.* (global). */
export function hasGlobal(g: Grants, name: string): boolean {
  return g.grants.some((x) => x.scope.kind === "global" && grantsPrivilege(x, name));
}

/** Whether the user holds `name` on every table of database `db` (a global or a database grant). */
export function hasOnDatabase(g: Grants, name: string, db: string): boolean {
  return g.grants.some(
    (x) =>
      grantsPrivilege(x, name) &&
      (x.scope.kind === "global" || (x.scope.kind === "database" && x.scope.pattern.test(db))),
  );
}

/** Whether some table of `db` (not all of it) has `name` granted: a partial grant, worth naming. */
export function hasOnSomeTables(g: Grants, name: string, db: string): boolean {
  return g.grants.some((x) => x.scope.kind === "table" && x.scope.db === db && grantsPrivilege(x, name));
}

/** `'user'@'host'` of CURRENT_USER() ("repl@%"), as GRANT statements name it. */
export function accountOf(currentUser: string): string {
  const at = currentUser.lastIndexOf("@");
  const user = at < 0 ? currentUser : currentUser.slice(0, at);
  const host = at < 0 ? "%" : currentUser.slice(at + 1);
  return `${sqlLiteral(user)}@${sqlLiteral(host)}`;
}

/** `GRANT <privileges> ON <db>.* TO <account>`, or ON *.* without a database. */
export function grantStatement(privileges: readonly string[], account: string, db?: string): string {
  return `GRANT ${privileges.join(", ")} ON ${db === undefined ? "*.*" : `${quoteId(db)}.*`} TO ${account}`;
}
