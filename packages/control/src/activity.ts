import type { ActivityItem, ActivityRequest, ActivityResponse } from "@dfs/proto";

export type ActivityInput = Partial<Omit<ActivityItem, "id" | "timeMs">> & { kind: string };

/**
 * The last `capacity` things a service did (rows read, statements run, errors), for the
 * monitor. Fixed memory; recording is cheap enough for once per batch on the hot path.
 */
export class ActivityLog {
  private readonly items: ActivityItem[] = [];
  /** Errors are kept apart, so a stream of DML cannot push one out before the monitor polls. */
  private readonly errors: ActivityItem[] = [];
  private nextId = 1;
  constructor(
    private readonly capacity = 200,
    private readonly errorCapacity = 50,
  ) {}

  add(item: ActivityInput): void {
    const list = item.kind === "error" ? this.errors : this.items;
    const cap = item.kind === "error" ? this.errorCapacity : this.capacity;
    list.push({
      id: BigInt(this.nextId++),
      timeMs: BigInt(Date.now()),
      db: "",
      table: "",
      op: "",
      text: "",
      rows: 0,
      durationMs: 0,
      ...item,
    });
    if (list.length > cap) list.shift();
  }

  /** Items after `afterId`, newest last, at most `limit` (the newest ones). */
  query(req: ActivityRequest): ActivityResponse {
    const limit = req.limit > 0 ? req.limit : 100;
    const after = req.afterId;
    const found = [...this.items, ...this.errors]
      .filter((i) => i.id > after)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    return { items: found.slice(-limit) };
  }
}
