import { type SqlValue, tableKey } from "@dfs/codec";
import type { Change, Lane, TargetTable, TxnChanges } from "./sink.js";

/**
 * Key prefixes of each target table, one per unique key: a short number per table (by name, so a
 * table described again gets the same one) and the key's index. Short keys cost less to make,
 * hash and keep than ones that spell out the table's name.
 */
const prefixes = new WeakMap<TargetTable, string[]>();
const tableIds = new Map<string, number>();

function prefixesOf(t: TargetTable): string[] {
  let p = prefixes.get(t);
  if (p === undefined) {
    const name = tableKey(t.ref);
    let id = tableIds.get(name);
    if (id === undefined) {
      id = tableIds.size;
      tableIds.set(name, id);
    }
    p = t.keyKind === "none" ? [`${id}\u0001*`] : t.uniqueKeys.map((_, i) => `${id}\u0001${i}\u0001`);
    prefixes.set(t, p);
  }
  return p;
}

/**
 * Which source transactions of a group may run apart: dependency tracking by write sets, in the
 * spirit of MySQL's WRITESET. Each change writes a set of keys: its table's primary key (or
 * identity key) and every unique key, of its before and of its after image. Two transactions
 * that share a key depend on each other and stay in source order on one connection; transactions
 * that share none commute (no order between them is visible in the final rows) and may run on
 * different connections, and their rows may share statements. A table without a primary or unique
 * key has one key for the whole table: its changes never run apart.
 *
 * Values are compared as the target's collations might: text case-, accent- and trailing-space-
 * insensitively. That can only join transactions that did not need it (less parallelism), never
 * split ones that did. Each key is in the set once (an update that keeps its key writes it once).
 */
export function writeSet(change: Change): string[] {
  const t = change.target;
  const p = prefixesOf(t);
  if (t.keyKind === "none") return [p[0]!];
  const unique = t.uniqueKeys;
  if (unique.length === 1 && unique[0]!.length === 1) {
    // One single-column key (the common case): arrays of their exact size, no buffer to grow.
    const col = unique[0]![0]!;
    const b = change.before?.[col];
    const a = change.after?.[col];
    // NULLs never conflict in a unique index.
    const kb = b === null || b === undefined ? null : p[0]! + keyPart(b);
    const ka = a === null || a === undefined ? null : p[0]! + keyPart(a);
    if (kb === null) return ka === null ? [] : [ka];
    return ka === null || ka === kb ? [kb] : [kb, ka];
  }
  const keys: string[] = [];
  if (change.before) addKeys(keys, t.uniqueKeys, p, change.before);
  if (change.after) addKeys(keys, t.uniqueKeys, p, change.after);
  return keys;
}

function addKeys(
  keys: string[],
  uniqueKeys: readonly (readonly string[])[],
  prefix: readonly string[],
  image: Record<string, SqlValue>,
): void {
  for (let i = 0; i < uniqueKeys.length; i++) {
    const cols = uniqueKeys[i]!;
    let k = prefix[i]!;
    let hasNull = false;
    for (let c = 0; c < cols.length; c++) {
      const v = image[cols[c]!];
      if (v === null || v === undefined) {
        hasNull = true; // NULLs never conflict in a unique index
        break;
      }
      k += c === 0 ? keyPart(v) : `\u0001${keyPart(v)}`;
    }
    if (!hasNull && !keys.includes(k)) keys.push(k);
  }
}

/** A value as a key part: equal for values a case- and accent-insensitive collation calls equal. */
function keyPart(v: SqlValue): string {
  if (typeof v === "string") {
    // ASCII is the common case: lower-case and trailing spaces only.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a range test, not a match of them
    if (/^[\u0000-\u007f]*$/.test(v)) return v.toLowerCase().trimEnd();
    return v.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase().trimEnd();
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex");
  return String(v);
}

/** The keys a change writes (writeSet), worked out once. */
export function keysOf(change: Change): string[] {
  if (change.keys === null) change.keys = writeSet(change);
  return change.keys;
}

/** Lanes of one part of a group, and where the part ends (an index into the group's transactions). */
export interface Segment {
  lanes: Lane[];
  end: number;
}

/**
 * Spreads a group's source transactions over at most `lanes` connections, in source order, so
 * that no two lanes write the same key: a transaction goes to the lane of the transactions it
 * depends on (shares a key with), and one that depends on none to the least loaded lane. One that
 * depends on two lanes joins them into one while the segment is small (under `minSegmentRows`
 * rows; the lanes' transactions are independent of each other, so one lane may hold both in
 * source order), or else ends the segment: every lane of it commits before the next segment
 * starts. With one lane, the group is one segment and no keys are worked out.
 */
export function scheduleLanes(txns: readonly TxnChanges[], lanes: number, minSegmentRows: number): Segment[] {
  if (lanes <= 1 || txns.length <= 1) return [{ lanes: [laneOf(txns, 0, txns.length)], end: txns.length }];
  const segments: Segment[] = [];
  let plan = new Scheduler(lanes);
  for (let u = 0; u < txns.length; u++) {
    const keys: string[] = [];
    for (const ch of txns[u]!.changes) for (const k of keysOf(ch)) keys.push(k);
    let lane = plan.dependsOn(keys);
    if (lane === -2) {
      if (plan.rows < minSegmentRows) lane = plan.join(keys);
      else {
        segments.push({ lanes: plan.lanes(txns), end: u });
        plan = new Scheduler(lanes);
        lane = -1;
      }
    }
    plan.place(u, lane, keys, txns[u]!.changes.length);
  }
  segments.push({ lanes: plan.lanes(txns), end: txns.length });
  return segments;
}

/** The lane assignment of one segment: lanes as slots, joined ones resolved through `alias`. */
class Scheduler {
  private readonly owner = new Map<string, number>();
  private readonly alias: number[] = [];
  private readonly members: number[][] = [];
  private readonly load: number[] = [];
  rows = 0;

  constructor(private readonly max: number) {}

  private find(slot: number): number {
    while (this.alias[slot] !== slot) slot = this.alias[slot]!;
    return slot;
  }

  /** The lane the keys' owners are in: -1 none, -2 more than one. */
  dependsOn(keys: readonly string[]): number {
    let lane = -1;
    for (const k of keys) {
      const o = this.owner.get(k);
      if (o === undefined) continue;
      const l = this.find(o);
      if (lane === -1) lane = l;
      else if (l !== lane) return -2;
    }
    return lane;
  }

  /** Joins every lane the keys' owners are in into the first of them; returns it. */
  join(keys: readonly string[]): number {
    let into = -1;
    for (const k of keys) {
      const o = this.owner.get(k);
      if (o === undefined) continue;
      const l = this.find(o);
      if (into === -1) into = l;
      else if (l !== into) {
        this.alias[l] = into;
        this.members[into] = mergeSorted(this.members[into]!, this.members[l]!);
        this.members[l] = [];
        this.load[into]! += this.load[l]!;
        this.load[l] = 0;
      }
    }
    return into;
  }

  place(u: number, lane: number, keys: readonly string[], rows: number): void {
    if (lane < 0) lane = this.leastLoaded();
    this.members[lane]!.push(u);
    this.load[lane]! += rows;
    this.rows += rows;
    for (const k of keys) this.owner.set(k, lane);
  }

  /** A live lane with the fewest rows; a new one while fewer than the most are in use. */
  private leastLoaded(): number {
    let best = -1;
    let live = 0;
    for (let slot = 0; slot < this.alias.length; slot++) {
      if (this.alias[slot] !== slot) continue;
      live++;
      if (best === -1 || this.load[slot]! < this.load[best]!) best = slot;
    }
    if (live < this.max && (best === -1 || this.load[best]! > 0)) {
      const slot = this.alias.length;
      this.alias.push(slot);
      this.members.push([]);
      this.load.push(0);
      return slot;
    }
    return best;
  }

  lanes(txns: readonly TxnChanges[]): Lane[] {
    const out: Lane[] = [];
    for (let slot = 0; slot < this.alias.length; slot++)
      if (this.alias[slot] === slot && this.members[slot]!.length > 0)
        out.push(laneOfMembers(txns, this.members[slot]!));
    return out;
  }
}

function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]! < b[j]!)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

function laneOf(txns: readonly TxnChanges[], from: number, to: number): Lane {
  const lane: Lane = { changes: [], units: [], rows: 0 };
  for (let u = from; u < to; u++) addTo(lane, txns[u]!);
  return lane;
}

function laneOfMembers(txns: readonly TxnChanges[], members: readonly number[]): Lane {
  const lane: Lane = { changes: [], units: [], rows: 0 };
  for (const u of members) addTo(lane, txns[u]!);
  return lane;
}

function addTo(lane: Lane, t: TxnChanges): void {
  for (const ch of t.changes) lane.changes.push(ch);
  lane.units.push({ seq: t.seq, row: t.row });
  lane.rows += t.changes.length;
}
