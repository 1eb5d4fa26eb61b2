#!/usr/bin/env node
// A developer tool: the DPU's CPU path without servers (decode a stream message's rows, make them
// Changes, plan one lane's statements with their SQL text), on batches shaped like the bulk e2e
// bench's (1,000-row batches: 70% inserts, 20% updates, 10% deletes of the bench table). Prints
// rows/s, the time spent in GC and scavenges per 100,000 rows (a count that follows the bytes
// allocated: steady where rows/s on a shared host is not). Run after `npm run build`, with the
// young generation the DPU worker has (16 MiB):
//   node --max-semi-space-size=5 scripts/dpu-hotpath.mjs [seconds] [stage]
// stage: decode (rows decoded), adapt (made Changes), keys (write sets), plan and all (statements,
// their text written as UTF-8 bytes; the default).
import { constants, PerformanceObserver, performance } from "node:perf_hooks";
import { decodeBatchChanges, encodeBatch, toValue, ValueKind } from "@dfs/codec";
import { ChangeBatch, Op } from "@dfs/proto";
import { keysOf } from "../services/dpu/dist/conflicts.js";
import { planLane } from "../services/dpu/dist/plan.js";

const seconds = Number(process.argv[2] ?? 10);
const stage = process.argv[3] ?? "all";
const COLUMNS = [
  ["id", ValueKind.Int, "bigint(20)"],
  ["k", ValueKind.Int, "int(11)"],
  ["name", ValueKind.Text, "varchar(64)"],
  ["amount", ValueKind.Decimal, "decimal(12,2)"],
  ["ts", ValueKind.Temporal, "datetime(6)"],
  ["score", ValueKind.Float64, "double"],
];
const image = (id) => [
  id,
  id % 1000,
  `name-${id}-abcdefghij`,
  `${id % 100000}.25`,
  "2024-06-01 12:34:56.123456",
  id / 7,
];
function message(first, op) {
  const values = (img) => img.map((v, i) => toValue(COLUMNS[i][1], v));
  const rows = [];
  for (let i = 0; i < 1000; i++) {
    const id = first + i;
    if (op === Op.OP_CREATE)
      rows.push({ op, rowIndex: i, before: [], after: values(image(id)), sourceTxn: 0 });
    else if (op === Op.OP_UPDATE)
      rows.push({
        op,
        rowIndex: i,
        before: values(image(id)),
        after: values(image(id + 1).map((v, c) => (c === 0 ? id : v))),
        sourceTxn: 0,
      });
    else rows.push({ op, rowIndex: i, before: values(image(id)), after: [], sourceTxn: 0 });
  }
  return encodeBatch(
    ChangeBatch.fromPartial({
      db: "bench",
      table: "bench_rows",
      columns: COLUMNS.map(([name, , type]) => ({ name, type, charset: "" })),
      primaryKey: ["id"],
      txnOrdinal: 1n,
      txnLast: true,
      sourceTxns: [
        { gtid: "0-1-1", startFile: "mysql-bin.000001", startPos: 4n, commitTime: 1n, firstRow: 0 },
      ],
      rows,
    }),
  );
}
const messages = [];
for (let m = 0; m < 10; m++)
  messages.push(message(m * 1000, m < 7 ? Op.OP_CREATE : m < 9 ? Op.OP_UPDATE : Op.OP_DELETE));
const names = COLUMNS.map(([n]) => n);
const target = {
  ref: { db: "bench", table: "bench_rows" },
  columns: new Set(names),
  key: ["id"],
  keyKind: "primary",
  uniqueKeys: [["id"]],
};

let gcMs = 0;
let minor = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
  }
}).observe({ entryTypes: ["gc"] });

let rows = 0;
let bytes = 0;
const t0 = performance.now();
while (performance.now() - t0 < seconds * 1000) {
  // Two messages per group, as the bulk bench's groups (2,500 rows at most) hold.
  for (let m = 0; m < messages.length; m += 2) {
    const changes = [];
    for (const data of [messages[m], messages[m + 1]]) {
      for (const d of decodeBatchChanges(data).changes) {
        if (stage === "decode") {
          changes.push(d);
          continue;
        }
        d.seq = m;
        d.target = target;
        d.columns = names;
        d.keys = null;
        changes.push(d);
      }
    }
    if (stage === "keys") {
      const last = new Map();
      for (const c of changes) for (const k of keysOf(c)) last.set(k, c);
    } else if (stage === "plan" || stage === "all")
      // The planner writes the text as UTF-8 bytes (SqlBytes), as the socket gets it.
      for (const st of planLane(changes, 1000)) bytes += st.bytes?.byteLength ?? Buffer.byteLength(st.sql);
    rows += changes.length;
  }
}
const s = (performance.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 50)); // the GC entries arrive between turns of the loop
console.log(
  `${Math.round(rows / s).toLocaleString("en")} rows/s; GC ${(gcMs / 10 / s).toFixed(1)}% of the time; ${((minor * 100_000) / rows).toFixed(1)} scavenges per 100,000 rows; ${Math.round(bytes / rows)} SQL bytes/row`,
);
