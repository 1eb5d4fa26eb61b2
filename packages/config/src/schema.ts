/**
 * The schema of the one YAML file that configures every dfs service. Every key has a default or is
 * required, every mapping is strict (an unknown key is an error, so a typo cannot pass silently),
 * and sizes and durations are converted to plain numbers (bytes, milliseconds).
 * docs/configuration.md documents each key; a test checks that it names every key defined here.
 */
import { isGtidSet } from "@dfs/codec";
import * as z from "zod";
import { archiveSchema, defaultArchiveDir } from "./archive.js";
import { duration, enumOf, int, mysqlUrl, natsUrl, patterns, secret, show, size } from "./fields.js";
import { pipelineSchema } from "./pipeline.js";
import {
  bindHost,
  clientTlsOf,
  clientTlsSchema,
  defaultBindHost,
  endpointOf,
  mysqlTlsSchema,
  natsAuthFields,
  natsAuthRule,
  natsTlsSchema,
  oneTlsSetting,
  serverTlsSchema,
} from "./security.js";
import { monitorSchema, relmgrSchema } from "./servers.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export const START_FROM = ["earliest", "latest", "position", "gtid"] as const;

const SOURCE_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BINLOG_FILE = /^[^\s/\\]+\.\d+$/;

/** Where a capture with an empty journal starts reading the binlog. */
const startSchema = z
  .strictObject({
    from: enumOf(START_FROM)
      .default("latest")
      .describe(
        "earliest: the oldest binlog the server still has; latest: the current end of the binlog; " +
          "position: source.start.file + source.start.position; gtid: source.start.gtid",
      ),
    file: z
      .string()
      .regex(BINLOG_FILE, {
        error: (iss) => `must be a binlog file name like "mysql-bin.000042" (got ${show(iss.input)})`,
      })
      .optional()
      .describe("Binlog file name to start from; required when from is position"),
    position: int(4)
      .optional()
      .describe("Byte position in that file (4 = its first event); required when from is position"),
    gtid: z
      .string()
      .refine((g) => isGtidSet(g), {
        error: (iss) =>
          'must be a MySQL GTID set like "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5" or a MariaDB GTID ' +
          `position like "0-1-100" (got ${show(iss.input)})`,
      })
      .optional()
      .describe("GTID set (MySQL) or GTID position (MariaDB) already applied; required when from is gtid"),
    snapshot: z
      .boolean()
      .default(false)
      .describe(
        "With a new journal, also snapshot every captured table once capture runs, so rows written before the start position reach the stream",
      ),
  })
  .superRefine((s, ctx) => {
    const need = (key: "file" | "position" | "gtid") => {
      if (s[key] !== undefined) return;
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `is required when source.start.from is "${s.from}"`,
      });
    };
    if (s.from === "position") {
      need("file");
      need("position");
    }
    if (s.from === "gtid") need("gtid");
  });

const sourceSchema = z
  .strictObject({
    id: z
      .string()
      .regex(SOURCE_ID, {
        error: (iss) => `must be 1 to 32 letters, digits, "_" or "-" (got ${show(iss.input)})`,
      })
      .describe("Name of the source; used in NATS stream and subject names, so it must stay the same"),
    url: mysqlUrl().describe(
      "Source server: mysql://user:password@host:3306 (or mariadb://), with ?ssl-mode=...&ssl-ca=... for TLS",
    ),
    password: secret()
      .optional()
      .describe("Password of the source user (secret); wins over a password in source.url"),
    tls: mysqlTlsSchema
      .optional()
      .describe(
        "TLS to the source (instead of the URL's ssl-* parameters); the binlog connection uses it too",
      ),
    serverId: int(1, 4_294_967_295)
      .default(4201)
      .describe(
        "Replica server id of the binlog connection; must differ from every other replica of the source",
      ),
    include: z
      .strictObject({
        databases: patterns(1).describe('Database patterns to capture, e.g. "shop", "app_*"; empty = all'),
        tables: patterns(2).describe('Table patterns to capture, e.g. "shop.orders", "shop.*"; empty = all'),
      })
      .prefault({})
      .describe("What to capture; `*` and `?` are wildcards; both lists empty = everything"),
    exclude: z
      .strictObject({
        databases: patterns(1).describe("Database patterns never captured"),
        tables: patterns(2).describe('Table patterns never captured, e.g. "shop.sessions"'),
        columns: patterns(3).describe('Column patterns left out of every event, e.g. "*.users.password"'),
      })
      .prefault({})
      .describe("What to leave out; applied after include"),
    start: startSchema
      .prefault({})
      .describe("Where a capture with an empty journal starts; ignored once the journal has a checkpoint"),
  })
  .superRefine(oneTlsSetting);

const targetSchema = z
  .strictObject({
    url: mysqlUrl().describe(
      "Target server: mysql://user:password@host:3306 (or mariadb://), with ?ssl-mode=...&ssl-ca=... for TLS",
    ),
    password: secret()
      .optional()
      .describe("Password of the target user (secret); wins over a password in target.url"),
    tls: mysqlTlsSchema.optional().describe("TLS to the target (instead of the URL's ssl-* parameters)"),
    database: z
      .string()
      .min(1, "must not be empty")
      .max(64, "must be at most 64 characters (MySQL limit)")
      .optional()
      .describe("Sync only: write into this database instead of the source database's name"),
  })
  .superRefine(oneTlsSetting);

const dpuSchema = z.strictObject({
  group: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1 to 64 letters, digits, '_' or '-'")
    .default("default")
    .describe(
      "Table group this DPU applies; its durable consumer is dpu-<group> (one default group until relmgr plans groups)",
    ),
  metaDatabase: z
    .string()
    .min(1, "must not be empty")
    .max(64, "must be at most 64 characters (MySQL limit)")
    .default("_dfs")
    .describe("Target database holding the DPU's checkpoint table (_dfs_checkpoint)"),
  batch: z
    .strictObject({
      maxMessages: int(1, 1_000_000)
        .default(5000)
        .describe("Most stream messages in one group of source transactions applied together"),
      maxRows: int(1, 1_000_000)
        .default(2500)
        .describe(
          "Most row changes in one group; a source transaction larger than this is applied alone, streamed in parts into one target transaction",
        ),
      maxBytes: size()
        .prefault("2MiB")
        .describe("Most message bytes in one group (the same bound streams a larger source transaction)"),
      maxWaitMs: duration({ min: 0 })
        .prefault("0ms")
        .describe(
          "How long a group waits for more source transactions when none are delivered yet (0 = apply what is there at once)",
        ),
      statementRows: int(1, 10_000)
        .default(1000)
        .describe("Most rows in one multi-row INSERT or DELETE statement"),
    })
    .prefault({})
    .describe(
      "Group commit: whole source transactions are gathered into groups, each applied in one target transaction per connection, with the checkpoint",
    ),
  apply: z
    .strictObject({
      connections: z
        .union([z.literal("auto"), int(1, 64)], {
          error: (iss) => `must be "auto" or an integer from 1 to 64 (got ${show(iss.input)})`,
        })
        .default("auto")
        .describe(
          'Target connections applying a group in parallel, split by conflicts (source transactions that share a key run in order on one connection); "auto" = chosen from the target (MariaDB: half its thread_pool_size, which defaults to its CPU count, 1..8; MySQL: 4)',
        ),
    })
    .prefault({})
    .describe("Parallel apply"),
  heapLimitMb: int(32, 65_536)
    .default(160)
    .describe(
      "Heap limit (V8 old space, MiB) of the DPU's worker thread in `dfs run`, which keeps its memory bounded; a standalone `dfs dpu` takes node's --max-old-space-size instead",
    ),
  retry: z
    .strictObject({
      initialMs: duration()
        .prefault("200ms")
        .describe("First delay before retrying a transient target error"),
      maxMs: duration()
        .prefault("30s")
        .describe("Largest delay between retries; delays double up to it, with jitter"),
    })
    .prefault({})
    .describe(
      "Retries of transient target errors (connection lost, deadlock 1213, lock wait timeout 1205, ...)",
    ),
  http: z
    .strictObject({
      port: int(0, 65535)
        .default(9103)
        .describe("HTTP port for /metrics, /healthz, /readyz (0 = any free port)"),
    })
    .prefault({})
    .describe("The DPU's HTTP endpoints"),
  grpc: z
    .strictObject({
      port: int(0, 65535).default(50103).describe("gRPC control-plane port (0 = any free port)"),
    })
    .prefault({})
    .describe("The DPU's control plane"),
  lease: z
    .strictObject({
      enabled: z
        .boolean()
        .default(true)
        .describe(
          "Take a lease (NATS KV) before applying, so that of several replicas of one group one applies and the others stand by",
        ),
      ttlMs: duration({ min: 300 })
        .prefault("5s")
        .describe("Lease lifetime: a standby replica takes over this long after the active one died"),
    })
    .prefault({})
    .describe("Replicas of a table group: one active, the others standing by"),
  acceptLossThrough: int(0)
    .default(0)
    .describe(
      "Stream sequence up to which messages found gone (expired, deleted) are accepted as lost, deliberately, after reading the DPU's DFS_STREAM_LOST error; 0: a gap always stops the DPU",
    ),
});

const streamSchema = z
  .strictObject({
    replicas: int(1, 5).default(1).describe("JetStream replicas of the stream (1 to 5)"),
    maxAge: duration({ min: 0, max: Number.MAX_SAFE_INTEGER })
      .prefault("7d")
      .describe("How long the stream keeps messages; 0 = forever"),
    maxBytes: size({ unlimited: true }).default(-1).describe("Size limit of the stream; -1 = unlimited"),
    duplicateWindow: duration({ max: Number.MAX_SAFE_INTEGER })
      .prefault("2m")
      .describe("Window in which JetStream drops a re-published message with the same id"),
  })
  .superRefine((s, ctx) => {
    if (s.maxAge > 0 && s.duplicateWindow > s.maxAge) {
      const message = `must not exceed nats.stream.maxAge (${s.duplicateWindow} ms > ${s.maxAge} ms)`;
      ctx.addIssue({ code: "custom", path: ["duplicateWindow"], message });
    }
  });

const natsSchema = z
  .strictObject({
    url: natsUrl()
      .default("nats://127.0.0.1:4222")
      .describe("NATS server URL, or several separated by commas; tls:// requires TLS"),
    ...natsAuthFields,
    tls: natsTlsSchema.optional().describe("TLS to NATS: required when set (as with a tls:// URL)"),
    stream: streamSchema.prefault({}).describe("The JetStream stream of a source"),
  })
  .superRefine(natsAuthRule);

const captureSchema = z
  .strictObject({
    journal: z
      .strictObject({
        path: z
          .string()
          .min(1, "must not be empty")
          .optional()
          .describe(
            "SQLite journal file; default ./data/<source.id>/journal.db, relative to the working directory",
          ),
        maxBytes: size()
          .prefault("2GiB")
          .describe("Size of unpublished journal at which reading the binlog pauses"),
        trimIntervalMs: duration()
          .prefault("1s")
          .describe("How often published entries are deleted from the journal"),
        groupCommitMs: duration({ min: 0 })
          .prefault("5ms")
          .describe(
            "Longest a complete transaction waits in memory so that several share one fsync'd journal commit (0 = commit every event-loop turn)",
          ),
        groupCommitBytes: size()
          .prefault("4MiB")
          .describe("Pending bytes at which the journal commits at once, without waiting for groupCommitMs"),
      })
      .prefault({})
      .describe("The local SQLite journal between binlog and NATS"),
    maxBufferBytes: size()
      .prefault("8MiB")
      .describe("Bytes of decoded events held in memory before they are flushed to the journal"),
    heapLimitMb: int(32, 65_536)
      .default(256)
      .describe(
        "Heap limit (V8 old space, MiB) of capture's worker thread in `dfs run`, which keeps its memory bounded; a standalone `dfs capture` takes node's --max-old-space-size instead",
      ),
    batch: z
      .strictObject({
        maxRows: int(1, 100_000).default(1000).describe("Most rows of one table in one NATS message"),
        maxBytes: size().prefault("512KiB").describe("Most bytes in one NATS message"),
      })
      .prefault({})
      .describe("How rows are grouped into NATS messages"),
    publish: z
      .strictObject({
        maxInFlight: int(1, 10_000).default(256).describe("Messages published but not yet acknowledged"),
        maxInFlightBytes: size()
          .prefault("8MiB")
          .describe("Payload bytes published but not yet acknowledged; bounds the memory the window holds"),
        ackTimeoutMs: duration()
          .prefault("10s")
          .describe("How long to wait for a JetStream ack before retrying"),
      })
      .prefault({})
      .describe("Publishing to JetStream"),
    heartbeatIntervalMs: duration().prefault("1s").describe("How often capture reports liveness"),
    skipTo: z
      .string()
      .regex(/^[^\s/\\]+\.\d+:\d+$/, {
        error: (iss) => `must be "file:position" like "mysql-bin.000042:1234" (got ${show(iss.input)})`,
      })
      .optional()
      .describe(
        "Deliberately moves capture's checkpoint forward to this binlog position at start (only when the checkpoint is before it), e.g. past an event capture stopped on as undecodable; what lies between is not captured. Remove it afterwards",
      ),
    snapshot: z
      .strictObject({
        chunkRows: int(1, 1_000_000)
          .default(5_000)
          .describe("Rows read per chunk; changes made meanwhile to those rows win over the chunk"),
        signalTable: z
          .string()
          .regex(/^[^.`\s]+\.[^.`\s]+$/, {
            error: (iss) => `must be "database.table" (got ${show(iss.input)})`,
          })
          .default("_dfs.dfs_signal")
          .describe(
            "Table on the source where capture writes the snapshot's watermarks (created on first use; its database is never captured)",
          ),
        keylessMaxRows: int(0, 100_000_000)
          .default(200_000)
          .describe(
            "A table without a primary or NOT NULL unique key is loaded whole in one read under a table read lock (writers of that table wait); one with more rows than this is refused with the reason (0: refuse every keyless table)",
          ),
      })
      .prefault({})
      .describe(
        "Snapshots (initial and on-demand loads of tables), read in chunks without locks; keyless tables in one locked read",
      ),
    lease: z
      .strictObject({
        enabled: z.boolean().default(true).describe("Take a lease so that only one capture reads the source"),
        ttlMs: duration().prefault("15s").describe("Lease lifetime; another capture may take over after it"),
        waitMs: duration({ min: 0 })
          .optional()
          .describe(
            "How long a starting capture waits for another holder's lease to end before it gives up; default: as long as a dead holder's key can live (the longer of ttlMs and the lease bucket's TTL, plus 1s), so a restart after a crash waits out the dead process's lease",
          ),
      })
      .prefault({})
      .describe("Single-reader lease of the source"),
    reconnect: z
      .strictObject({
        initialMs: duration().prefault("500ms").describe("First delay before reconnecting to source or NATS"),
        maxMs: duration().prefault("30s").describe("Largest delay; delays double up to it, with jitter"),
      })
      .superRefine((r, ctx) => {
        if (r.initialMs > r.maxMs) {
          const message = `must not be greater than capture.reconnect.maxMs (${r.initialMs} ms > ${r.maxMs} ms)`;
          ctx.addIssue({ code: "custom", path: ["initialMs"], message });
        }
      })
      .prefault({})
      .describe("Reconnect backoff"),
    http: z
      .strictObject({
        port: int(0, 65535).default(9101).describe("Port of /health and /metrics; 0 = any free port"),
      })
      .prefault({})
      .describe("HTTP endpoint of capture"),
    grpc: z
      .strictObject({
        port: int(0, 65535).default(50101).describe("Port of the gRPC control plane; 0 = any free port"),
      })
      .prefault({})
      .describe("gRPC endpoint of capture"),
  })
  .superRefine((c, ctx) => {
    if (c.http.port !== 0 && c.http.port === c.grpc.port) {
      const message = `must differ from capture.http.port (both are ${c.grpc.port})`;
      ctx.addIssue({ code: "custom", path: ["grpc", "port"], message });
    }
  });

/** The whole file. Output: defaults applied, sizes in bytes, durations in milliseconds. */
export const configSchema = z
  .strictObject({
    // An absent section is validated as {}, so that each missing required key is named.
    source: sourceSchema
      .prefault({} as z.input<typeof sourceSchema>)
      .describe("The MySQL/MariaDB server whose binlog is captured"),
    target: targetSchema.optional().describe("The server changes are written to; absent for a backup"),
    archive: archiveSchema
      .optional()
      .describe("The backup use: without a target, the DPU archives the stream into SQLite files"),
    nats: natsSchema.prefault({}).describe("NATS JetStream connection and stream"),
    capture: captureSchema.prefault({}).describe("The capture service"),
    dpu: dpuSchema.prefault({}).describe("The DPU service: applies the stream to the target"),
    log: z
      .strictObject({ level: enumOf(LOG_LEVELS).default("info").describe("Least severe level written") })
      .prefault({})
      .describe("Logging of every service"),
    control: z
      .strictObject({
        token: secret().optional().describe("Token required by the gRPC control plane (secret)"),
        host: bindHost()
          .optional()
          .describe(
            "Address every gRPC control plane listens on; default 127.0.0.1, or 0.0.0.0 with control.tls",
          ),
        tls: serverTlsSchema
          .optional()
          .describe("TLS of every gRPC control plane; mutual TLS with requireClientCert"),
        client: clientTlsSchema
          .optional()
          .describe(
            "TLS of dfs's own control clients (dfs ctl, dfs snapshot, the monitor); on whenever control.tls or this is set",
          ),
      })
      .prefault({})
      .describe("The gRPC control plane"),
    relmgr: relmgrSchema
      .prefault({})
      .describe("The relationship manager: foreign-key graph, table groups, key-map look-ups"),
    monitor: monitorSchema.prefault({}).describe("The monitor web UI"),
    pipeline: pipelineSchema
      .optional()
      .describe("The pipeline use: mappings onto a target of another structure; absent = sync"),
  })
  .superRefine((cfg, ctx) => {
    // A DPU writes to one sink: a target, or (the backup use) the archive.
    if (cfg.archive && cfg.target)
      ctx.addIssue({
        code: "custom",
        path: ["archive"],
        message:
          "is the backup use, without a target: remove target, or run the archive from a second config (its own source.id or dpu.group)",
      });
    if (cfg.archive && cfg.pipeline)
      ctx.addIssue({ code: "custom", path: ["archive"], message: "cannot be combined with pipeline" });
  })
  .transform((cfg) => {
    const { journal } = cfg.capture;
    const path = journal.path ?? defaultJournalPath(cfg.source.id);
    const resolved = {
      path,
      maxBytes: journal.maxBytes,
      trimIntervalMs: journal.trimIntervalMs,
      groupCommitMs: journal.groupCommitMs,
      groupCommitBytes: journal.groupCommitBytes,
    };
    // Unset: wait as long as a dead holder's key can live (its bucket may keep a longer TTL).
    const lease = { ...cfg.capture.lease, waitMs: cfg.capture.lease.waitMs ?? ("expiry" as const) };
    // URLs are parsed once, here: every connection is opened from these endpoints.
    const source = { ...cfg.source, endpoint: endpointOf(cfg.source) };
    const target = cfg.target ? { ...cfg.target, endpoint: endpointOf(cfg.target) } : undefined;
    const archive = cfg.archive
      ? { ...cfg.archive, dir: cfg.archive.dir ?? defaultArchiveDir(cfg.source.id) }
      : undefined;
    // Servers bind loopback unless TLS protects them or the config names an address.
    const control = {
      ...cfg.control,
      host: cfg.control.host ?? defaultBindHost(cfg.control.tls),
      clientTls: clientTlsOf(cfg.control),
    };
    const monitorHttp = {
      ...cfg.monitor.http,
      host: cfg.monitor.http.host ?? defaultBindHost(cfg.monitor.http.tls),
    };
    const monitor = { ...cfg.monitor, http: monitorHttp };
    return {
      ...cfg,
      source,
      target,
      archive,
      control,
      monitor,
      capture: { ...cfg.capture, journal: resolved, lease },
    };
  });

/** The fully resolved config: defaults applied, sizes in bytes, durations in milliseconds. */
export type DfsConfig = z.output<typeof configSchema>;
/** What the YAML file (after environment overrides) may contain. */
export type DfsConfigInput = z.input<typeof configSchema>;

/** Default journal location of a source. */
export function defaultJournalPath(sourceId: string): string {
  return `./data/${sourceId}/journal.db`;
}

// --- schema introspection: key lists for "did you mean" and the documentation test ---

type Def = {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
};
const defOf = (s: z.ZodType): Def => s._zod.def as unknown as Def;

/** The mapping behind defaults, optionals and transforms, if the schema is one. */
function shapeOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let cur = schema;
  for (;;) {
    const d = defOf(cur);
    if (d.type === "object") return d.shape;
    if (d.innerType) cur = d.innerType;
    else if (d.type === "pipe" && d.in && d.out) cur = defOf(d.in).type === "transform" ? d.out : d.in;
    else return undefined;
  }
}

export interface ConfigKey {
  /** Dotted path, e.g. "capture.batch.maxRows". */
  path: string;
  description: string | undefined;
  /** False for a mapping (section) that holds further keys. */
  leaf: boolean;
}

/** Every key of the schema, depth first, in definition order. */
export function listConfigKeys(): ConfigKey[] {
  const out: ConfigKey[] = [];
  const walk = (shape: Record<string, z.ZodType>, prefix: string) => {
    for (const [key, schema] of Object.entries(shape)) {
      const path = prefix ? `${prefix}.${key}` : key;
      const inner = shapeOf(schema);
      out.push({ path, description: schema.description, leaf: inner === undefined });
      if (inner) walk(inner, path);
    }
  };
  walk(shapeOf(configSchema) ?? {}, "");
  return out;
}

/** The keys allowed in the mapping at `path` (e.g. ["capture"]), or undefined. */
export function knownKeysAt(path: readonly PropertyKey[]): string[] | undefined {
  let shape = shapeOf(configSchema);
  for (const seg of path) {
    const next = shape?.[String(seg)];
    shape = next ? shapeOf(next) : undefined;
  }
  return shape ? Object.keys(shape) : undefined;
}
