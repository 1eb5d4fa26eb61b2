import { randomBytes } from "node:crypto";
import type { DfsConfig } from "@dfs/config";

/** A service started in this process, and the ports it actually bound. */
export interface Hosted {
  kind: "capture" | "relmgr" | "dpu";
  endpoints: { http: number; grpc: number };
}

/**
 * The config the monitor gets when it runs beside the services it watches (`dfs run`, the demo):
 * it watches exactly those, at the ports they bound.
 */
export function monitorConfigFor(cfg: DfsConfig, hosted: readonly Hosted[]): DfsConfig {
  // The control planes listen on control.host; a wildcard address is reached on loopback.
  const h = cfg.control.host;
  const host = h === "0.0.0.0" || h === "::" ? "127.0.0.1" : h.includes(":") ? `[${h}]` : h;
  return {
    ...cfg,
    monitor: {
      ...cfg.monitor,
      services: hosted.map((s) => ({
        kind: s.kind,
        name: s.kind === "dpu" ? `dpu-${cfg.dpu.group}` : s.kind,
        grpc: `${host}:${s.endpoints.grpc}`,
        http: `http://127.0.0.1:${s.endpoints.http}`,
      })),
    },
  };
}

/** A local run without control.token gets a random one, printed once, so the monitor can sign in. */
export function ensureControlToken(cfg: DfsConfig): { cfg: DfsConfig; generated: boolean } {
  if (cfg.control.token) return { cfg, generated: false };
  return {
    cfg: { ...cfg, control: { ...cfg.control, token: randomBytes(12).toString("base64url") } },
    generated: true,
  };
}
