/**
 * What `dfs ctl` can call, apart from ctl.ts so that building the command line (and --help) does
 * not load the gRPC client.
 */

/** The services that have a control plane. */
export const SERVICE_KINDS = ["capture", "relmgr", "dpu"] as const;

/** The calls `dfs ctl` makes; `dfs ctl --help` lists them. */
export const CTL_CALLS = [
  "health",
  "status",
  "pause",
  "resume",
  "activity",
  "snapshot",
  "set-position",
  "dlq-list",
  "dlq-replay",
] as const;

export type CtlCall = (typeof CTL_CALLS)[number];
