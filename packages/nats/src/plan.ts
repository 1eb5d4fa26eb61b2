/**
 * The table-group plan relmgr publishes and DPUs follow: which tables each group applies. Kept in
 * the KV bucket `dfs_plans` under the source id; every change is a new revision, and DPUs watch it.
 */
import { ErrorCode, TransientError } from "@dfs/common";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

export const PLAN_BUCKET = "dfs_plans";

export interface TableGroupPlan {
  /** The group's name: its DPUs run with dpu.group set to it (consumer dpu-<name>). */
  name: string;
  /** "db.table" of each table, parents before children. */
  tables: string[];
}

export interface Plan {
  /** The first group takes tables the plan does not know yet (created since), until relmgr plans them. */
  groups: TableGroupPlan[];
  /** When relmgr made it (ISO time). */
  madeAt: string;
  /** The relationships it was derived from, as "child(cols) -> parent(cols)". */
  relationships: string[];
}

async function bucket(nc: NatsConnection): Promise<KV> {
  try {
    return await new Kvm(nc).create(PLAN_BUCKET, { history: 5 });
  } catch (err) {
    throw new TransientError(
      ErrorCode.BROKER_UNAVAILABLE,
      `cannot open the plan bucket ${PLAN_BUCKET}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Publishes `plan` for `sourceId` unless it equals the current one; returns the revision in force. */
export async function publishPlan(nc: NatsConnection, sourceId: string, plan: Plan): Promise<number> {
  const kv = await bucket(nc);
  const cur = await kv.get(sourceId);
  if (cur?.value.length) {
    const old = JSON.parse(cur.string()) as Plan;
    if (JSON.stringify(old.groups) === JSON.stringify(plan.groups)) return cur.revision;
  }
  return kv.put(sourceId, JSON.stringify(plan));
}

/** The plan in force, with its revision, or null when relmgr has published none. */
export async function readPlan(
  nc: NatsConnection,
  sourceId: string,
): Promise<{ plan: Plan; revision: number } | null> {
  const kv = await bucket(nc);
  const e = await kv.get(sourceId);
  if (!e?.value.length) return null;
  return { plan: JSON.parse(e.string()) as Plan, revision: e.revision };
}

/** Calls `onPlan` with each plan published after `afterRevision`, until `signal` aborts. */
export async function watchPlan(
  nc: NatsConnection,
  sourceId: string,
  afterRevision: number,
  onPlan: (plan: Plan, revision: number) => void,
  signal: AbortSignal,
): Promise<void> {
  const kv = await bucket(nc);
  const it = await kv.watch({ key: sourceId });
  signal.addEventListener("abort", () => it.stop(), { once: true });
  for await (const e of it) {
    if (e.revision <= afterRevision || !e.value.length) continue;
    onPlan(JSON.parse(e.string()) as Plan, e.revision);
  }
}
