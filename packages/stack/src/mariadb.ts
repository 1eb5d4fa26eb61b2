import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createConnection } from "mysql2/promise";
import type { ComponentDriver } from "./component.js";
import type { ComponentPaths } from "./paths.js";
import { runLogged } from "./process.js";

/** --user is only accepted (and needed) when running as root; otherwise the server runs as the caller. */
function userArgs(): string[] {
  return process.getuid?.() === 0 ? ["--user=root"] : [];
}

/**
 * A temporary-file directory of the server's own. With the default (/tmp) two bootstraps running
 * at once (the source's and the target's) sometimes remove each other's temporary tables and
 * mariadb-install-db fails ("Unknown table 'mysql.tmp_user_sys'"): seen about once in three tries here.
 */
function tmpDirOf(paths: ComponentPaths): string {
  const dir = `${paths.dataDir}.tmp`;
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Both servers share this tuning: fast and durable enough for tests, never for production. */
function serverArgs(paths: ComponentPaths, serverId: number): string[] {
  return [
    // --no-defaults must come first and keeps the machine's /etc/mysql config (port 3306 etc.) out.
    "--no-defaults",
    ...userArgs(),
    `--datadir=${paths.dataDir}`,
    `--tmpdir=${tmpDirOf(paths)}`,
    `--port=${paths.port}`,
    `--socket=${paths.socket}`,
    `--bind-address=${paths.host}`,
    `--server-id=${serverId}`,
    // Row-based binlog with full images and metadata is what the CDC reader depends on.
    "--log-bin=mysql-bin",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
    "--log-slave-updates=0",
    `--pid-file=${join(paths.dataDir, "mariadbd.pid")}`,
    `--log-error=${paths.errFile}`,
    "--max-connections=500",
    ...MARIADB_TUNING,
    ...tlsArgs(paths),
  ];
}

/** The TLS stack's servers take only TLS connections, with the stack's server certificate. */
function tlsArgs(paths: ComponentPaths): string[] {
  const t = paths.tls;
  if (!t) return [];
  return [
    `--ssl-ca=${t.ca}`,
    `--ssl-cert=${t.serverCert}`,
    `--ssl-key=${t.serverKey}`,
    "--require-secure-transport=ON",
  ];
}

/**
 * Server tuning shared by the stack's servers and any other test server of the project (the e2e
 * bench's temporary replica), so that figures compare like with like.
 */
export const MARIADB_TUNING: readonly string[] = [
  // Relaxed flushing: a crash of a test server may lose the last second, which tests never rely on.
  "--innodb-flush-log-at-trx-commit=2",
  "--sync-binlog=0",
  "--innodb-buffer-pool-size=512M",
  "--character-set-server=utf8mb4",
  "--collation-server=utf8mb4_general_ci",
  // 1G, the most MySQL and MariaDB allow: a row up to that size can be written, read from the binlog
  // and applied to the target (a statement must fit in one packet; docs/dpu.md "Large rows").
  "--max-allowed-packet=1G",
  // Grants are for root@127.0.0.1, so no DNS lookups are needed (and none can stall a connect).
  "--skip-name-resolve",
];

/**
 * Creates the system tables once. It initialises into a scratch directory and renames it into place,
 * so an interrupted init never leaves a half-built datadir that a later `up` would mistake for a good one.
 */
function initDataDir(paths: ComponentPaths, binaries: Record<string, string>, log: (line: string) => void) {
  // Only called once we know our server is not running: a socket lock left by a SIGKILLed server
  // names a pid that may since have been reused, which would make mariadbd refuse to start.
  rmSync(paths.socket, { force: true });
  rmSync(`${paths.socket}.lock`, { force: true });
  if (existsSync(paths.dataDir)) {
    if (existsSync(join(paths.dataDir, "mysql"))) return;
    throw new Error(`${paths.dataDir} exists but holds no MariaDB system tables; remove it and retry`);
  }
  const scratch = `${paths.dataDir}.init`;
  rmSync(scratch, { recursive: true, force: true });
  log(`${paths.name}: initialising ${paths.dataDir}`);
  runLogged(
    binaries["mariadb-install-db"] ?? "mariadb-install-db",
    [
      "--no-defaults",
      `--datadir=${scratch}`,
      `--tmpdir=${tmpDirOf(paths)}`,
      // "normal" gives root@localhost/127.0.0.1 with an empty password instead of unix_socket auth.
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      ...userArgs(),
    ],
    paths.logFile,
  );
  renameSync(scratch, paths.dataDir);
}

/** Ready means a real client session can run a query, not merely that the port accepts connections. */
async function probe(paths: ComponentPaths, timeoutMs: number): Promise<boolean> {
  let connection: Awaited<ReturnType<typeof createConnection>> | undefined;
  try {
    connection = await createConnection({
      host: paths.host,
      port: paths.port,
      user: "root",
      connectTimeout: timeoutMs,
      ...(paths.tls ? { ssl: { ca: readFileSync(paths.tls.ca), rejectUnauthorized: true } } : {}),
    });
    await connection.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    // destroy(), not end(): a half-open connection must not keep the caller's event loop alive.
    connection?.destroy();
  }
}

function mariadbDriver(serverId: number): ComponentDriver {
  return {
    binaries: ["mariadbd", "mariadb-install-db"],
    mainBinary: "mariadbd",
    identity: (paths) => ({ binary: "mariadbd", marker: paths.dataDir }),
    prepare: initDataDir,
    args: (paths) => serverArgs(paths, serverId),
    probe,
    logFiles: (paths) => [paths.errFile, paths.logFile],
  };
}

export const sourceDriver = mariadbDriver(1);
export const targetDriver = mariadbDriver(2);
