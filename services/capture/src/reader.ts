import { Position } from "@dfs/codec";
import { assert, errorMessage, type Logger } from "@dfs/common";
import type { TableFilter } from "@dfs/config";
import { connectionOptions, type MysqlEndpoint } from "@dfs/mysql";
import { Op } from "@dfs/proto";
import ZongJi from "@vlasky/zongji";
import type { BinlogHandler } from "./assembler.js";
import { parseDdl } from "./ddl.js";
import { type TableInfo, type TableMapEvent, tableInfoFromMap } from "./tables.js";

export interface ReaderOptions {
  endpoint: MysqlEndpoint;
  /** Identity of the source server (SourceFacts.identity): positions read belong to it. */
  server: string;
  serverId: number;
  filter: TableFilter;
  handler: BinlogHandler;
  subjectFor(db: string, table: string): string;
  /** The server sends a heartbeat event after this much idle time; tells us we are caught up. */
  heartbeatPeriodMs: number;
  log: Logger;
  /** Called once when the reader fails; the owner stops it and starts a new one. */
  onError(err: unknown): void;
  /** Called after every event the handler saw, so the owner can apply backpressure. */
  afterEvent(): void;
  /** Capture's own signal table (snapshot watermarks): its rows go to handler.onSignal. */
  signalTable?: { db: string; table: string };
}

/** The events capture asks zongji to decode; everything else is skipped unparsed. */
const EVENTS = [
  "tablemap",
  "writerows",
  "updaterows",
  "deleterows",
  "xid",
  "query",
  "gtid",
  "anonymousgtid",
  "mariadbgtid",
  "rotate",
  "heartbeat",
];

interface ZEvent {
  getEventName(): string;
  timestamp: number;
  gtid?: string;
  query?: string;
  schema?: string;
  tableId?: number;
  rows?: unknown[];
}

/**
 * zongji, subclassed so that the include/exclude rules run where zongji filters TABLE_MAP
 * events: rows of excluded tables are then skipped without being decoded.
 */
class FilteringZongJi extends ZongJi {
  tableFilter: TableFilter | undefined;
  signalTable: { db: string; table: string } | undefined;
  /** Read by our patch of zongji (patches/): GEOMETRY as its stored bytes, SRID + WKB. */
  geometryAsBuffer = true;
  _skipSchema(db: string, table: string): boolean {
    const s = this.signalTable;
    if (s && s.db === db && s.table === table) return false;
    return !this.tableFilter!.includesTable(db, table);
  }
}

/**
 * A binlog event that cannot be decoded or handled: not a connection problem, so reading it again
 * fails again. The supervisor stops capture with the position (see reader-supervisor.ts).
 */
export class UndecodableEvent extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

function undecodable(message: string, cause: unknown): UndecodableEvent {
  return new UndecodableEvent(message, cause);
}

/**
 * What zongji itself reports about one event, as a plain Error (no driver code, no errno): reading
 * the event again fails the same way. Its other plain errors (a bad GTID set at start, the control
 * connection gone during a metadata look-up) are not about an event and keep their meaning.
 */
const ZONGJI_EVENT_FAILURES = [
  // Tables zongji describes from INFORMATION_SCHEMA (MariaDB's 5.3-format temporal columns, or no
  // binlog_row_metadata=FULL): the table was altered or dropped after the event was written.
  /schema changed between binlog event and metadata fetch/,
  /^Insufficient permissions to access: /,
  // A column type or an event type it cannot read.
  /^Unsupported type "/,
  /^Server sent a [A-Z_]+_EVENT /,
];

/** An error zongji emits, for the supervisor: its complaints about an event become UndecodableEvent. */
export function fromZongji(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof UndecodableEvent) return err;
  const e = err as { fatal?: unknown; code?: unknown; errno?: unknown };
  if (e.fatal !== undefined || e.code !== undefined || e.errno !== undefined) return err;
  return ZONGJI_EVENT_FAILURES.some((re) => re.test(err.message)) ? undecodable(err.message, err) : err;
}

/**
 * Whether a reader error is an exception from decoding an event: mysql2 marks an exception thrown
 * while a packet is handled (zongji parses events there) as fatal, like a lost connection, but it
 * carries no socket code and no server errno.
 */
export function isDecodeFailure(err: unknown): boolean {
  if (err instanceof UndecodableEvent) return true;
  const e = err as { fatal?: boolean; code?: unknown; errno?: unknown } | null;
  return err instanceof Error && e?.fatal === true && e.code === undefined && e.errno === undefined;
}

/** Reads the binlog as a replica and calls the handler once per meaningful event. No reconnect: see service.ts. */
export class BinlogReader {
  private readonly o: ReaderOptions;
  private z: FilteringZongJi | null = null;
  private readonly tables = new Map<number, { sig: string; info: TableInfo }>();
  private paused = false;
  private failed = false;

  constructor(options: ReaderOptions) {
    this.o = options;
  }

  /** Starts reading at a file position, or at a GTID set when the position has no file. */
  start(from: Position): void {
    // zongji given neither a file nor a GTID set reads from the first binlog: every change again.
    assert(!from.isNone, "binlog reader: no position to start from");
    const z = new FilteringZongJi({
      ...connectionOptions(this.o.endpoint),
      // Exact values: temporal types as text (microseconds, zero dates), JSON as text,
      // TIMESTAMP rendered in UTC so the envelope does not depend on any time zone.
      dateStrings: true,
      jsonStrings: true,
      timezone: "Z",
      supportBigNumbers: true,
      bigNumberStrings: true,
      charset: "utf8mb4",
    } as never);
    z.tableFilter = this.o.filter;
    z.signalTable = this.o.signalTable;
    this.z = z;
    this.failed = false;
    z.on("binlog", (ev: ZEvent) => this.dispatch(ev));
    z.on("error", (err: unknown) => this.fail(fromZongji(err)));
    const options: Record<string, unknown> = { serverId: this.o.serverId, includeEvents: EVENTS };
    if (from.hasFile) Object.assign(options, { filename: from.file, position: from.pos });
    else options.gtidSet = from.gtid;
    z.start(options);
    const conn = (z as unknown as { connection: ConnectionLike }).connection;
    // Queued before the dump command, so the server sends heartbeats when idle.
    conn.query(`SET @master_heartbeat_period = ${Math.round(this.o.heartbeatPeriodMs * 1e6)}`, () => {});
    conn.on("end", () =>
      this.fail(
        Object.assign(new Error("binlog connection closed by the server"), {
          code: "PROTOCOL_CONNECTION_LOST",
        }),
      ),
    );
  }

  /** Current resume point: after the last complete transaction seen. */
  position(): Position {
    const z = this.z;
    if (!z) return Position.NONE;
    const file = String(z.get("filename") ?? "");
    const gtid = z.gtidSet ?? "";
    return file
      ? Position.at(file, Number(z.get("position") ?? 0), gtid, this.o.server)
      : Position.ofGtid(gtid, this.o.server);
  }

  /** Stops reading from the socket (backpressure); the server's data waits in TCP buffers. */
  pause(): void {
    this.paused = true;
    this.connection()?.pause();
  }

  resume(): void {
    this.paused = false;
    this.connection()?.resume();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  async stop(): Promise<void> {
    const z = this.z;
    this.z = null;
    if (!z) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      z.once("stopped", () => {
        clearTimeout(t);
        resolve();
      });
      z.removeAllListeners("binlog");
      z.removeAllListeners("error");
      z.on("error", () => {});
      z.stop();
    });
  }

  private connection(): ConnectionLike | null {
    return this.z ? (this.z as unknown as { connection: ConnectionLike | null }).connection : null;
  }

  private fail(err: unknown): void {
    if (this.failed || !this.z) return;
    this.failed = true;
    this.o.onError(err);
  }

  private tableInfo(ev: ZEvent): TableInfo | undefined {
    return this.tables.get(ev.tableId!)?.info;
  }

  /** An event the handler cannot take (a value it cannot encode, ...): reading stops there. */
  private dispatch(ev: ZEvent): void {
    if (this.failed) return;
    try {
      this.handle(ev);
    } catch (err) {
      const name = ev.getEventName?.() ?? "?";
      this.fail(undecodable(`its ${name} event cannot be handled: ${errorMessage(err)}`, err));
    }
  }

  private handle(ev: ZEvent): void {
    const h = this.o.handler;
    switch (ev.getEventName()) {
      case "tablemap":
        this.onTableMap(ev as unknown as TableMapEvent);
        break;
      case "writerows":
      case "updaterows":
      case "deleterows": {
        const info = this.tableInfo(ev);
        if (!info) break;
        const name = ev.getEventName();
        const signal = this.o.signalTable;
        if (signal && info.db === signal.db && info.table === signal.table) {
          if (name === "writerows") h.onSignal?.(ev.rows ?? []);
          break;
        }
        const op = name === "writerows" ? Op.OP_CREATE : name === "updaterows" ? Op.OP_UPDATE : Op.OP_DELETE;
        h.onRows(op, info, ev.rows ?? [], ev.timestamp);
        break;
      }
      case "xid":
        h.onCommit(this.position(), ev.timestamp);
        break;
      case "gtid":
      case "anonymousgtid":
      case "mariadbgtid":
        h.onBegin(ev.gtid ?? "", this.position(), ev.timestamp);
        break;
      case "query":
        this.onQuery(ev);
        break;
      case "rotate":
        h.onPosition(this.position());
        break;
      case "heartbeat":
        h.onCaughtUp();
        break;
    }
    if (this.paused) this.connection()?.pause(); // zongji resumes after metadata look-ups; re-assert
    this.o.afterEvent();
  }

  private onTableMap(ev: TableMapEvent): void {
    const entry = ev.tableMap[ev.tableId];
    const cols = entry?.columns ?? [];
    let sig = `${ev.schemaName}.${ev.tableName}`;
    for (let i = 0; i < cols.length; i++)
      sig += `|${cols[i]!.name}:${cols[i]!.type}:${entry!.columnSchemas[i]?.COLUMN_TYPE}`;
    const cached = this.tables.get(ev.tableId);
    if (cached?.sig === sig) return;
    this.tables.set(ev.tableId, { sig, info: tableInfoFromMap(ev, this.o.filter, this.o.subjectFor) });
  }

  private onQuery(ev: ZEvent): void {
    const h = this.o.handler;
    const sql = (ev.query ?? "").trim();
    const head = sql.slice(0, 16).toUpperCase();
    if (head === "BEGIN" || head.startsWith("XA START")) {
      h.onBegin(ev.gtid ?? "", this.position(), ev.timestamp);
    } else if (head === "COMMIT" || head === "ROLLBACK" || head.startsWith("XA COMMIT")) {
      h.onCommit(this.position(), ev.timestamp);
    } else if (head.startsWith("SAVEPOINT") || head.startsWith("ROLLBACK TO") || head.startsWith("XA ")) {
      // Inside a transaction; nothing to record.
    } else {
      const ddl = parseDdl(sql, ev.schema ?? "");
      const f = this.o.filter;
      const relevant =
        ddl !== null &&
        (ddl.tables.length > 0
          ? ddl.tables.some(([db, t]) => f.includesTable(db, t))
          : ddl.databases.some((db) => f.includesDatabase(db)));
      if (relevant) {
        // A table's columns may change: forget cached descriptions (TABLE_MAP rebuilds them).
        this.tables.clear();
        h.onDdl(
          sql,
          ev.schema ?? "",
          ddl.tables.map(([db, table]) => ({ db, table })),
          this.position(),
          ev.timestamp,
        );
      } else {
        h.onStandalone(this.position(), ev.timestamp);
      }
    }
  }
}

interface ConnectionLike {
  pause(): void;
  resume(): void;
  query(sql: string, cb: (err: unknown) => void): void;
  on(event: string, cb: () => void): void;
}
