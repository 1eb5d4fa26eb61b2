/**
 * Which tables this DPU applies. The default group applies every table. A named group
 * (dpu.group) follows relmgr's plan (NATS KV): its tables, and, for the plan's first group, tables
 * the plan does not know yet (created since relmgr last planned), so that no table's rows are
 * left to nobody. A new plan revision takes effect for the messages read after it arrives.
 */
import { formatTableRef, type TableRef } from "@dfs/codec";
import { ConfigError, ErrorCode, errorMessage, type Logger, sleep } from "@dfs/common";
import { type NatsConnection, type Plan, readPlan, watchPlan } from "@dfs/nats";

export interface GroupMembership {
  readonly name: string;
  accepts(ref: TableRef): boolean;
  /** The group's tables in the plan in force. */
  tables(): string[];
  revision(): number;
}

const PLAN_POLL_MS = 1000;

export async function joinGroup(
  nc: NatsConnection,
  o: { sourceId: string; group: string; log: Logger; signal: AbortSignal },
): Promise<GroupMembership | null> {
  if (o.group === "default") return null;
  let found = await readPlan(nc, o.sourceId);
  for (let waited = 0; !found; waited++) {
    if (waited === 0) o.log.info({ group: o.group }, "waiting for relmgr's table-group plan");
    await sleep(PLAN_POLL_MS, o.signal);
    found = await readPlan(nc, o.sourceId);
  }
  let mine = new Set<string>();
  let known = new Set<string>();
  let first = false;
  let revision = 0;
  const adopt = (plan: Plan, rev: number): boolean => {
    const g = plan.groups.find((x) => x.name === o.group);
    if (!g) return false;
    mine = new Set(g.tables);
    known = new Set(plan.groups.flatMap((x) => x.tables));
    first = plan.groups[0]?.name === o.group;
    revision = rev;
    return true;
  };
  if (!adopt(found.plan, found.revision))
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `dpu.group: "${o.group}" is not a group of relmgr's plan (its groups: ${found.plan.groups.map((g) => g.name).join(", ") || "none"})`,
    ]);
  o.log.info({ group: o.group, tables: [...mine], revision }, "applying the tables of this group");
  void watchPlan(
    nc,
    o.sourceId,
    found.revision,
    (plan, rev) => {
      if (adopt(plan, rev))
        o.log.info({ group: o.group, tables: [...mine], revision: rev }, "the table-group plan changed");
      else
        o.log.error(
          { group: o.group, revision: rev },
          "the new table-group plan has no group of this name; the DPU keeps applying the tables it had",
        );
    },
    o.signal,
  ).catch((err: unknown) => {
    if (!o.signal.aborted) o.log.warn({ err: errorMessage(err) }, "watching the table-group plan stopped");
  });
  return {
    name: o.group,
    accepts: (ref) => {
      const t = formatTableRef(ref);
      return mine.has(t) || (first && !known.has(t));
    },
    tables: () => [...mine],
    revision: () => revision,
  };
}
