import { formatTableRef, fromTableKey, Position, parseTableRef, type TableRef, tableKey } from "@dfs/codec";
/**
 * Gathers the pipeline's state: every poll interval, each watched service's Status, its new
 * Activity items, its dead letters (DPU) and its /metrics, turned into one MonitorState for the
 * page. A service that does not answer keeps its last data and is shown as unreachable; a slow
 * one does not hold up the others (its poll goes on in the background, the next tick skips it).
 */
import { errorMessage, type Logger } from "@dfs/common";
import {
  type ClientTls,
  ControlCallError,
  type ControlClient,
  type ControlClientOptions,
  connectControl,
  type ServiceKind,
} from "@dfs/control";
import { type MonitorMetrics, parseMetrics, type Sample, sumOf } from "@dfs/metrics";
import {
  type ActivityView,
  activityView,
  type DlqView,
  dlqView,
  type ErrorView,
  type MonitorState,
  type Point,
  type ServiceView,
  statusFields,
  type TableRow,
} from "./view.js";

/** A service the monitor watches (config `monitor.services`, name defaulted). */
export interface WatchedService {
  kind: ServiceKind;
  name: string;
  grpc: string;
  http: string;
}

export interface PollerOptions {
  sourceId: string;
  /** The pipeline use: source "db.table" -> its mapped target tables, for the tables list. */
  mappedTargets?: ReadonlyMap<string, string>;
  services: readonly WatchedService[];
  /** control.token; sent with every control call. */
  token: string | undefined;
  /** TLS of the control calls (control.client / control.tls). */
  tls?: ClientTls | undefined;
  intervalMs: number;
  /** How much chart history is kept (default 5 minutes). */
  historyMs?: number;
  /** Deadline of each call to a service (default 3 × interval, between 1 and 5 s). */
  callTimeoutMs?: number;
  log: Logger;
  metrics?: MonitorMetrics;
  /** For tests: how a control client is made. */
  connect?: (kind: ServiceKind, address: string, options: ControlClientOptions) => ControlClient;
}

/** The control calls the page may make, with their arguments. */
export type CallMethod = "pause" | "resume" | "snapshot" | "replayDlq";
export const CALL_METHODS: readonly CallMethod[] = ["pause", "resume", "snapshot", "replayDlq"];

const ACTIVITY_KEPT = 200;
const ERRORS_KEPT = 50;
const LIST_LIMIT = 100;
const UNAVAILABLE = new Set([14, 4]); // gRPC UNAVAILABLE, DEADLINE_EXCEEDED

interface Counters {
  t: number;
  captured: number;
  published: number;
  applied: number;
}

interface Slot {
  svc: WatchedService;
  client: ControlClient;
  view: ServiceView;
  /** Recent changes and statements, newest last. */
  activity: ActivityView[];
  /** Recent errors, kept apart so that a stream of statements does not push them out. */
  errors: ActivityView[];
  seen: Set<string>;
  afterId: number;
  /** dfs_process_start_time_seconds: a change means the service restarted (activity ids restart). */
  startTime: number;
  dlq: DlqView[];
  dlqServed: boolean;
  samples: Sample[];
  prev: Counters | null;
  inflight: Promise<void> | null;
  /** The source position from the last Status (read up to, or applied up to). */
  position: Position;
}

function emptyView(svc: WatchedService): ServiceView {
  return {
    ...svc,
    state: "starting",
    error: "",
    position: "",
    streamSeq: 0,
    behind: "",
    gtid: "",
    lagSeconds: 0,
    backlog: 0,
    backlogBytes: 0,
    changesTotal: 0,
    details: {},
    rate: 0,
    publishedRate: 0,
    metricsOk: false,
    metricsError: "",
    lastSeenMs: 0,
  };
}

const isUnimplemented = (err: unknown) => err instanceof ControlCallError && err.code === 12;

export class Poller {
  private readonly slots: Slot[];
  private readonly history: Point[] = [];
  private readonly historyLength: number;
  private readonly callTimeoutMs: number;
  private readonly listeners = new Set<(s: MonitorState) => void>();
  private state: MonitorState | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = false;
  private ticking: Promise<void> | null = null;
  private pokeAgain = false;

  constructor(private readonly o: PollerOptions) {
    this.callTimeoutMs = o.callTimeoutMs ?? Math.min(5000, Math.max(1000, o.intervalMs * 3));
    this.historyLength = Math.ceil((o.historyMs ?? 300_000) / o.intervalMs);
    const connect = o.connect ?? connectControl;
    this.slots = o.services.map((svc) => ({
      svc,
      client: connect(svc.kind, svc.grpc, { token: o.token, tls: o.tls, timeoutMs: this.callTimeoutMs }),
      view: emptyView(svc),
      activity: [],
      errors: [],
      seen: new Set(),
      afterId: 0,
      startTime: 0,
      dlq: [],
      dlqServed: svc.kind === "dpu",
      samples: [],
      prev: null,
      inflight: null,
      position: Position.NONE,
    }));
  }

  /** Polls now, then every interval until stop(). */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.poke();
  }

  /** Polls as soon as the current poll is done (after a control call, so its effect shows at once). */
  poke(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.pokeAgain = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const started = Date.now();
    this.ticking = this.tick()
      .catch((err: unknown) => this.o.log.error({ err: errorMessage(err) }, "monitor poll failed"))
      .finally(() => {
        this.ticking = null;
        if (this.stopped) return;
        const wait = this.pokeAgain ? 0 : Math.max(0, started + this.o.intervalMs - Date.now());
        this.pokeAgain = false;
        this.timer = setTimeout(() => this.poke(), wait);
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    await Promise.all(this.slots.map((s) => s.inflight));
    for (const s of this.slots) s.client.close();
  }

  /** Called with every new state (once per poll). Returns an unsubscribe function. */
  subscribe(fn: (s: MonitorState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  latest(): MonitorState | null {
    return this.state;
  }

  points(): Point[] {
    return [...this.history];
  }

  /** Runs a control call on the named service with the configured token; a readable result. */
  async call(service: string, method: CallMethod, args: Record<string, unknown> = {}): Promise<string> {
    const slot = this.slots.find((s) => s.svc.name === service);
    if (!slot) throw new Error(`no service named "${service}" is watched`);
    const c = slot.client;
    try {
      switch (method) {
        case "pause":
          return `${service}: ${(await c.pause()).state}`;
        case "resume":
          return `${service}: ${(await c.resume()).state}`;
        case "snapshot": {
          const tables = tableList(args.tables);
          const res = await c.snapshot(tables);
          const what = tables.length > 0 ? tables.map(formatTableRef).join(", ") : "every included table";
          return `${service}: snapshot ${res.snapshotId} of ${what} started`;
        }
        case "replayDlq": {
          const seqs = seqList(args.seqs);
          const res = await c.replayDlq(seqs);
          return `${service}: ${res.replayed} dead letter${res.replayed === 1 ? "" : "s"} replayed`;
        }
        default:
          throw new Error(`unknown method "${String(method)}"`);
      }
    } finally {
      this.poke();
    }
  }

  private async tick(): Promise<void> {
    const polls = this.slots.map((slot) => {
      slot.inflight ??= this.pollService(slot).finally(() => {
        slot.inflight = null;
      });
      return slot.inflight;
    });
    // A service that is slow to answer keeps its previous data for this tick.
    let budget: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(polls),
      new Promise<void>((resolve) => {
        budget = setTimeout(resolve, Math.max(100, this.o.intervalMs - 50));
      }),
    ]);
    clearTimeout(budget);
    if (this.stopped) return;
    this.publish();
  }

  private count(slot: Slot, outcome: string): void {
    this.o.metrics?.polls.inc({ target: slot.svc.name, outcome });
  }

  private async pollService(slot: Slot): Promise<void> {
    const v = slot.view;
    const wasReachable = v.lastSeenMs > 0 && v.state !== "unreachable";
    const [status, metrics] = await Promise.allSettled([slot.client.status(), this.scrape(slot)]);
    if (status.status === "fulfilled") {
      const { lastError, ...fields } = statusFields(status.value);
      Object.assign(v, fields, { error: lastError, lastSeenMs: Date.now() });
      slot.position = Position.fromWire(status.value.sourcePosition);
      this.count(slot, "ok");
      // Back after being away: activity ids may have restarted; re-read and dedupe.
      if (!wasReachable) slot.afterId = 0;
    } else {
      const err = status.reason;
      const unreachable = !(err instanceof ControlCallError) || UNAVAILABLE.has(err.code);
      v.state = unreachable ? "unreachable" : "error";
      v.error = errorMessage(err);
      this.count(slot, unreachable ? "unreachable" : "error");
    }
    if (metrics.status === "rejected") {
      v.metricsOk = false;
      v.metricsError = errorMessage(metrics.reason);
      this.count(slot, "metrics_error");
    }
    if (status.status === "rejected") return;
    await Promise.all([this.readActivity(slot), this.readDlq(slot)]);
  }

  private async scrape(slot: Slot): Promise<void> {
    const res = await fetch(`${slot.svc.http.replace(/\/+$/, "")}/metrics`, {
      signal: AbortSignal.timeout(this.callTimeoutMs),
    });
    if (!res.ok) throw new Error(`GET ${slot.svc.http}/metrics: HTTP ${res.status}`);
    const samples = parseMetrics(await res.text());
    const v = slot.view;
    v.metricsOk = true;
    v.metricsError = "";
    const startTime = sumOf(samples, "dfs_process_start_time_seconds");
    if (slot.startTime && startTime && startTime !== slot.startTime) {
      slot.afterId = 0;
      slot.prev = null;
    }
    slot.startTime = startTime;
    slot.samples = samples;
    const now: Counters = {
      t: Date.now(),
      captured: sumOf(samples, "dfs_capture_changes_total"),
      published: sumOf(samples, "dfs_capture_published_changes_total"),
      applied: sumOf(samples, "dfs_dpu_changes_applied_total"),
    };
    const prev = slot.prev;
    if (prev && now.t > prev.t) {
      const rate = (a: number, b: number) => Math.max(0, a - b) / ((now.t - prev.t) / 1000);
      v.rate = slot.svc.kind === "dpu" ? rate(now.applied, prev.applied) : rate(now.captured, prev.captured);
      v.publishedRate = rate(now.published, prev.published);
    }
    slot.prev = now;
    if (slot.svc.kind === "dpu" && !v.streamSeq) v.streamSeq = sumOf(samples, "dfs_dpu_applied_sequence");
  }

  private async readActivity(slot: Slot): Promise<void> {
    try {
      const res = await slot.client.activity(slot.afterId, ACTIVITY_KEPT);
      for (const item of res.items) {
        const a = activityView(slot.svc.name, item);
        slot.afterId = Math.max(slot.afterId, a.id);
        const key = `${a.id}:${a.timeMs}`;
        if (slot.seen.has(key)) continue;
        slot.seen.add(key);
        (a.kind === "error" ? slot.errors : slot.activity).push(a);
      }
      for (const list of [slot.activity, slot.errors])
        while (list.length > (list === slot.errors ? ERRORS_KEPT : ACTIVITY_KEPT)) {
          const old = list.shift()!;
          slot.seen.delete(`${old.id}:${old.timeMs}`);
        }
    } catch (err) {
      if (!isUnimplemented(err)) this.count(slot, "activity_error");
    }
  }

  private async readDlq(slot: Slot): Promise<void> {
    if (!slot.dlqServed) return;
    try {
      const res = await slot.client.listDlq({ limit: LIST_LIMIT });
      slot.dlq = res.entries.map((e) => dlqView(slot.svc.name, e));
    } catch (err) {
      if (isUnimplemented(err)) slot.dlqServed = false;
      else this.count(slot, "dlq_error");
    }
  }

  /** Builds the state from every slot's latest data and hands it to the listeners. */
  private publish(): void {
    const reader = this.slots.find((s) => s.svc.kind === "capture")?.position ?? Position.NONE;
    const services = this.slots.map((s) => ({
      ...s.view,
      details: { ...s.view.details },
      behind: s.svc.kind === "dpu" ? binlogDistance(s.position, reader) : "",
    }));
    const byKind = (k: ServiceKind) => services.filter((s) => s.kind === k);
    const sum = (list: ServiceView[], f: (s: ServiceView) => number) => list.reduce((a, s) => a + f(s), 0);
    const max = (list: ServiceView[]) => list.reduce((a, s) => Math.max(a, s.lagSeconds), 0);
    const point: Point = {
      t: Date.now(),
      captured: sum(byKind("capture"), (s) => s.rate),
      published: sum(byKind("capture"), (s) => s.publishedRate),
      applied: sum(byKind("dpu"), (s) => s.rate),
      captureLag: max(byKind("capture")),
      pipelineLag: max(byKind("dpu")),
    };
    this.history.push(point);
    if (this.history.length > this.historyLength) this.history.shift();
    const newestFirst = (a: ActivityView, b: ActivityView) => b.timeMs - a.timeMs || b.id - a.id;
    const all = this.slots.flatMap((s) => s.activity).sort(newestFirst);
    const state: MonitorState = {
      timeMs: point.t,
      sourceId: this.o.sourceId,
      pollIntervalMs: this.o.intervalMs,
      services,
      tables: tableRows(this.slots, this.o.mappedTargets),
      changes: all.filter((a) => a.kind === "change").slice(0, LIST_LIMIT),
      dml: all.filter((a) => a.kind === "dml" || a.kind === "ddl").slice(0, LIST_LIMIT),
      errors: errorsOf(services, this.slots.flatMap((s) => s.errors).sort(newestFirst)),
      dlq: this.slots.flatMap((s) => s.dlq).sort((a, b) => b.timeMs - a.timeMs),
      point,
    };
    this.state = state;
    for (const fn of this.listeners) {
      try {
        fn(state);
      } catch (err) {
        this.o.log.warn({ err: errorMessage(err) }, "monitor state listener failed");
      }
    }
  }
}

/** Current conditions first (unreachable, lastError), then recent errors (newest first). */
function errorsOf(services: ServiceView[], recent: ActivityView[]): ErrorView[] {
  const now = Date.now();
  const current: ErrorView[] = services
    .filter((s) => s.error || s.state === "unreachable" || (s.lastSeenMs > 0 && !s.metricsOk))
    .map((s) => ({
      service: s.name,
      timeMs: now,
      text:
        s.state === "unreachable"
          ? `unreachable at ${s.grpc}: ${s.error}`
          : s.error || `metrics unavailable: ${s.metricsError}`,
      current: true,
    }));
  const past = recent
    .slice(0, LIST_LIMIT)
    .map((a) => ({ service: a.service, timeMs: a.timeMs, text: a.text, current: false }));
  return [...current, ...past];
}

const OPS = ["c", "u", "d", "r"] as const;

/**
 * Per-table counts. The DPU labels the target's table; when that is in another database (sync
 * with target.database), it is matched to the only captured table of the same name.
 */
export function tableRows(
  slots: readonly { svc: { kind: ServiceKind }; samples: readonly Sample[] }[],
  /** The pipeline use: source "db.table" -> the target tables its mappings write (shown as the target). */
  mapped?: ReadonlyMap<string, string>,
): TableRow[] {
  const rows = new Map<string, TableRow>();
  const row = (ref: TableRef) => {
    const key = tableKey(ref);
    let r = rows.get(key);
    if (!r) {
      r = {
        table: formatTableRef(ref),
        target: "",
        captured: { c: 0, u: 0, d: 0, r: 0 },
        published: 0,
        applied: { c: 0, u: 0, d: 0, r: 0 },
      };
      rows.set(key, r);
    }
    return r;
  };
  const applied: Sample[] = [];
  for (const slot of slots) {
    for (const s of slot.samples) {
      const ref = refOf(s);
      const op = s.labels.op as (typeof OPS)[number];
      if (s.name === "dfs_capture_changes_total" && OPS.includes(op)) row(ref).captured[op] += s.value;
      else if (s.name === "dfs_capture_published_changes_total") row(ref).published += s.value;
      else if (s.name === "dfs_dpu_changes_applied_total" && OPS.includes(op)) applied.push(s);
    }
  }
  const captured = [...rows.keys()].map(fromTableKey);
  for (const s of applied) {
    const ref = refOf(s);
    let r = rows.get(tableKey(ref));
    if (!r) {
      const same = captured.filter((c) => c.table === ref.table);
      r = same.length === 1 ? rows.get(tableKey(same[0]!))! : row(ref);
      const name = formatTableRef(ref);
      if (r.table !== name) r.target = name;
    }
    r.applied[s.labels.op as (typeof OPS)[number]] += s.value;
  }
  if (mapped) for (const r of rows.values()) r.target = mapped.get(r.table) ?? r.target;
  return [...rows.values()].sort((a, b) => a.table.localeCompare(b.table));
}

/** Tables named by the page: "db.table" (quoted as formatTableRef writes it) or {db, table}. */
function tableList(v: unknown): TableRef[] {
  if (v === undefined || v === null) return [];
  const ok = (t: unknown) =>
    (typeof t === "string" && t.length <= 300) ||
    (typeof t === "object" &&
      t !== null &&
      typeof (t as TableRef).db === "string" &&
      typeof (t as TableRef).table === "string");
  if (!Array.isArray(v) || v.length > 1000 || !v.every(ok))
    throw new Error('tables must be a list of "db.table" names');
  return v.map((t) =>
    typeof t === "string" ? parseTableRef(t) : { db: (t as TableRef).db, table: (t as TableRef).table },
  );
}

/**
 * How far `applied` is behind `read` in the binlog: bytes within one file, else whole files; ""
 * when either is unknown or they belong to different servers.
 */
export function binlogDistance(applied: Position, read: Position): string {
  if (!applied.hasFile || !read.hasFile) return "";
  let order: number;
  try {
    order = applied.compare(read);
  } catch {
    return "";
  }
  if (order >= 0) return "0 B";
  const files = read.fileNumber - applied.fileNumber;
  if (files > 0) return `${files} binlog file${files === 1 ? "" : "s"}`;
  const b = read.pos - applied.pos;
  return b >= 1024 * 1024
    ? `${(b / 1024 / 1024).toFixed(1)} MiB`
    : b >= 1024
      ? `${(b / 1024).toFixed(1)} KiB`
      : `${b} B`;
}

function refOf(s: Sample): TableRef {
  return { db: s.labels.db ?? "", table: s.labels.table ?? "" };
}

function seqList(v: unknown): number[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > 10_000 || !v.every((n) => Number.isSafeInteger(n) && n > 0))
    throw new Error("seqs must be a list of stream sequences (positive integers)");
  return v as number[];
}
