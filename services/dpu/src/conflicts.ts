import { type SqlValue, tableKey } from "@dfs/codec";
import type { Change, Lane, TxnChanges } from "./sink.js";

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
 * split ones that did.
 */
export function writeSet(change: Change): string[] {
  const t = change.target;
  const base = tableKey(t.ref);
  if (t.keyKind === "none") return [`${base}\u0001*`];
  const keys: string[] = [];
  for (const image of [change.before, change.after]) {
    if (!image) continue;
    for (const [i, cols] of t.uniqueKeys.entries()) {
      let k = `${base}\u0001${i}`;
      let hasNull = false;
      for (const c of cols) {
        const v = image[c];
        if (v === null || v === undefined) {
          hasNull = true; // NULLs never conflict in a unique index
          break;
        }
        k += `\u0001${keyPart(v)}`;
      }
      if (!hasNull) keys.push(k);
    }
  }
  return keys;
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

/**
 * Splits a group's transactions into at most `lanes` lanes: transactions linked by a shared key
 * (directly or through others) form one component, kept whole and in source order; components
 * are spread over the lanes, largest first onto the least loaded.
 */
export function splitLanes(txns: readonly TxnChanges[], lanes: number): Lane[] {
  const parent = txns.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  if (lanes > 1) {
    const owner = new Map<string, number>();
    for (const [i, txn] of txns.entries()) {
      for (const change of txn.changes) {
        for (const k of writeSet(change)) {
          const j = owner.get(k);
          if (j === undefined) owner.set(k, i);
          else {
            const a = find(i);
            const b = find(j);
            if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
          }
        }
      }
    }
  }
  // Components in order of their first transaction; each keeps its transactions in source order.
  const byRoot = new Map<number, { changes: Change[]; seqs: number[]; rows: number }>();
  for (const [i, txn] of txns.entries()) {
    const root = lanes > 1 ? find(i) : 0;
    let c = byRoot.get(root);
    if (!c) {
      c = { changes: [], seqs: [], rows: 0 };
      byRoot.set(root, c);
    }
    for (const ch of txn.changes) c.changes.push(ch);
    c.seqs.push(txn.seq);
    c.rows += txn.changes.length;
  }
  const out: Lane[] = Array.from({ length: Math.max(1, lanes) }, () => ({
    components: [],
    txnSeqs: [],
    rows: 0,
  }));
  const components = [...byRoot.values()].sort((a, b) => b.rows - a.rows);
  for (const c of components) {
    let best = out[0]!;
    for (const lane of out) if (lane.rows < best.rows) best = lane;
    best.components.push(c.changes);
    for (const s of c.seqs) best.txnSeqs.push(s);
    best.rows += c.rows;
  }
  return out.filter((l) => l.txnSeqs.length > 0);
}
