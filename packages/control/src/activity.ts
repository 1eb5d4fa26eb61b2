import type { ActivityItem, ActivityRequest, ActivityResponse } from "@dfs/proto";

export type ActivityInput = Partial<Omit<ActivityItem, "id" | "timeMs">> & { kind: string };

/**
 * The last `capacity` things a service did (rows read, statements run, errors), for the
 * monitor. Fixed memory; recording is cheap enough for once per batch on the hot path.
 */
export class ActivityLog {
  private readonly items: ActivityItem[] = [];
  private nextId = 1;
  constructor(private readonly capacity = 200) {}

  add(item: ActivityInput): void {
    this.items.push({
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
    if (this.items.length > this.capacity) this.items.shift();
  }

  /** Items after `afterId`, newest last, at most `limit` (the newest ones). */
  query(req: ActivityRequest): ActivityResponse {
    const limit = req.limit > 0 ? req.limit : 100;
    const after = req.afterId;
    const found = this.items.filter((i) => i.id > after);
    return { items: found.slice(-limit) };
  }
}
