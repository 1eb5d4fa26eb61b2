import { quoteId } from "@dfs/mysql";

/**
 * MySQL error numbers that mean a DDL statement's effect is already there (the DPU re-applies DDL
 * after a restart, and a target table created from a later definition already has later columns).
 */
export const DDL_ALREADY_APPLIED = new Set([
  1007, // ER_DB_CREATE_EXISTS
  1008, // ER_DB_DROP_EXISTS
  1050, // ER_TABLE_EXISTS_ERROR
  1051, // ER_BAD_TABLE_ERROR (drop of a missing table)
  1060, // ER_DUP_FIELDNAME
  1061, // ER_DUP_KEYNAME
  1091, // ER_CANT_DROP_FIELD_OR_KEY
  1146, // ER_NO_SUCH_TABLE (alter/truncate of a table dropped later)
  1054, // ER_BAD_FIELD_ERROR (alter of a column dropped or renamed later)
]);

/** Rewrites references to a source database in a DDL statement to the target database. */
export function mapDdl(statement: string, srcDb: string, dstDb: string): string {
  if (srcDb === dstDb || !srcDb) return statement;
  const escaped = srcDb.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return statement
    .replace(new RegExp(`\`${escaped.replace(/`/g, "``")}\`\\s*\\.`, "g"), `${quoteId(dstDb)}.`)
    .replace(new RegExp(`(?<![\\w\`$])${escaped}\\s*\\.(?=\\s*[\`\\w])`, "g"), `${quoteId(dstDb)}.`)
    .replace(
      new RegExp(
        `^(\\s*(?:CREATE|DROP|ALTER)\\s+(?:DATABASE|SCHEMA)\\s+(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?)(\`${escaped}\`|${escaped})(?=\\s|$)`,
        "i",
      ),
      `$1${quoteId(dstDb)}`,
    );
}
