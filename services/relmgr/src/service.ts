import { parseTableRef, tableKey } from "@dfs/codec";
import { ConfigError, createLogger, ErrorCode, errorMessage, type Logger, Scope } from "@dfs/common";
import type { DfsConfig } from "@dfs/config";
import { ActivityLog, serveControl } from "@dfs/control";
import { createRegistry, healthOf, relmgrMetrics, serveHttp, serviceMetrics, setState } from "@dfs/metrics";
import { MysqlSession } from "@dfs/mysql";
import { connectNats, ensureStreams, type Plan, publishPlan, streamSettingsOf, subjects } from "@dfs/nats";
import { relmgrControl } from "./control.js";
import { discoverGraph, type Graph } from "./graph.js";
import { derivePlan } from "./plan.js";
import { Replanner } from "./replanner.js";

export interface RelmgrDeps {
  log?: Logger;
}

export interface RelmgrStatus {
  state: "starting" | "running" | "error" | "stopped";
  tables: number;
  relationships: number;
  groups: number;
  planRevision: number;
  replans: number;
  lastError: string;
}

export interface RelmgrService {
  status(): RelmgrStatus;
  graph(): Graph;
  plan(): { plan: Plan; revision: number };
  /** Plans published and errors, for the monitor. */
  readonly activity: ActivityLog;
  endpoints: { http: number; grpc: number };
  stop(): Promise<void>;
  done: Promise<void>;
}

/** A schema change is followed by a new look at the graph this long after the last one. */
const REPLAN_DEBOUNCE_MS = 500;
/** Backoff of a failed re-read of the graph (the source unreachable). */
const REPLAN_RETRY = { initialMs: 500, maxMs: 30_000 };

/**
 * relmgr's composition root: HTTP endpoint, NATS, the graph read from the source, the plan
 * derived from it and published (KV) for the DPUs, a watch on the stream's DDL subject that
 * re-reads the graph after schema changes, and the control plane.
 *
 * The DDL watch is a plain subscription, which sees only what is published while it is there: it
 * starts before the first read of the graph (a schema change made after that read is then seen),
 * and every NATS reconnect re-reads the graph (a change published while the connection was down
 * is not delivered afterwards). What changed while relmgr was not running, its first read sees.
 */
export async function startRelmgr(cfg: DfsConfig, deps: RelmgrDeps = {}): Promise<RelmgrService> {
  const log = deps.log ?? createLogger({ level: cfg.log.level, name: "relmgr" });
  const sourceId = cfg.source.id;
  const registry = createRegistry("relmgr", sourceId);
  const svc = serviceMetrics(registry);
  const m = relmgrMetrics(registry);
  setState(svc, "starting");
  const scope = new Scope();
  const activity = new ActivityLog();
  const st: RelmgrStatus = {
    state: "starting",
    tables: 0,
    relationships: 0,
    groups: 0,
    planRevision: 0,
    replans: 0,
    lastError: "",
  };
  let graph: Graph = { tables: [], relationships: [] };
  let current: { plan: Plan; revision: number } = {
    plan: { groups: [], madeAt: "", relationships: [] },
    revision: 0,
  };
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  try {
    const http = scope.use(
      await serveHttp({
        port: cfg.relmgr.http.port,
        portKey: "relmgr.http.port",
        registry,
        health: () => healthOf(st),
      }),
    );
    const nc = await connectNats({
      ...cfg.nats,
      name: `dfs-relmgr-${sourceId}`,
    });
    scope.defer(() => nc.close());
    await ensureStreams(nc, sourceId, streamSettingsOf(cfg.nats.stream));
    let src = await MysqlSession.open(cfg.source.endpoint, { role: "source" });
    scope.defer(() => src.close());

    const replan = async () => {
      if (!src.alive) {
        await src.close();
        src = await MysqlSession.open(cfg.source.endpoint, { role: "source" });
      }
      graph = await discoverGraph(cfg, src);
      checkDeclaredGroups(cfg, graph);
      const plan = derivePlan(graph, cfg);
      const revision = await publishPlan(nc, sourceId, plan);
      if (revision !== current.revision) {
        const groups = plan.groups.map((g) => `${g.name}: ${g.tables.join(", ")}`);
        log.info({ revision, groups }, "table-group plan published");
        activity.add({ kind: "plan", text: `plan revision ${revision}: ${groups.join("; ")}` });
      }
      current = { plan, revision };
      st.tables = graph.tables.length;
      st.relationships = graph.relationships.length;
      st.groups = plan.groups.length;
      st.planRevision = revision;
      m.tables.set(st.tables);
      m.relationships.set({ kind: "discovered" }, graph.relationships.filter((r) => !r.declared).length);
      m.relationships.set({ kind: "declared" }, graph.relationships.filter((r) => r.declared).length);
      m.groups.set(st.groups);
      m.planRevision.set(revision);
    };
    const replanner = new Replanner({
      run: async () => {
        st.replans++;
        m.replans.inc();
        await replan();
      },
      debounceMs: REPLAN_DEBOUNCE_MS,
      retry: REPLAN_RETRY,
      onSuccess: () => {
        st.lastError = "";
      },
      onError: (err, retryInMs) => {
        st.lastError = errorMessage(err);
        activity.add({ kind: "error", text: st.lastError });
        log.warn(
          { err: st.lastError, retryInMs },
          "re-reading the relationship graph failed; the plan in force stays until a retry succeeds",
        );
      },
    });
    scope.defer(() => replanner.stop());
    // Schema changes arrive on the stream's DDL subject (a plain subscription sees them too).
    const sub = nc.subscribe(subjects.ddl(sourceId), { callback: () => replanner.soon() });
    scope.defer(() => sub.unsubscribe());
    void (async () => {
      for await (const s of nc.status()) if (s.type === "reconnect") replanner.soon();
    })().catch(() => {});
    await replanner.first(replan);

    const service: RelmgrService = {
      status: () => ({ ...st }),
      graph: () => graph,
      plan: () => current,
      activity,
      endpoints: { http: http.port, grpc: 0 },
      stop: async () => {
        if (st.state === "stopped") return;
        st.state = "stopped";
        setState(svc, "stopped");
        await scope.close();
        resolveDone();
      },
      done,
    };
    const control = scope.use(
      await serveControl({
        kind: "relmgr",
        port: cfg.relmgr.grpc.port,
        portKey: "relmgr.grpc.port",
        token: cfg.control.token,
        host: cfg.control.host,
        tls: cfg.control.tls,
        log,
        handlers: relmgrControl(service, cfg, nc),
      }),
    );
    service.endpoints.grpc = control.port;
    st.state = "running";
    setState(svc, "running");
    return service;
  } catch (err) {
    await scope.close();
    throw err;
  }
}

/** Tables named in relmgr.groups and relmgr.split must be captured tables. */
function checkDeclaredGroups(cfg: DfsConfig, graph: Graph): void {
  const known = new Set(graph.tables.map(tableKey));
  const problems: string[] = [];
  for (const [i, g] of cfg.relmgr.groups.entries())
    for (const [j, t] of g.tables.entries())
      if (!known.has(tableKey(parseTableRef(t))))
        problems.push(`relmgr.groups[${i}].tables[${j}]: ${t} is not a captured table of the source`);
  cfg.relmgr.split.forEach((t, i) => {
    if (!known.has(tableKey(parseTableRef(t))))
      problems.push(`relmgr.split[${i}]: ${t} is not a captured table of the source`);
  });
  if (problems.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, problems);
}
