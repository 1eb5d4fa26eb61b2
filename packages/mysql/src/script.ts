import { ConfigError, ErrorCode } from "@dfs/common";
import type { MysqlSession } from "./session.js";

/** A statement with `?` parameters. */
export interface ScriptStatement {
  sql: string;
  /**
   * The statement's text already as UTF-8 bytes (SqlBytes), without parameters: what is sent, and
   * `sql` is then read only for messages.
   */
  bytes?: Uint8Array;
  params?: readonly unknown[];
  /**
   * Sent alone as a prepared statement, its parameters in the binary protocol (large values:
   * as SQL text a BLOB would double in size, and be a string on the heap).
   */
  execute?: boolean;
}

/** Bytes a statement takes on the wire: its text and its parameters. */
export function statementBytes(st: ScriptStatement): number {
  let n = (st.bytes ? st.bytes.byteLength : Buffer.byteLength(st.sql)) + 16;
  for (const p of st.params ?? [])
    n += p instanceof Uint8Array ? p.byteLength + 9 : typeof p === "string" ? Buffer.byteLength(p) + 9 : 9;
  return n;
}

/**
 * A statement larger than the server's max_allowed_packet cannot be sent: the server would drop
 * the connection (error 1153), and retrying would never end. A person must raise the setting.
 */
function tooLarge(bytes: number, maxPacket: number, role: string): ConfigError {
  return new ConfigError(ErrorCode.PACKET_TOO_LARGE, [
    `a statement of ${bytes} bytes (a row with large values) does not fit the ${role}'s max_allowed_packet (${maxPacket} bytes): raise max_allowed_packet on the ${role} (SET GLOBAL max_allowed_packet = ..., up to 1G, and in its config file) above the largest row, then restart`,
  ]);
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
  /** The server's max_allowed_packet: a statement larger is a ConfigError before it is sent. */
  maxPacket = Number.POSITIVE_INFINITY,
): Promise<unknown> {
  let from = 0;
  let parts: (string | Uint8Array)[] = [];
  let encoded = false; // a part is bytes: the round trip's text is sent as bytes
  let bytes = 0;
  let last: unknown;
  const flush = async (to: number) => {
    const started = performance.now();
    const result = encoded
      ? await s.queryBytes(parts.length === 1 ? (parts[0] as Uint8Array) : joinBytes(parts, bytes))
      : await s.query(parts.join(";\n"));
    // The last statement's result: alone, the result itself; after others, the last of the list.
    last = parts.length > 1 ? (result as unknown[])[parts.length - 1] : result;
    sent?.(from, to, performance.now() - started);
    from = to;
    parts = [];
    encoded = false;
    bytes = 0;
  };
  for (let i = 0; i < statements.length; i++) {
    const st = statements[i]!;
    if (st.execute) {
      const size = statementBytes(st);
      if (size > maxPacket) throw tooLarge(size, maxPacket, "target");
      if (parts.length > 0) await flush(i);
      const started = performance.now();
      last = await s.execute(st.sql, st.params ?? []);
      sent?.(i, i + 1, performance.now() - started);
      from = i + 1;
      continue;
    }
    const sql = st.bytes ?? (st.params && st.params.length > 0 ? s.format(st.sql, st.params) : st.sql);
    const size = (typeof sql === "string" ? Buffer.byteLength(sql) : sql.byteLength) + 2;
    if (size > maxPacket) throw tooLarge(size, maxPacket, "target");
    if (parts.length > 0 && bytes + size > maxBytes) await flush(i);
    parts.push(sql);
    if (typeof sql !== "string") encoded = true;
    bytes += size;
  }
  if (parts.length > 0) await flush(statements.length);
  return last;
}

/** Statements' texts, strings or bytes, joined by ";\n" into one run of bytes (`size` is enough). */
function joinBytes(parts: readonly (string | Uint8Array)[], size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) at += out.write(";\n", at, "latin1");
    const p = parts[i]!;
    if (typeof p === "string") at += out.write(p, at, "utf8");
    else {
      out.set(p, at);
      at += p.byteLength;
    }
  }
  return out.subarray(0, at);
}
