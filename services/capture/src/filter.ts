/**
 * Include/exclude rules for databases, tables and columns, from the `source.include` and
 * `source.exclude` config. Patterns are globs where `*` matches any run of characters and `?` one
 * character; everything else is literal (MySQL names may contain dots, so no path semantics).
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

export class TableFilter {
  private readonly incDb: RegExp[];
  private readonly incTable: RegExp[];
  private readonly excDb: RegExp[];
  private readonly excTable: RegExp[];
  private readonly excColumn: RegExp[];
  /** The database part of each include.tables pattern ("shop" of "shop.orders*"). */
  private readonly incTableDb: RegExp[];
  /** Decisions are cached: the binlog names the same few tables over and over. */
  private readonly cache = new Map<string, boolean>();

  /** Databases of dataflowsync's own (the snapshot signal table): never captured as data. */
  private readonly internal: Set<string>;

  constructor(rules: FilterRules, internalDatabases: readonly string[] = []) {
    this.internal = new Set(internalDatabases);
    this.incDb = rules.include.databases.map(globToRegExp);
    this.incTable = rules.include.tables.map(globToRegExp);
    this.excDb = rules.exclude.databases.map(globToRegExp);
    this.excTable = rules.exclude.tables.map(globToRegExp);
    this.excColumn = rules.exclude.columns.map(globToRegExp);
    this.incTableDb = rules.include.tables.map((t) =>
      globToRegExp(t.includes(".") ? t.slice(0, t.indexOf(".")) : t),
    );
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
    const full = `${db}.${table}`;
    if (anyMatch(this.excDb, db) || anyMatch(this.excTable, full)) return false;
    if (this.incDb.length === 0 && this.incTable.length === 0) return true;
    return anyMatch(this.incDb, db) || anyMatch(this.incTable, full);
  }

  /** Whether a column is excluded (it is then left out of every image, never journaled). */
  excludesColumn(db: string, table: string, column: string): boolean {
    return this.excColumn.length > 0 && anyMatch(this.excColumn, `${db}.${table}.${column}`);
  }
}
