import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import mysql from "mysql2/promise";
import { endpointName, type MysqlEndpoint } from "./endpoint.js";
import { classifyMysqlError, type MysqlRole } from "./errors.js";
import { type MysqlSslOption, mysqlSslOption } from "./tls.js";

/**
 * Session settings of a connection that writes changes to a target: TIMESTAMP values travel in
 * UTC; strict mode, so a value the column cannot hold is an error (dead-lettered), never silently
 * truncated; zero dates and an explicit 0 in AUTO_INCREMENT columns kept as the source had them;
 * FK checks off, as a replica applies (the stream is already in the source's order).
 */
export const APPLY_SESSION = [
  "SET SESSION time_zone = '+00:00'",
  "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
  "SET SESSION foreign_key_checks = 0",
  "SET NAMES utf8mb4",
] as const;

/** Session settings of a connection that reads rows to publish (snapshots): TIMESTAMPs in UTC. */
export const READ_SESSION = ["SET SESSION time_zone = '+00:00'", "SET NAMES utf8mb4"] as const;

export interface SessionOptions {
  role: MysqlRole;
  /** Statements run once the connection is open (APPLY_SESSION, READ_SESSION, ...). */
  setup?: readonly string[];
  connectTimeoutMs?: number;
  multipleStatements?: boolean;
}

/**
 * The options every mysql2 or zongji connection of an endpoint is opened with (zongji opens its
 * control and binlog connections with mysql2, so `ssl` secures the binlog stream too). TLS files
 * are read here, at each connect, so a renewed certificate is picked up by the next connection.
 */
export function connectionOptions(e: MysqlEndpoint): {
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string;
  ssl?: MysqlSslOption;
} {
  return {
    host: e.host,
    port: e.port,
    user: e.user,
    password: e.password,
    ...(e.database ? { database: e.database } : {}),
    ...(e.tls ? { ssl: mysqlSslOption(e.tls) } : {}),
  };
}

/**
 * mysql2 formats every query's text, even without parameters, scanning all of it for `?` (about
 * 2% of the DPU's thread with multi-megabyte scripts). Text without parameters goes as it is;
 * with parameters it is formatted as mysql2 does by default (its format, local time zone, objects
 * not stringified).
 */
function formatQuery(sql: string, values: unknown): string {
  if (values === undefined || values === null || (Array.isArray(values) && values.length === 0)) return sql;
  return mysql.format(sql, values as Parameters<typeof mysql.format>[1], false, "local");
}

/**
 * Whether this mysql2 takes a query's text as bytes: the project's patch (patches/mysql2+*.patch,
 * applied by npm install's postinstall) sends a Buffer as it is. An install without it (scripts
 * skipped) still works: the bytes are decoded to a string first, as the driver then needs. Found
 * out at the first query given as bytes, not at start-up.
 */
let bytesQueries: boolean | undefined;

function takesBytes(): boolean {
  if (bytesQueries === undefined) {
    try {
      const main = createRequire(import.meta.url).resolve("mysql2");
      bytesQueries = readFileSync(join(dirname(main), "lib/packets/query.js"), "utf8").includes(
        "dataflowsync",
      );
    } catch {
      bytesQueries = false;
    }
  }
  return bytesQueries;
}

/**
 * One connection to a MySQL/MariaDB server. Values come back exact: BIGINT and DECIMAL as
 * strings, temporals as the server's text. Every error it throws is classified (errors.ts).
 */
export class MysqlSession {
  private dead = false;

  private constructor(
    readonly raw: mysql.Connection,
    readonly role: MysqlRole,
    /** "source 127.0.0.1:13306": for messages. */
    readonly where: string,
  ) {
    raw.on("error", () => {
      this.dead = true;
    });
  }

  /** Opens a session and runs its setup; a refused or failed connect is a classified error. */
  static async open(endpoint: MysqlEndpoint, options: SessionOptions): Promise<MysqlSession> {
    const where = `${options.role} ${endpointName(endpoint)}`;
    let raw: mysql.Connection;
    try {
      raw = await mysql.createConnection({
        ...connectionOptions(endpoint),
        supportBigNumbers: true,
        bigNumberStrings: true,
        dateStrings: true,
        charset: "utf8mb4",
        connectTimeout: options.connectTimeoutMs ?? 10_000,
        multipleStatements: options.multipleStatements ?? false,
        queryFormat: formatQuery,
      });
    } catch (err) {
      throw classifyMysqlError(err, options.role, `cannot connect to the ${where}`);
    }
    const session = new MysqlSession(raw, options.role, where);
    try {
      for (const sql of options.setup ?? []) await session.query(sql);
    } catch (err) {
      await session.close();
      throw err;
    }
    return session;
  }

  /** False once the connection failed (it is then closed; open a new one). */
  get alive(): boolean {
    return !this.dead;
  }

  /** Runs a statement with `?` parameters; returns the rows (or the result header). */
  async query<T = Record<string, unknown>[]>(sql: string, params?: readonly unknown[]): Promise<T> {
    try {
      const [rows] = await this.raw.query(sql, params as unknown[]);
      return rows as T;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) this.dead = true;
      throw classifyMysqlError(err, this.role, this.where);
    }
  }

  /**
   * Runs a statement as a prepared statement: its `?` parameters travel in the binary protocol,
   * as they are (a 60 MB BLOB is 60 MB on the wire, not 120 MB of hex text in memory). The
   * statement is closed on the server at once (each text differs, and prepared statements are a
   * limited server resource: max_prepared_stmt_count).
   */
  async execute<T = unknown>(sql: string, params: readonly unknown[]): Promise<T> {
    try {
      const [result] = await this.raw.execute(sql, params as Parameters<mysql.Connection["execute"]>[1]);
      return result as T;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) this.dead = true;
      throw classifyMysqlError(err, this.role, this.where);
    } finally {
      if (!this.dead) this.raw.unprepare(sql);
    }
  }

  /** A statement with its `?` parameters filled in, escaped as `query` would. */
  format(sql: string, params: readonly unknown[]): string {
    return this.raw.format(sql, params as unknown[]);
  }

  /**
   * Runs SQL text given as UTF-8 bytes (SqlBytes), sent as they are (takesBytes); the session's
   * character set is utf8mb4. Returns what `query` would.
   */
  async queryBytes<T = unknown>(sql: Uint8Array): Promise<T> {
    const bytes = Buffer.isBuffer(sql) ? sql : Buffer.from(sql.buffer, sql.byteOffset, sql.byteLength);
    // A Buffer: the patched driver copies it into the packet.
    const text = takesBytes() ? (bytes as unknown as string) : bytes.toString("utf8");
    return this.queryOptions<T>({ sql: text });
  }

  /** A query with mysql2's options (raw type casting, rows as arrays), for the snapshot reader. */
  async queryOptions<T>(options: mysql.QueryOptions): Promise<T> {
    try {
      const [rows] = await this.raw.query(options);
      return rows as T;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) this.dead = true;
      throw classifyMysqlError(err, this.role, this.where);
    }
  }

  async close(): Promise<void> {
    this.dead = true;
    await this.raw.end().catch(() => this.raw.destroy());
  }
}
