/**
 * The key map of targets that generate their own keys: (target table, source table, source key)
 * -> target key, in the target's `_dfs_keymap`, written in the same transaction as the row it
 * maps. Entries a transaction adds or removes stay in its overlay until it commits; committed
 * entries are cached (this DPU is the only writer of its tables' entries).
 */
import { formatTableRef, type TableRef } from "@dfs/codec";
import { type MysqlSession, quoteId, sqlLiteral } from "@dfs/mysql";
import type { Statement } from "../plan.js";

/** Committed entries kept in memory; the oldest are dropped past this. */
const CACHE_ENTRIES = 200_000;
/** Keys per look-up (one SELECT of a UNION). */
const LOOKUP_CHUNK = 500;
/** Most text of one look-up query (its SELECTs joined by UNION ALL). */
const LOOKUP_QUERY_BYTES = 1 << 20;

/** The (target table, source table) pairs entry ids name, by number: ids stay short to hash and keep. */
const pairs: { target: string; source: string }[] = [];
const prefixes = new WeakMap<TableRef, WeakMap<TableRef, string>>();

/**
 * Entry id: `k<pair number>` NUL source key. The pair's part is made once per pair of tables; a
 * short id is cheap to hash in the planner's maps and small in the cache.
 */
export function entryId(target: TableRef, source: TableRef, key: string): string {
  let bySource = prefixes.get(target);
  if (!bySource) {
    bySource = new WeakMap();
    prefixes.set(target, bySource);
  }
  let prefix = bySource.get(source);
  if (prefix === undefined) {
    const t = formatTableRef(target);
    const src = formatTableRef(source);
    let n = pairs.findIndex((p) => p.target === t && p.source === src);
    if (n < 0) n = pairs.push({ target: t, source: src }) - 1;
    prefix = `k${n}\u0000`;
    bySource.set(source, prefix);
  }
  return prefix + key;
}

/** The tables an entry id's pair part (`k<n>`) names. */
function pairOf(part: string): { target: string; source: string } {
  const p = pairs[Number(part.slice(1))];
  if (!p) throw new Error(`unknown key-map pair ${part}`);
  return p;
}

export class KeyMap {
  /** Committed entries (null: known to have none). */
  private readonly cache = new Map<string, string | null>();
  /** The open transaction's changes. */
  private overlay = new Map<string, string | null>();

  constructor(private readonly metaDatabase: string) {}

  get table(): string {
    return `${quoteId(this.metaDatabase)}.\`_dfs_keymap\``;
  }

  createStatement(): string {
    // Binary columns: the key is compared byte for byte, and the index stays under InnoDB's limit.
    return `CREATE TABLE IF NOT EXISTS ${this.table} (target_table VARBINARY(256) NOT NULL, source_table VARBINARY(256) NOT NULL, source_key VARBINARY(2048) NOT NULL, target_key VARBINARY(255) NOT NULL, PRIMARY KEY (target_table, source_table, source_key))`;
  }

  /** The target key of an entry as this transaction sees it: string, null (none), undefined (not known yet). */
  get(id: string): string | null | undefined {
    const o = this.overlay.get(id);
    if (o !== undefined) return o;
    return this.cache.get(id);
  }

  /** Loads the entries `ids` this DPU does not know yet, in as few queries as it can. */
  async load(s: MysqlSession, ids: Iterable<string>, force = false): Promise<void> {
    const missing = [...new Set(ids)].filter((id) => force || this.get(id) === undefined);
    if (missing.length === 0) return;
    // Per (target table, source table): both equal and `source_key IN (...)`, read through the
    // primary key (a row-constructor IN, or the by_target index, would scan the table's entries).
    // Every pair's look-ups go in one query (a UNION ALL), up to LOOKUP_QUERY_BYTES of text each:
    // one round trip per group, whatever the number of generated-key tables it touches.
    const parts: { sql: string; pair: string; keys: string[] }[] = [];
    for (const [pair, keys] of byTables(missing))
      for (let at = 0; at < keys.length; at += LOOKUP_CHUNK) {
        const chunk = keys.slice(at, at + LOOKUP_CHUNK);
        const { target: t, source: src } = pairOf(pair);
        parts.push({
          pair,
          keys: chunk,
          sql: `(SELECT ${sqlLiteral(pair)} AS p, source_key AS k, target_key AS v FROM ${this.table} FORCE INDEX (PRIMARY) WHERE target_table = ${sqlLiteral(t)} AND source_table = ${sqlLiteral(src)} AND source_key IN (${chunk.map((k) => sqlLiteral(k)).join(",")})${force ? " LOCK IN SHARE MODE" : ""})`,
        });
      }
    for (let at = 0; at < parts.length; ) {
      let end = at + 1;
      let bytes = parts[at]!.sql.length;
      while (end < parts.length && bytes + parts[end]!.sql.length <= LOOKUP_QUERY_BYTES)
        bytes += parts[end++]!.sql.length;
      const batch = parts.slice(at, end);
      at = end;
      const rows = await s.query<{ p: Buffer | string; k: Buffer; v: Buffer }[]>(
        batch.map((b) => b.sql).join(" UNION ALL "),
      );
      const found = new Map(rows.map((r) => [`${r.p.toString()}\u0000${r.k.toString()}`, r.v.toString()]));
      for (const b of batch)
        for (const k of b.keys) {
          const id = `${b.pair}\u0000${k}`;
          if (this.overlay.has(id)) continue;
          this.remember(id, found.get(id) ?? null);
        }
    }
  }

  /** Records a new entry in the open transaction. */
  put(id: string, targetKey: string): void {
    this.overlay.set(id, targetKey);
  }

  remove(id: string): void {
    this.overlay.set(id, null);
  }

  /** Statements that bring the entries `touched` to their final state (a target key, or none). */
  statements(touched: ReadonlyMap<string, string | null>): Statement[] {
    const puts: { id: string; key: string }[] = [];
    const removes: string[] = [];
    for (const [id, key] of touched) {
      if (key === null) removes.push(id);
      else puts.push({ id, key });
    }
    const out: Statement[] = [];
    for (const [pair, keys] of byTables(removes)) {
      const { target: t, source: src } = pairOf(pair);
      const head = `DELETE FROM ${this.table} WHERE target_table = ${sqlLiteral(t)} AND source_table = ${sqlLiteral(src)} AND source_key IN `;
      out.push({
        sql: `${head}(${keys.map((k) => sqlLiteral(k)).join(",")})`,
        text: `DELETE FROM ${this.table} WHERE target_table = ? AND source_table = ? AND source_key IN (?) ×${keys.length}`,
        changes: [],
      });
    }
    if (puts.length > 0)
      out.push({
        sql: `INSERT INTO ${this.table} (target_table, source_table, source_key, target_key) VALUES ${puts.map((p) => putTuple(p.id, p.key)).join(",")} ON DUPLICATE KEY UPDATE target_key = VALUES(target_key)`,
        text: `INSERT INTO ${this.table} (...) VALUES (?) ×${puts.length}`,
        changes: [],
      });
    return out;
  }

  /** A savepoint of the overlay (to undo a refused change's entries). */
  mark(): Map<string, string | null> {
    return new Map(this.overlay);
  }

  restore(mark: Map<string, string | null>): void {
    this.overlay = mark;
  }

  /** The open transaction committed: its entries are the target's now. */
  committed(): void {
    for (const [id, v] of this.overlay) this.remember(id, v);
    this.overlay = new Map();
  }

  /** The open transaction was rolled back: its entries never existed. */
  rolledBack(): void {
    this.overlay = new Map();
  }

  /** Forgets everything cached (another replica may have written meanwhile). */
  clear(): void {
    this.cache.clear();
    this.overlay = new Map();
  }

  private remember(id: string, v: string | null): void {
    this.cache.delete(id);
    this.cache.set(id, v);
    if (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
  }
}

/** An entry's row of the key-map table, as SQL. */
function putTuple(id: string, targetKey: string): string {
  const cut = id.indexOf("\u0000");
  const { target, source } = pairOf(id.slice(0, cut));
  return `(${sqlLiteral(target)},${sqlLiteral(source)},${sqlLiteral(id.slice(cut + 1))},${sqlLiteral(targetKey)})`;
}

/** Entry ids grouped by their (target table, source table): pair part (`k<n>`) -> source keys. */
function byTables(ids: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const id of ids) {
    const cut = id.indexOf("\u0000");
    const pair = id.slice(0, cut);
    const keys = out.get(pair);
    if (keys) keys.push(id.slice(cut + 1));
    else out.set(pair, [id.slice(cut + 1)]);
  }
  return out;
}
