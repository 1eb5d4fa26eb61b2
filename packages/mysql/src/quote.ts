import type { TableRef } from "@dfs/codec";

/**
 * The one identifier quoting of the project: backticks, with a backtick inside doubled. Every
 * database, table and column name that reaches SQL goes through here; values never do (they are
 * parameters).
 */
export function quoteId(name: string): string {
  return `\`${name.replace(/`/g, "``")}\``;
}

/** `db`.`table`. */
export function quoteTable(ref: TableRef): string {
  return `${quoteId(ref.db)}.${quoteId(ref.table)}`;
}
