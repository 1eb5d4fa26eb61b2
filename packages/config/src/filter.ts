import { parseTableRef, splitQualified } from "@dfs/codec";

/**
 * Include/exclude rules for databases, tables and columns, from the `source.include` and
 * `source.exclude` config. Patterns are globs where `*` matches any run of characters and `?` one
 * character. A table pattern is "db.table" and a column pattern "db.table.column": each part is
 * matched on its own, and a part that holds a "." is written in backticks ("`my.db`.orders").
 */
export interface FilterRules {
  include: { databases: string[]; tables: string[] };
  exclude: { databases: string[]; tables: string[]; columns: string[] };
}

/** Databases that hold the server's own data; never captured. */
export const SYSTEM_DATABASES = new Set(["mysql", "information_schema", "performance_schema", "sys"]);

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "s");
}

function anyMatch(patterns: RegExp[], name: string): boolean {
  for (const p of patterns) if (p.test(name)) return true;
  return false;
}

/** A pattern of `parts` dotted parts, each a glob; a shorter pattern matches the missing parts with `*`. */
function partsOf(pattern: string, parts: number): RegExp[] {
  const split = splitQualified(pattern);
  if (!split || split.length > parts)
    throw new Error(`pattern ${JSON.stringify(pattern)}: quote a part that holds "." with backticks`);
  while (split.length < parts) split.push("*");
  return split.map(globToRegExp);
}

function anyMatchParts(patterns: RegExp[][], names: string[]): boolean {
  for (const p of patterns) if (p.every((re, i) => re.test(names[i]!))) return true;
  return false;
}

export class TableFilter {
  private readonly incDb: RegExp[];
  private readonly incTable: RegExp[][];
  private readonly excDb: RegExp[];
  private readonly excTable: RegExp[][];
  private readonly excColumn: RegExp[][];
  /** The database part of each include.tables pattern ("shop" of "shop.orders*"). */
  private readonly incTableDb: RegExp[];
  /** Decisions are cached: the binlog names the same few tables over and over. */
  private readonly cache = new Map<string, boolean>();

  /** Databases of dataflowsync's own (the snapshot signal table): never captured as data. */
  private readonly internal: Set<string>;

  constructor(rules: FilterRules, internalDatabases: readonly string[] = []) {
    this.internal = new Set(internalDatabases);
    this.incDb = rules.include.databases.map((d) => partsOf(d, 1)[0]!);
    this.incTable = rules.include.tables.map((t) => partsOf(t, 2));
    this.excDb = rules.exclude.databases.map((d) => partsOf(d, 1)[0]!);
    this.excTable = rules.exclude.tables.map((t) => partsOf(t, 2));
    this.excColumn = rules.exclude.columns.map((t) => partsOf(t, 3));
    this.incTableDb = this.incTable.map((p) => p[0]!);
  }

  /** Whether any table of this database can be captured. */
  includesDatabase(db: string): boolean {
    if (SYSTEM_DATABASES.has(db.toLowerCase()) || this.internal.has(db)) return false;
    if (anyMatch(this.excDb, db)) return false;
    if (this.incDb.length === 0 && this.incTable.length === 0) return true;
    return anyMatch(this.incDb, db) || anyMatch(this.incTableDb, db);
  }

  includesTable(db: string, table: string): boolean {
    const key = `${db}\u0000${table}`;
    let ok = this.cache.get(key);
    if (ok === undefined) {
      ok = this.decide(db, table);
      this.cache.set(key, ok);
    }
    return ok;
  }

  private decide(db: string, table: string): boolean {
    if (SYSTEM_DATABASES.has(db.toLowerCase()) || this.internal.has(db)) return false;
    if (anyMatch(this.excDb, db) || anyMatchParts(this.excTable, [db, table])) return false;
    if (this.incDb.length === 0 && this.incTable.length === 0) return true;
    return anyMatch(this.incDb, db) || anyMatchParts(this.incTable, [db, table]);
  }

  /** Whether a column is excluded (it is then left out of every image, never journaled). */
  excludesColumn(db: string, table: string, column: string): boolean {
    return this.excColumn.length > 0 && anyMatchParts(this.excColumn, [db, table, column]);
  }
}

/** The filter of a config: source.include/exclude, with capture's own signal database left out. */
export function captureFilter(cfg: {
  source: { include: FilterRules["include"]; exclude: FilterRules["exclude"] };
  capture: { snapshot: { signalTable: string } };
}): TableFilter {
  const signal = parseTableRef(cfg.capture.snapshot.signalTable);
  return new TableFilter({ include: cfg.source.include, exclude: cfg.source.exclude }, [signal.db]);
}
