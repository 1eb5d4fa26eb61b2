import { ConfigError, ErrorCode } from "@dfs/common";

/**
 * A table, named by its database and its own name. MySQL names may contain ".", "`", spaces and
 * any letter, so a table is never a "db.table" string split on a dot: it is this pair, and its
 * text form (for people: the CLI, logs) quotes a part with backticks when it needs to, as MySQL
 * does.
 */
export interface TableRef {
  readonly db: string;
  readonly table: string;
}

export function tableRef(db: string, table: string): TableRef {
  return { db, table };
}

/** A string that is equal for equal tables and never for different ones: a Map key. */
export function tableKey(ref: TableRef): string {
  return `${ref.db}\u0000${ref.table}`;
}

/** The inverse of tableKey. */
export function fromTableKey(key: string): TableRef {
  const i = key.indexOf("\u0000");
  return { db: key.slice(0, i), table: key.slice(i + 1) };
}

export function sameTable(a: TableRef, b: TableRef): boolean {
  return a.db === b.db && a.table === b.table;
}

/** Characters a name may have without quotes in the text form. */
const PLAIN = /^[\p{L}\p{N}_$]+$/u;

/** One name part, backtick-quoted (backticks doubled) unless it is plain. */
export function formatName(name: string): string {
  return PLAIN.test(name) ? name : `\`${name.replace(/`/g, "``")}\``;
}

/** "db.table", each part quoted with backticks where it needs it ("`my.db`.orders"). */
export function formatTableRef(ref: TableRef): string {
  return `${formatName(ref.db)}.${formatName(ref.table)}`;
}

/**
 * The parts of a dotted name as `formatTableRef` writes it: plain parts, or parts in backticks
 * (with "``" for a backtick). Null when the text is not such a name.
 */
export function splitQualified(text: string): string[] | null {
  const parts: string[] = [];
  let i = 0;
  const s = text.trim();
  for (;;) {
    if (s[i] === "`") {
      let name = "";
      i++;
      for (;;) {
        if (i >= s.length) return null; // unterminated quote
        if (s[i] === "`") {
          if (s[i + 1] === "`") {
            name += "`";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += s[i++];
      }
      parts.push(name);
    } else {
      const start = i;
      while (i < s.length && s[i] !== ".") i++;
      const name = s.slice(start, i);
      if (name === "" || name.includes("`")) return null;
      parts.push(name);
    }
    if (i >= s.length) return parts;
    if (s[i] !== ".") return null;
    i++;
  }
}

/**
 * Parses "db.table", "`my.db`.`a``b`" and the like. Throws ConfigError naming the problem, so a
 * command line or control call can report it.
 */
export function parseTableRef(text: string): TableRef {
  const parts = splitQualified(text);
  if (parts?.length !== 2 || !parts[0] || !parts[1])
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `table ${JSON.stringify(text)}: name it as db.table (quote a name that holds "." with backticks: \`my.db\`.orders)`,
    ]);
  return { db: parts[0], table: parts[1] };
}
