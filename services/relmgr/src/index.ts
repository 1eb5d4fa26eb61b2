/**
 * @dfs/relmgr: the relationship manager. Reads the foreign-key graph of the captured tables (plus
 * declared relationships), derives table groups, publishes the plan DPUs follow (NATS KV), keeps
 * it current from the stream's schema changes, and answers graph, group, key-map and orphan
 * questions on its control plane. See docs/relmgr.md.
 */

export { discoverGraph, type Graph, type Relationship } from "./graph.js";
export { derivePlan, groupNameOf } from "./plan.js";
export { type RelmgrDeps, type RelmgrService, type RelmgrStatus, startRelmgr } from "./service.js";
