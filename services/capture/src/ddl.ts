/**
 * Recognises schema-changing statements in binlog Query events and names the tables they touch,
 * so that DDL is filtered like rows and consumers know which tables to re-describe.
 * Not a SQL parser: it reads the statement's head, which is all the binlog form needs.
 */
export interface DdlInfo {
  kind:
    | "create_table"
    | "alter_table"
    | "drop_table"
    | "rename_table"
    | "truncate_table"
    | "create_database"
    | "drop_database"
    | "alter_database"
    | "other_ddl";
  /** Tables as [db, table]; db defaults to the statement's session database. */
  tables: [string, string][];
  databases: string[];
}

const IDENT = String.raw`(?:\x60(?:[^\x60]|\x60\x60)+\x60|[A-Za-z0-9_$\u0080-\uFFFF]+)`;
const QUALIFIED = String.raw`${IDENT}(?:\s*\.\s*${IDENT})?`;

function unquote(id: string): string {
  const t = id.trim();
  return t.startsWith("`") ? t.slice(1, -1).replace(/``/g, "`") : t;
}

function splitQualified(name: string, defaultDb: string): [string, string] {
  const m = new RegExp(String.raw`^(${IDENT})\s*\.\s*(${IDENT})$`).exec(name.trim());
  if (m) return [unquote(m[1]!), unquote(m[2]!)];
  return [defaultDb, unquote(name)];
}

/** Strips leading comments (/* ... *\/ and -- ...), which the binlog keeps. */
function stripLeadingComments(sql: string): string {
  let s = sql.trimStart();
  for (;;) {
    if (s.startsWith("/*") && !s.startsWith("/*!")) {
      const end = s.indexOf("*/");
      if (end < 0) return "";
      s = s.slice(end + 2).trimStart();
    } else if (s.startsWith("--") || s.startsWith("#")) {
      const nl = s.indexOf("\n");
      if (nl < 0) return "";
      s = s.slice(nl + 1).trimStart();
    } else {
      return s;
    }
  }
}

const RULES: { re: RegExp; kind: DdlInfo["kind"]; list?: boolean; rename?: boolean; database?: boolean }[] = [
  {
    re: new RegExp(
      String.raw`^CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(${QUALIFIED})`,
      "i",
    ),
    kind: "create_table",
  },
  {
    re: new RegExp(
      String.raw`^ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(${QUALIFIED})`,
      "i",
    ),
    kind: "alter_table",
  },
  {
    re: new RegExp(
      String.raw`^DROP\s+(?:TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?((?:${QUALIFIED})(?:\s*,\s*${QUALIFIED})*)`,
      "i",
    ),
    kind: "drop_table",
    list: true,
  },
  { re: /^RENAME\s+TABLES?\s+(.+)$/is, kind: "rename_table", rename: true },
  { re: new RegExp(String.raw`^TRUNCATE\s+(?:TABLE\s+)?(${QUALIFIED})`, "i"), kind: "truncate_table" },
  {
    re: new RegExp(
      String.raw`^CREATE\s+(?:OR\s+REPLACE\s+)?(?:DATABASE|SCHEMA)\s+(?:IF\s+NOT\s+EXISTS\s+)?(${IDENT})`,
      "i",
    ),
    kind: "create_database",
    database: true,
  },
  {
    re: new RegExp(String.raw`^DROP\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+EXISTS\s+)?(${IDENT})`, "i"),
    kind: "drop_database",
    database: true,
  },
  {
    re: new RegExp(String.raw`^ALTER\s+(?:DATABASE|SCHEMA)\s+(${IDENT})`, "i"),
    kind: "alter_database",
    database: true,
  },
];

const OTHER_DDL =
  /^(?:CREATE|ALTER|DROP)\s+(?:(?:OR\s+REPLACE|DEFINER\s*=\s*\S+|SQL\s+SECURITY\s+\w+|ALGORITHM\s*=\s*\w+|UNIQUE|FULLTEXT|SPATIAL|ONLINE|OFFLINE)\s+)*(?:INDEX|VIEW|TRIGGER|PROCEDURE|FUNCTION|EVENT|SEQUENCE)\b/i;

/** The DDL described by a Query event's statement, or null when it is not DDL. */
export function parseDdl(statement: string, sessionDb: string): DdlInfo | null {
  const sql = stripLeadingComments(statement);
  for (const rule of RULES) {
    const m = rule.re.exec(sql);
    if (!m) continue;
    if (rule.database) return { kind: rule.kind, tables: [], databases: [unquote(m[1]!)] };
    if (rule.rename) {
      // Pairs "a TO b", matched as identifiers so that commas inside `quoted names` are kept.
      const pair = new RegExp(String.raw`(${QUALIFIED})\s+TO\s+(${QUALIFIED})`, "gi");
      const tables = [...m[1]!.matchAll(pair)].flatMap((p) => [
        splitQualified(p[1]!, sessionDb),
        splitQualified(p[2]!, sessionDb),
      ]);
      return { kind: rule.kind, tables, databases: [...new Set(tables.map((t) => t[0]))] };
    }
    const names = rule.list ? [...m[1]!.matchAll(new RegExp(QUALIFIED, "g"))].map((x) => x[0]) : [m[1]!];
    const tables = names.map((n) => splitQualified(n, sessionDb));
    return { kind: rule.kind, tables, databases: [...new Set(tables.map((t) => t[0]))] };
  }
  if (OTHER_DDL.test(sql)) return { kind: "other_ddl", tables: [], databases: sessionDb ? [sessionDb] : [] };
  return null;
}
