import type { MysqlSession } from "./session.js";

/** A statement with `?` parameters. */
export interface ScriptStatement {
  sql: string;
  params?: readonly unknown[];
}

/**
 * Runs statements in order in as few round trips as `maxBytes` allows: consecutive statements,
 * their parameters filled in and escaped as a single query would, go to the server as one
 * multi-statement query (the session must be opened with multipleStatements). The server stops at
 * the first statement that fails, and that failure is what this throws; statements before it
 * have run (inside a transaction the caller rolls back). `sent(from, to, ms)` is told after each
 * round trip which statements it carried. Resolves with the last statement's result (rows of an
 * INSERT ... RETURNING, for instance).
 */
export async function runScript(
  s: MysqlSession,
  statements: readonly ScriptStatement[],
  maxBytes: number,
  sent?: (from: number, to: number, ms: number) => void,
): Promise<unknown> {
  let from = 0;
  let parts: string[] = [];
  let bytes = 0;
  let last: unknown;
  const flush = async (to: number) => {
    const started = performance.now();
    const result = await s.query(parts.join(";\n"));
    // The last statement's result: alone, the result itself; after others, the last of the list.
    last = parts.length > 1 ? (result as unknown[])[parts.length - 1] : result;
    sent?.(from, to, performance.now() - started);
    from = to;
    parts = [];
    bytes = 0;
  };
  for (let i = 0; i < statements.length; i++) {
    const st = statements[i]!;
    const sql = st.params && st.params.length > 0 ? s.format(st.sql, st.params) : st.sql;
    const size = Buffer.byteLength(sql) + 2;
    if (parts.length > 0 && bytes + size > maxBytes) await flush(i);
    parts.push(sql);
    bytes += size;
  }
  if (parts.length > 0) await flush(statements.length);
  return last;
}
