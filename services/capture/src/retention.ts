import { binlogFileNumber } from "@dfs/codec";
import { errorMessage, type Logger } from "@dfs/common";
import type { MysqlSession } from "@dfs/mysql";
import { listBinlogs, variable } from "./checks.js";

/**
 * What the source still keeps of its binlog, so that an alert can warn before the file capture
 * resumes from is purged (after which capture stops with DFS_CHECKPOINT_PURGED and the tables need
 * a new snapshot). Two ways a file goes: automatic expiry by age, and purges by hand or by size.
 */
export interface BinlogRetention {
  /** Number of the oldest binlog file the source still has (mysql-bin.000042 -> 42); 0 if unknown. */
  oldestFile: number;
  /** Number of the newest one (the file the server writes now). */
  newestFile: number;
  /** Seconds after which the server purges a binlog file by itself; 0 = never. */
  expireSeconds: number;
}

/**
 * The retention from SHOW BINARY LOGS and the expiry variables: binlog_expire_logs_seconds (MySQL
 * 8, MariaDB 10.6+), else expire_logs_days (MySQL 5.7, older MariaDB; gone in MySQL 8.4).
 */
export function retentionOf(
  binlogs: readonly { name: string }[],
  expireLogsSeconds: string | null,
  expireLogsDays: string | null,
): BinlogRetention {
  const numbers = binlogs.map((b) => binlogFileNumber(b.name)).filter((n) => n > 0);
  const seconds = Number(expireLogsSeconds ?? 0) || 0;
  const days = Number(expireLogsDays ?? 0) || 0;
  return {
    oldestFile: numbers.length > 0 ? Math.min(...numbers) : 0,
    newestFile: numbers.length > 0 ? Math.max(...numbers) : 0,
    expireSeconds: seconds > 0 ? seconds : Math.round(days * 86400),
  };
}

/** Reads the retention from the source. */
export async function readRetention(conn: MysqlSession): Promise<BinlogRetention> {
  const binlogs = await listBinlogs(conn);
  return retentionOf(
    binlogs,
    await variable(conn, "binlog_expire_logs_seconds"),
    await variable(conn, "expire_logs_days"),
  );
}

export interface RetentionWatchOptions {
  /** One reading of the source's retention (a fresh session each time). */
  read(): Promise<BinlogRetention>;
  intervalMs: number;
  onUpdate(r: BinlogRetention): void;
  log: Logger;
}

/**
 * Reads the source's binlog retention now and then every intervalMs. A failed reading keeps the
 * last values (the reader's own errors say when the source is away) and is logged at debug.
 */
export class RetentionWatch {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: RetentionWatchOptions) {}

  start(): void {
    this.running = this.refresh();
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.refresh());
    }, this.o.intervalMs);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    try {
      const r = await this.o.read();
      if (!this.stopped) this.o.onUpdate(r);
    } catch (err) {
      this.o.log.debug({ err: errorMessage(err) }, "could not read the source's binlog retention");
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
