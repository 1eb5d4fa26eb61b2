/**
 * The `dfs` command line, declared with commander: every command, its options, help text and
 * examples. Actions load their command's module only when they run (`dfs run`'s main thread does not
 * load capture's and the DPU's code, and --help starts fast); each returns the exit code.
 */
import { Argument, Command, InvalidArgumentError, Option } from "commander";
import type { ControlArgs } from "./commands/ctl.js";
import { CTL_CALLS, type CtlCall, SERVICE_KINDS } from "./commands/ctl-calls.js";
import { EXIT_CODES_HELP } from "./exit.js";

/** A whole number option value of at least `min`; anything else is a usage error naming the value. */
export function wholeNumber(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`must be a whole number >= ${min} (got "${value}").`);
    return n;
  };
}

/** A share between 0 (excluded) and 1, such as 0.25. */
export function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0 || n > 1)
    throw new InvalidArgumentError(`must be a number above 0 and at most 1 (got "${value}").`);
  return n;
}

/** A repeatable option: each occurrence adds one value. */
function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`;

const configOption = () =>
  new Option("-c, --config <file>", "the YAML config; DFS_* environment variables override it");

const ROOT_EPILOGUE = `
Configuration: -c FILE names the YAML config (docs/configuration.md); environment variables override
it: DFS_SOURCE_URL, DFS_TARGET_URL, DFS_NATS_URL, DFS_CONTROL_TOKEN, ... Without -c, only the
environment and the defaults are used.

${EXIT_CODES_HELP}
${examples(
  "dfs stack up",
  "dfs doctor -c examples/sync.yaml",
  "dfs run -c examples/sync.yaml",
  "dfs ctl capture status",
  "dfs <command> --help",
)}`;

/** The `dfs` program. `done(code)` receives each action's exit code. */
export function buildProgram(version: string, done: (code: number) => void): Command {
  const program = new Command("dfs")
    .description("dataflowsync: MySQL/MariaDB change-data-capture and synchronisation")
    .version(version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help for a command")
    .helpCommand("help [command]", "show help for a command")
    .addHelpText("after", ROOT_EPILOGUE);
  const act =
    <A extends unknown[]>(run: (...args: A) => Promise<number>) =>
    async (...args: A) =>
      done(await run(...args));

  program
    .command("doctor")
    .description(
      "check the source's settings and privileges, NATS and the target; print one table of what to fix",
    )
    .addOption(configOption())
    .addHelpText(
      "after",
      `
Checks: source reachable; log_bin, binlog_format ROW, binlog_row_image FULL, binlog_row_metadata FULL,
server_id, GTIDs, binlog retention; the source user's REPLICATION SLAVE, REPLICATION CLIENT (MariaDB:
BINLOG MONITOR) and SELECT on the included databases; NATS reachable with JetStream; the target
reachable, writable and its user's privileges; the pipeline's mappings compile.
Exit code 0 when nothing failed (warnings allowed), 69 when a server is unreachable, 78 when a
setting, privilege or credential is wrong.
${examples("dfs doctor -c examples/sync.yaml", "DFS_SOURCE_URL=mysql://repl:secret@db:3306 dfs doctor")}`,
    )
    .action(act(async (o: { config?: string }) => (await import("./commands/doctor.js")).runDoctor(o)));

  addServices(program, act);
  addStack(program, act);
  addControl(program, act);
  addBench(program, act);
  addDemo(program, act);
  addVerify(program, act);

  addArchive(program, act);

  return program;
}

type Act = <A extends unknown[]>(run: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;

function addServices(program: Command, act: Act): void {
  const service = (name: string, description: string, load: (o: { config?: string }) => Promise<number>) =>
    program
      .command(name)
      .description(description)
      .addOption(configOption())
      .addHelpText(
        "after",
        examples(
          `dfs ${name} -c examples/sync.yaml`,
          `DFS_LOG_LEVEL=debug dfs ${name} -c examples/sync.yaml`,
        ),
      )
      .action(act(load));
  service(
    "run",
    "capture, DPU, relmgr (pipeline use, table groups) and the monitor in one process",
    async (o) => (await import("./commands/services.js")).runAll(o),
  );
  service("capture", "read the source's binlog into the journal and publish it to JetStream", async (o) =>
    (await import("./commands/capture.js")).runCapture(o),
  );
  service("dpu", "apply the stream to the target (exactly-once, DDL, dead letters)", async (o) =>
    (await import("./commands/services.js")).runDpu(o),
  );
  service(
    "relmgr",
    "the relationship graph, table groups and the plan DPUs follow; key-map look-ups",
    async (o) => (await import("./commands/services.js")).runRelmgr(o),
  );
  service(
    "monitor",
    "the web UI (:8080): pipeline, lag, rates, tables, recent changes, errors, controls",
    async (o) => (await import("./commands/monitor.js")).runMonitor(o),
  );

  const dlq = program
    .command("dlq")
    .description("dead letters: changes the target refused")
    .addHelpText(
      "after",
      examples("dfs dlq list -c examples/sync.yaml", "dfs dlq replay -c examples/sync.yaml --seq 3"),
    );
  dlq
    .command("list")
    .description("list the dead letters (tab-separated: seq, table, stream seq, row, errno, error)")
    .addOption(configOption())
    .addHelpText("after", examples("dfs dlq list -c examples/sync.yaml"))
    .action(act(async (o: { config?: string }) => (await import("./commands/services.js")).runDlqList(o)));
  dlq
    .command("replay")
    .description(
      "apply dead letters again once the cause is fixed, and remove those that applied (65 if some fail)",
    )
    .addOption(configOption())
    .option("--seq <n>", "only this dead letter (repeatable); default: all", collect(wholeNumber(1)))
    .option(
      "--force",
      "apply even where the stream can no longer tell whether a later change superseded it (its later messages expired)",
    )
    .addHelpText(
      "after",
      `
A dead letter whose row a later change in the stream changes again is not applied (that would move
the row back to an older image): it is reported as superseded and removed.
${examples("dfs dlq replay -c examples/sync.yaml", "dfs dlq replay -c examples/sync.yaml --seq 3 --seq 7")}`,
    )
    .action(
      act(async (o: { config?: string; seq?: number[]; force?: boolean }) =>
        (await import("./commands/services.js")).runDlqReplay(o),
      ),
    );
}

function addStack(program: Command, act: Act): void {
  const stack = program
    .command("stack")
    .description("the local test stack: source MariaDB :13306, target :13307, NATS JetStream :14222")
    .addHelpText("after", examples("dfs stack up", "dfs stack status", "dfs stack down"));
  const sub = (name: "up" | "down" | "status", description: string) =>
    stack
      .command(name)
      .description(description)
      .option(
        "--tls",
        "the TLS stack instead: TLS-only MariaDB source and target and NATS (client certificate and user required) with a CA of its own, on 13316, 13317 and 14232, data under .stack-tls",
      )
      .addHelpText("after", examples(`dfs stack ${name}`, `dfs stack ${name} --tls`))
      .action(
        act(async (o: { tls?: boolean }) =>
          (await import("./commands/stack.js")).runStack(name, o.tls === true),
        ),
      );
  sub("up", "start what is not running (idempotent); installs mariadb-server and nats-server when missing");
  sub("down", "stop only what `dfs stack up` started");
  sub("status", "show each component (exit code 69 when one is down)");
}

function addControl(program: Command, act: Act): void {
  const remote = (cmd: Command) =>
    cmd
      .addOption(configOption())
      .option(
        "--address <host:port>",
        "the service's gRPC address (default: from the config, else its default port)",
      )
      .option("--token <token>", "the control token (default: control.token, else DFS_CONTROL_TOKEN)")
      .option("--tls", "use TLS (default: when the config has control.tls or control.client)")
      .option(
        "--tls-ca <file>",
        "CA certificate to verify the service with (implies --tls; default: the system's CAs)",
      )
      .option("--tls-cert <file>", "client certificate for mutual TLS (with --tls-key)")
      .option("--tls-key <file>", "the client certificate's key");
  remote(
    program
      .command("ctl")
      .description("call a service's gRPC control plane; prints JSON")
      .addArgument(new Argument("<service>", "the service").choices(SERVICE_KINDS))
      .addArgument(new Argument("<call>", "what to call").choices(CTL_CALLS))
      .argument("[args...]", "snapshot: db.table ...; set-position: POSITION; dlq-replay: SEQ ..."),
  )
    .option("--table <db.table>", "dlq-list: only this table's dead letters")
    .addHelpText(
      "after",
      `
The address defaults to 127.0.0.1 and the service's gRPC port from the config (capture.grpc.port,
dpu.grpc.port), or 50101 / 50102 / 50103 without -c.
${examples(
  "dfs ctl capture status",
  "dfs ctl capture pause --address 10.0.0.5:50101 --token s3cret",
  "dfs ctl capture set-position mysql-bin.000042:4",
  "dfs ctl dpu dlq-list --table shop.orders -c examples/sync.yaml",
  "dfs ctl dpu dlq-replay 3 7",
)}`,
    )
    .action(
      act(
        async (
          kind: (typeof SERVICE_KINDS)[number],
          call: CtlCall,
          args: string[],
          o: ControlArgs & { table?: string },
        ) => (await import("./commands/ctl.js")).runCtl(kind, call, args, o),
      ),
    );
  remote(
    program
      .command("snapshot")
      .description(
        "snapshot tables through the running capture (watermarks, no locks); none named = every captured table",
      )
      .argument("[tables...]", "db.table ..."),
  )
    .option("--wait", "follow the snapshot to its end")
    .addHelpText(
      "after",
      examples("dfs snapshot --wait shop.orders shop.customers", "dfs snapshot -c examples/sync.yaml"),
    )
    .action(
      act(async (tables: string[], o: ControlArgs & { wait?: boolean }) =>
        (await import("./commands/snapshot.js")).runSnapshot(tables, o),
      ),
    );
}

function addBench(program: Command, act: Act): void {
  const bench = program
    .command("bench")
    .description("measure rows/s, latency and RSS; record the figures in docs/benchmarks.md")
    .addHelpText(
      "after",
      examples(
        "dfs bench capture --rows 200000 --no-record",
        "dfs bench e2e --workload oltp --seconds 30",
        "dfs bench snapshot --rows 500000",
        "dfs bench verify --rows 1000000",
      ),
    );
  const rows = () =>
    new Option("--rows <n>", "row changes to write").argParser(wholeNumber(1000)).default(1_000_000);
  const noRecord = () =>
    new Option("--no-record", "print the figures without adding them to docs/benchmarks.md");
  const run = (what: "capture" | "e2e" | "snapshot" | "verify" | "archive") =>
    act(async (o: Record<string, unknown>) => {
      const { runBenchCommand } = await import("@dfs/bench");
      await runBenchCommand(what, {
        rows: o.rows as number,
        record: o.record as boolean,
        scenario: (o.scenario ?? "all") as "all" | "backlog" | "txn",
        replica: (o.replica ?? true) as boolean,
        workload: (o.workload ?? "bulk") as "bulk" | "oltp",
        use: (o.use ?? "sync") as "sync" | "pipeline",
        seconds: (o.seconds ?? 30) as number,
        latencyShare: (o.latencyShare ?? 0.5) as number,
        config: (o.config ?? []) as string[],
        chunk: (o.chunk ?? (what === "verify" ? 10_000 : 5000)) as number,
      });
      return 0;
    });
  bench
    .command("capture")
    .description("binlog -> journal -> JetStream-acked rows/s and capture RSS, beside zongji alone")
    .addOption(rows())
    .addOption(
      new Option("--scenario <name>", "a backlog of many transactions, one big transaction, or both")
        .choices(["all", "backlog", "txn"])
        .default("all"),
    )
    .option(
      "--config <line>",
      "a YAML line added under capture: in the capture process's config (repeatable)",
      collect(String),
    )
    .addOption(noRecord())
    .addHelpText(
      "after",
      examples(
        "dfs bench capture",
        "dfs bench capture --rows 200000 --scenario txn --no-record",
        "dfs bench capture --scenario backlog --config 'journal: { groupCommitMs: 20ms }' --no-record",
      ),
    )
    .action(run("capture"));
  bench
    .command("e2e")
    .description("source -> dfs run -> target catch-up and latency, beside the native MariaDB replica")
    .addOption(
      new Option("--workload <kind>", "bulk statements or OLTP transactions")
        .choices(["bulk", "oltp"])
        .default("bulk"),
    )
    .addOption(rows())
    .addOption(new Option("--seconds <n>", "oltp: seconds of writing").argParser(wholeNumber(1)).default(30))
    .addOption(
      new Option(
        "--latency-share <fraction>",
        "oltp: the latency phase's rate as a share of the rate the source was written at (the goal is at 0.5)",
      )
        .argParser(fraction)
        .default(0.5),
    )
    .addOption(
      new Option("--use <use>", "pipeline: the three-level schema synced, then through mappings")
        .choices(["sync", "pipeline"])
        .default("sync"),
    )
    .option("--config <line>", "a YAML line added to dfs run's config (repeatable)", collect(String))
    .option("--no-replica", "do not time the native replica")
    .addOption(noRecord())
    .addHelpText(
      "after",
      examples(
        "dfs bench e2e --rows 1000000",
        "dfs bench e2e --workload oltp --seconds 30 --no-replica",
        "dfs bench e2e --use pipeline --rows 200000",
        "dfs bench e2e --config 'dpu: { apply: { connections: 4 } }' --no-record",
      ),
    )
    .action(run("e2e"));
  bench
    .command("archive")
    .description(
      "archive rows/s end to end: row changes already in the stream -> the archiving DPU -> SQLite committed with its checkpoint (and the writer alone)",
    )
    .addOption(rows())
    .addOption(noRecord())
    .addHelpText(
      "after",
      examples("dfs bench archive --rows 1000000", "dfs bench archive --rows 200000 --no-record"),
    )
    .action(run("archive"));
  bench
    .command("snapshot")
    .description("chunked snapshot rows/s beside one plain SELECT")
    .addOption(rows())
    .addOption(new Option("--chunk <n>", "rows per chunk").argParser(wholeNumber(1)).default(5000))
    .addOption(noRecord())
    .addHelpText("after", examples("dfs bench snapshot --rows 1000000 --chunk 5000"))
    .action(run("snapshot"));
  bench
    .command("verify")
    .description("dfs verify rows/s of a table dfs run has copied to the target (goal 200,000 rows/s)")
    .addOption(rows())
    .addOption(
      new Option("--chunk <n>", "rows per checksum chunk").argParser(wholeNumber(100)).default(10_000),
    )
    .addOption(noRecord())
    .addHelpText(
      "after",
      examples("dfs bench verify --rows 1000000", "dfs bench verify --rows 100000 --no-record"),
    )
    .action(run("verify"));
}

function addVerify(program: Command, act: Act): void {
  program
    .command("verify")
    .description("compare source and target by key-chunk checksums; report drifted keys; --repair fixes them")
    .addOption(configOption())
    .option(
      "--table <db.table>",
      "a source table to verify (repeatable); default: every captured table",
      collect(String),
    )
    .option(
      "--repair",
      "re-sync the drifted keys through the DPU's apply path (deleting rows the source lacks)",
    )
    .option("--json", "print the report as JSON instead of a table")
    .addOption(
      new Option("--chunk-rows <n>", "rows per checksum chunk").argParser(wholeNumber(100)).default(10_000),
    )
    .addOption(
      new Option("--rounds <n>", "rounds to settle a differing key").argParser(wholeNumber(2)).default(6),
    )
    .addOption(
      new Option("--wait <seconds>", "how long to wait for the DPU to apply past a chunk's source position")
        .argParser(wholeNumber(1))
        .default(60),
    )
    .addHelpText(
      "after",
      `
Each chunk's target side is read once the DPU has applied past the source position at which its
source side was read, and a differing key is reported only once confirmed on a source row that did
not change meanwhile: a running load shows no false drift. The DPU must be running. Mapped tables
(pipeline use) are verified through their mapping when it can be inverted; others are listed as
not verifiable, with the reason. The last result per table is served by the DPU as dfs_verify_*.
Exit code 65 when drift is found (with --repair: drift it could not fix).
${examples(
  "dfs verify -c examples/sync.yaml",
  "dfs verify -c examples/sync.yaml --table shop.orders --table shop.customers",
  "dfs verify -c examples/sync.yaml --repair",
  "dfs verify -c examples/pipeline.yaml --json > verify.json",
)}`,
    )
    .action(
      act(async (o: import("./commands/verify.js").VerifyArgs) =>
        (await import("./commands/verify.js")).runVerifyCommand(o),
      ),
    );
}

function addDemo(program: Command, act: Act): void {
  program
    .command("demo")
    .description("start the stack and capture, write a small load, print the changes as they arrive")
    .addOption(new Option("-c, --config <file>", "the YAML config").default("examples/sync.yaml"))
    .addOption(
      new Option("--seconds <n>", "how long to write (0 = until Ctrl-C)")
        .argParser(wholeNumber(0))
        .default(20),
    )
    .addHelpText(
      "after",
      `
Exit code 65 when the target does not end equal to the source.
${examples("dfs demo", "dfs demo -c examples/pipeline.yaml --seconds 0")}`,
    )
    .action(
      act(async (o: { config: string; seconds: number }) => (await import("./commands/demo.js")).runDemo(o)),
    );
}

function addArchive(program: Command, act: Act): void {
  const archive = program
    .command("archive")
    .description("the backup use's SQLite archive: stats, query, replay into a database, flashback SQL")
    .addHelpText(
      "after",
      `
The archive is written by the DPU when the config has an archive section and no target
(docs/backup.md). Ranges include their start and exclude their end; positions are a source
transaction's start (file:pos, as SHOW MASTER STATUS prints it before the transaction).
${examples(
  "dfs archive stats -c examples/backup.yaml",
  "dfs archive query -c examples/backup.yaml --table shop.orders --key 42",
  "dfs archive replay -c examples/backup.yaml --url mysql://root@127.0.0.1:13307 --until 2024-06-01T12:00:00Z",
  "dfs archive flashback -c examples/backup.yaml --since 2024-06-01T11:58:00Z > undo.sql",
)}`,
    );
  const common = (cmd: Command, ranges = true) => {
    cmd
      .addOption(configOption())
      .option("--dir <dir>", "the archive's folder (default: archive.dir of the config)");
    if (ranges)
      cmd
        .option("--table <db.table>", "only this table (repeatable)", collect(String))
        .option("--key <values>", "only this primary key: a value, comma-separated values, or a JSON array")
        .option(
          "--since <time>",
          "commit time from (ISO 8601, UTC unless it says otherwise, or epoch seconds)",
        )
        .option("--until <time>", "commit time before")
        .option("--from-pos <file:pos>", "source transactions starting at or after this binlog position")
        .option("--to-pos <file:pos>", "source transactions starting before this binlog position");
    return cmd;
  };
  const load = () => import("./commands/archive.js");
  common(
    archive.command("stats").description("files, rows per table and op, time, position and stream ranges"),
    false,
  )
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      examples(
        "dfs archive stats -c examples/backup.yaml",
        "dfs archive stats --dir ./data/main/archive --json",
      ),
    )
    .action(act(async (o) => (await load()).runArchiveStats(o)));
  common(archive.command("query").description("the archived changes of a table, key, time or position range"))
    .option("--limit <n>", "at most this many changes", wholeNumber(1), 1000)
    .option(
      "--json",
      "one JSON object per line (exact values: big integers and decimals as strings, bytes as {hex})",
    )
    .addHelpText(
      "after",
      examples(
        "dfs archive query -c examples/backup.yaml --table shop.orders --key 42",
        "dfs archive query -c examples/backup.yaml --since '2024-06-01 11:00' --until '2024-06-01 12:00' --json",
      ),
    )
    .action(act(async (o) => (await load()).runArchiveQuery(o)));
  common(
    archive
      .command("replay")
      .description(
        "apply a range to a database through the DPU's apply path (tables created from the archive's definitions)",
      ),
  )
    .option("--url <url>", "the database to replay into: mysql://user:password@host:port")
    .option("--database <name>", "replay every source database into this one")
    .addHelpText(
      "after",
      examples(
        "dfs archive replay -c examples/backup.yaml --url mysql://root@127.0.0.1:13307",
        "dfs archive replay -c examples/backup.yaml --url mysql://root@127.0.0.1:13307 --database restored --until 2024-06-01T12:00:00Z",
      ),
    )
    .action(act(async (o) => (await load()).runArchiveReplay(o)));
  common(
    archive
      .command("flashback")
      .description("print the SQL that undoes a range (newest change first, exact values), or apply it"),
  )
    .option("--apply", "apply it in one transaction instead of printing it")
    .option("--url <url>", "with --apply: the database to undo the changes in")
    .option("--to-source", "with --apply: the config's source")
    .option(
      "--force",
      "undo the range even though later changes touched the same rows (they are overwritten)",
    )
    .addHelpText(
      "after",
      `
An insert is undone by a DELETE by its key, a delete by an INSERT of its before image, an update by
an UPDATE back to its before image; tables without a primary key are matched on the whole image
(LIMIT 1). DDL in the range is not undone (reported; --apply refuses such a range). A range that
is not the archive's tail is refused (exit 65, the rows named) when changes after it touched the
same rows, unless --force.
${examples(
  "dfs archive flashback -c examples/backup.yaml --from-pos mysql-bin.000003:1234 > undo.sql",
  "dfs archive flashback -c examples/backup.yaml --since 2024-06-01T11:58:00Z --apply --to-source",
)}`,
    )
    .action(act(async (o) => (await load()).runArchiveFlashback(o)));
}
