// Support of the chaos test (test/integration/chaos.test.ts): the services as `dfs` processes that
// can be killed -9 and restarted, connections that outlive a server restart, the load's clients,
// and a row-by-row comparison that names the rows that differ. Not part of the service's API.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { waitFor } from "@dfs/common";
import mysql from "mysql2/promise";
import { LoadGen, type Queryable, seededRandom, TABLES, type TableName } from "./failure.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const DFS = join(HERE, "../../../../packages/cli/bin/dfs.js");

/**
 * One service run as `node dfs.js <args>`, its output appended to a log file. An exit nobody asked
 * for is recorded in `crashes` and, like a supervisor (systemd, Kubernetes) would, the process is
 * started again a second later, so the test goes on and reports every such exit at the end.
 */
export class ServiceProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  readonly crashes: string[] = [];
  starts = 0;

  constructor(
    readonly name: string,
    private readonly args: string[],
    readonly httpPort: number,
    readonly logFile: string,
  ) {}

  start(): void {
    const fd = openSync(this.logFile, "a");
    writeSync(fd, `--- ${new Date().toISOString()} ${this.name}: start\n`);
    const child = spawn(process.execPath, [DFS, ...this.args], { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    this.child = child;
    this.stopping = false;
    this.starts++;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        if (this.child === child) this.child = null;
        if (!this.stopping && this.child === null) {
          this.crashes.push(`${new Date().toISOString()} ${this.name} exited by itself (${code ?? signal})`);
          setTimeout(() => {
            if (this.child === null && !this.stopping) this.start();
          }, 1000).unref();
        }
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Signals the process and waits for it to be gone. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    await this.exited;
  }

  /** kill -9, then start again at once. */
  async crashAndRestart(): Promise<void> {
    await this.kill("SIGKILL");
    this.start();
  }

  /** SIGTERM, and SIGKILL if it is not gone 10 s later; never throws. */
  async stop(): Promise<void> {
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), 10_000);
    await this.kill("SIGTERM").catch(() => {});
    clearTimeout(timer);
  }

  /** Polls /healthz (or /readyz) until it answers 200: the process runs (or does its job). */
  async waitLive(path: "/healthz" | "/readyz" = "/healthz", timeoutMs = 60_000): Promise<void> {
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${this.httpPort}${path}`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeoutMs, intervalMs: 200, what: `${this.name} to answer ${path} with 200` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.tail()}`);
    });
  }

  /** The end of its log, for a failure message. */
  tail(bytes = 6000): string {
    const fd = openSync(this.logFile, "r");
    try {
      const size = statSync(this.logFile).size;
      const buffer = Buffer.alloc(Math.min(size, bytes));
      readSync(fd, buffer, 0, buffer.length, size - buffer.length);
      return `--- end of ${this.logFile} ---\n${buffer.toString("utf8")}`;
    } finally {
      closeSync(fd);
    }
  }
}

/** A connection that is opened again on the next query after an error (its server may restart). */
export class Reconnecting implements Queryable {
  private conn: mysql.Connection | null = null;
  constructor(private readonly opts: mysql.ConnectionOptions) {}
  async query(sql: string, params?: unknown): Promise<[unknown, unknown]> {
    try {
      if (!this.conn) {
        this.conn = await mysql.createConnection({ connectTimeout: 2000, ...this.opts });
        this.conn.on("error", () => {}); // a lost connection is replaced on the next query
      }
      return (await this.conn.query(sql, params as unknown[])) as [unknown, unknown];
    } catch (err) {
      this.conn?.destroy();
      this.conn = null;
      throw err;
    }
  }
  async end(): Promise<void> {
    await this.conn?.end().catch(() => {});
    this.conn = null;
  }
}

export function connectionOptions(url: string): mysql.ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username) || "root",
    multipleStatements: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  };
}

/**
/** A client connection that can be opened again (after a restart of the source) under its users. */
class ClientConnection implements Queryable {
  private conn: mysql.Connection | null = null;
  constructor(private readonly url: string) {}
  async open(): Promise<void> {
    this.conn?.destroy();
    this.conn = await mysql.createConnection(connectionOptions(this.url));
    this.conn.on("error", () => {}); // a restart of the source; the next open replaces it
    await this.conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
  }
  async query(sql: string, params?: unknown): Promise<[unknown, unknown]> {
    if (!this.conn) throw new Error("client connection not open");
    return (await this.conn.query(sql, params as unknown[])) as [unknown, unknown];
  }
  async end(): Promise<void> {
    await this.conn?.end().catch(() => {});
  }
}

/**
 * Several clients writing at once: each a `LoadGen` on its own connection with its own range of
 * keys (mixed inserts, updates with `c = c + 1`, key changes, deletes, transactions over one, two
 * or all four tables; the first client's up to `bigTxn` row changes), plus one client that
 * increments every client's hot rows one row per autocommit statement, so that the same rows are
 * changed by transactions of several connections. READ COMMITTED keeps InnoDB's gap locks from
 * making the clients wait for each other; a deadlock that still happens rolls the transaction and
 * the client's model back, and the load goes on. `pause` parks every client between transactions
 * (for a restart of the source, which would leave a COMMIT's outcome unknown); `resume` opens
 * their connections again.
 */
export class ChaosLoad {
  readonly gens: LoadGen[] = [];
  bumps = 0;
  private conns: ClientConnection[] = [];
  private running: Promise<void>[] = [];
  private stopped = false;
  private gate: { open: Promise<void>; release: () => void; since: number } | null = null;
  private parked = 0;
  private pausedMs = 0;
  error: Error | null = null;

  constructor(
    private readonly url: string,
    private readonly db: string,
    private readonly o: {
      clients: number;
      seed: number;
      ratePerClient: number;
      /** Largest transaction (row changes) of each client but the first. */
      maxTxn: number;
      /** The first client's largest: above dpu.batch.maxRows, such a transaction is applied in parts. */
      bigTxn: number;
    },
  ) {}

  async open(): Promise<void> {
    for (let i = 0; i < this.o.clients + 1; i++) {
      const conn = new ClientConnection(this.url);
      await conn.open();
      this.conns.push(conn);
    }
    for (let i = 0; i < this.o.clients; i++) {
      const gen = new LoadGen(
        this.conns[i]!,
        this.db,
        seededRandom(this.o.seed + i),
        4000,
        (i + 1) * 10_000_000,
      );
      await gen.createHot(20);
      this.gens.push(gen);
    }
  }

  /** Row changes committed so far by every client. */
  changes(): number {
    return this.gens.reduce((n, g) => n + g.changes, 0) + this.bumps;
  }

  /** Parks every client between two transactions (or statements); resolves once all are parked. */
  async pause(): Promise<void> {
    let release!: () => void;
    const open = new Promise<void>((r) => (release = r));
    this.gate = { open, release, since: Date.now() };
    await waitFor(() => this.stopped || this.parked === this.running.length, {
      timeoutMs: 60_000,
      intervalMs: 20,
      what: "every client to finish its transaction",
    });
  }

  /** Opens the clients' connections again and lets them go on. */
  async resume(): Promise<void> {
    for (const c of this.conns) await c.open();
    const gate = this.gate;
    this.gate = null;
    if (gate) {
      this.pausedMs += Date.now() - gate.since;
      gate.release();
    }
  }

  start(): void {
    const started = Date.now();
    /** Waits for the client's next turn; false once the load stops. */
    const paced = async (done: () => number): Promise<boolean> => {
      const elapsed = Date.now() - started - this.pausedMs;
      const ahead = done() / this.o.ratePerClient - elapsed / 1000;
      if (ahead > 0) await delay(ahead * 1000); // pacing the writer, not waiting for a condition
      const gate = this.gate;
      if (gate) {
        this.parked++;
        await gate.open;
        this.parked--;
      }
      return !this.stopped;
    };
    const guard = (p: Promise<void>) =>
      p.catch((err: Error) => {
        this.error ??= err;
        this.stopped = true;
      });
    for (const [i, gen] of this.gens.entries()) {
      const maxTxn = i === 0 ? this.o.bigTxn : this.o.maxTxn;
      this.running.push(
        guard(
          (async () => {
            while (!this.stopped) {
              if (!(await paced(() => gen.changes))) break;
              await gen.transaction(gen.size(maxTxn));
            }
          })(),
        ),
      );
    }
    const bumper = this.conns[this.o.clients]!;
    const hot = this.gens.flatMap((g) => g.hotIds());
    const r = seededRandom(this.o.seed + 1000);
    this.running.push(
      guard(
        (async () => {
          while (!this.stopped) {
            if (!(await paced(() => this.bumps * 4))) break;
            const id = hot[Math.floor(r() * hot.length)]!;
            try {
              await bumper.query(`UPDATE \`${this.db}\`.acct SET c = c + 1 WHERE id = ?`, [id]);
              this.bumps++;
            } catch (err) {
              const errno = (err as { errno?: number }).errno;
              if (errno !== 1213 && errno !== 1205) throw err; // rolled back: nothing changed
            }
          }
        })(),
      ),
    );
  }

  /** Stops the clients after their current transaction; throws what stopped one of them, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.gate?.release();
    await Promise.all(this.running);
    await Promise.all(this.conns.map((c) => c.end().catch(() => {})));
    if (this.error) throw this.error;
  }
}

/** Primary (or unique) key columns of the load's tables. */
export const KEYS: Record<TableName, string[]> = {
  acct: ["id"],
  line: ["order_id", "line_no"],
  tagged: ["code"],
  kv: ["k"],
};

/** Every row of a table as key -> its columns (HEX of their binary text, NULL as 'N'). */
async function rowsByKey(conn: Queryable, db: string, table: TableName): Promise<Map<string, string>> {
  const [cols] = await conn.query(
    "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    [db, table],
  );
  const names = (cols as { c: string }[]).map((r) => r.c);
  const text = (c: string) => `COALESCE(HEX(CAST(\`${c}\` AS BINARY)), 'N')`;
  const labelled = (cs: string[]) =>
    `CONCAT_WS('|', ${cs.map((c) => `CONCAT('${c}=', ${text(c)})`).join(", ")})`;
  const [rows] = await conn.query(
    `SELECT ${labelled(KEYS[table])} AS k, ${labelled(names)} AS r FROM \`${db}\`.\`${table}\``,
  );
  return new Map((rows as { k: string; r: string }[]).map((x) => [x.k, x.r]));
}

/** Readable form of a row text: hex decoded where it is printable. */
function readable(row: string | undefined): string {
  if (row === undefined) return "(no row)";
  return row.replace(/=([0-9A-F]*)(?=\||$)/g, (_m, hex: string) => {
    const s = Buffer.from(hex, "hex").toString("utf8");
    return `=${/^[\x20-\x7e\u00a0-\uffff]*$/.test(s) ? JSON.stringify(s) : `0x${hex}`}`;
  });
}

/**
 * Rows that differ between source and target, table by table (missing on one side, or any column
 * different, the counter `c` included), at most `limit` per table, each with both sides' values.
 */
export async function rowDiffs(
  src: Queryable,
  dst: Queryable,
  db: string,
  limit = 15,
): Promise<{ diffs: string[]; compared: number }> {
  const diffs: string[] = [];
  let compared = 0;
  for (const t of TABLES) {
    const a = await rowsByKey(src, db, t);
    const b = await rowsByKey(dst, db, t);
    compared += a.size;
    const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k));
    for (const k of keys.slice(0, limit))
      diffs.push(`${t} ${readable(k)}:\n  source ${readable(a.get(k))}\n  target ${readable(b.get(k))}`);
    if (keys.length > limit) diffs.push(`${t}: ${keys.length - limit} more rows differ`);
  }
  return { diffs, compared };
}

/** Sum of the counter `c` over a table's rows, with the number of rows. */
export async function counterTotals(conn: Queryable, db: string, table: "acct" | "kv") {
  const [rows] = await conn.query(`SELECT COUNT(*) AS n, COALESCE(SUM(c), 0) AS s FROM \`${db}\`.${table}`);
  const r = (rows as { n: string; s: string }[])[0]!;
  return { rows: Number(r.n), sum: Number(r.s) };
}
