/**
 * The config sections of the services that only serve (relmgr's and the monitor's own keys) and
 * the list of services the monitor watches.
 */
import * as z from "zod";
import { duration, enumOf, int, show } from "./fields.js";
import { bindHost, serverTlsSchema } from "./security.js";

const SERVICE_KINDS = ["capture", "relmgr", "dpu"] as const;
const HOST_PORT = /^[A-Za-z0-9_.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

/** A service the monitor watches: its control plane and its HTTP endpoint. */
const watchedSchema = z.strictObject({
  kind: enumOf(SERVICE_KINDS).describe("Which service this is"),
  name: z.string().min(1).optional().describe("Shown in the monitor; default: the kind"),
  grpc: z
    .string()
    .regex(HOST_PORT, { error: (iss) => `must be host:port (got ${show(iss.input)})` })
    .describe("Address of its gRPC control plane"),
  http: z.url({ protocol: /^https?$/ }).describe("Base URL of its /metrics, /healthz, /readyz"),
});

export const relmgrSchema = z.strictObject({
  http: z
    .strictObject({
      port: int(0, 65535)
        .default(9102)
        .describe("HTTP port for /metrics, /healthz, /readyz (0 = any free port)"),
    })
    .prefault({})
    .describe("relmgr's HTTP endpoints"),
  grpc: z
    .strictObject({
      port: int(0, 65535).default(50102).describe("gRPC control-plane port (0 = any free port)"),
    })
    .prefault({})
    .describe("relmgr's control plane"),
  groups: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1 to 64 letters, digits, '_' or '-'"),
        tables: z.array(z.string().min(1)).min(1, "must name at least one table"),
      }),
    )
    .default([])
    .describe(
      'Table groups named and merged by hand: each item\'s tables ("db.table") and everything related to them form one group of that name',
    ),
  split: z
    .array(z.string().min(1))
    .default([])
    .describe('Tables ("db.table") put in a group of their own whatever their relationships'),
});

export const monitorSchema = z.strictObject({
  http: z
    .strictObject({
      port: int(0, 65535)
        .default(8080)
        .describe("Port of the web UI, its WebSocket and /metrics (0 = any free port)"),
      host: bindHost()
        .optional()
        .describe("Address the monitor listens on; default 127.0.0.1, or 0.0.0.0 with monitor.http.tls"),
      tls: serverTlsSchema
        .optional()
        .describe("HTTPS (and wss://) for the monitor; mutual TLS with requireClientCert"),
    })
    .prefault({})
    .describe("The monitor's HTTP endpoint"),
  pollIntervalMs: duration({ min: 100 })
    .prefault("1s")
    .describe("How often the monitor asks every service for its status"),
  services: z
    .array(watchedSchema)
    .default([
      { kind: "capture", grpc: "127.0.0.1:50101", http: "http://127.0.0.1:9101" },
      { kind: "dpu", name: "dpu-default", grpc: "127.0.0.1:50103", http: "http://127.0.0.1:9103" },
    ])
    .describe(
      "The services shown: kind, name, grpc (host:port), http (base URL); default: capture and dpu on this host's default ports",
    ),
});
