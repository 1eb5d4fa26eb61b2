/**
 * Field types shared by the config schema: integers, sizes and durations that accept numbers or
 * strings, secrets, URLs and name patterns. Every failure message says what is accepted and shows
 * the bad value (never for secrets).
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { splitQualified } from "@dfs/codec";
import { displayUrl, parseBytes, parseDurationMs } from "@dfs/common";
import { mysqlUrlProblem, parseMysqlUrl } from "@dfs/mysql";
import * as z from "zod";

/** Longest delay Node timers accept (setTimeout fires at once beyond 2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * A value as it appears in an error message: strings quoted and cut short; a URL with credentials
 * (a source URL pasted under the wrong key) without its password.
 */
export function show(v: unknown): string {
  if (typeof v === "string") {
    const s = /:\/\/[^/]*@/.test(v) ? displayUrl(v) : v;
    return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
  }
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null (an empty value)";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

function numberOrString(message: (input: unknown) => string) {
  return z.union([z.number(), z.string()], { error: (iss) => message(iss.input) });
}

/**
 * An integer from `min` to `max`. Strings of digits are coerced, so that environment variables
 * and quoted YAML values work.
 */
export function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  const kind = min === 1 ? "a positive integer" : min === 0 ? "a non-negative integer" : "an integer";
  const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`;
  const typeMsg = (v: unknown) => `must be ${kind} (got ${show(v)})`;
  return numberOrString(typeMsg).transform((v, ctx) => {
    const n = typeof v === "string" && /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : v;
    if (typeof n !== "number" || !Number.isSafeInteger(n)) {
      ctx.addIssue({ code: "custom", message: typeMsg(v) });
      return z.NEVER;
    }
    if (n < min || n > max) {
      ctx.addIssue({ code: "custom", message: `must be ${range} (got ${n})` });
      return z.NEVER;
    }
    return n;
  });
}

/**
 * A size in bytes: a number, or a string with a binary unit ("512KiB", "64MiB", "2GiB"; K, M, G
 * and T always mean powers of 1024). With `unlimited`, -1 means no limit.
 */
export function size(opts: { min?: number; unlimited?: boolean } = {}) {
  const min = opts.min ?? 1;
  const forms = `a number of bytes or a size like 512KiB, 64MiB, 2GiB${opts.unlimited ? ", or -1 for unlimited" : ""}`;
  const typeMsg = (v: unknown) => `must be ${forms} (got ${show(v)})`;
  return numberOrString(typeMsg).transform((v, ctx) => {
    if (opts.unlimited && (v === -1 || (typeof v === "string" && v.trim() === "-1"))) return -1;
    let n: number;
    try {
      n = parseBytes(v);
    } catch {
      ctx.addIssue({ code: "custom", message: typeMsg(v) });
      return z.NEVER;
    }
    if (!Number.isSafeInteger(n) || n < min) {
      ctx.addIssue({
        code: "custom",
        message: `must be a whole number of bytes, at least ${min} (got ${show(v)})`,
      });
      return z.NEVER;
    }
    return n;
  });
}

/**
 * A duration in milliseconds: a number, or a string with a unit ("500ms", "30s", "5m", "2h",
 * "7d"; no unit means ms). `max` defaults to the longest delay a Node timer accepts.
 */
export function duration(opts: { min?: number; max?: number } = {}) {
  const min = opts.min ?? 1;
  const max = opts.max ?? MAX_TIMER_MS;
  const forms = "a number of milliseconds or a duration like 500ms, 30s, 5m, 2h, 7d";
  const typeMsg = (v: unknown) => `must be ${forms} (got ${show(v)})`;
  return numberOrString(typeMsg).transform((v, ctx) => {
    let n: number;
    try {
      n = parseDurationMs(v);
    } catch {
      ctx.addIssue({ code: "custom", message: typeMsg(v) });
      return z.NEVER;
    }
    if (!Number.isFinite(n) || n < min || n > max) {
      ctx.addIssue({ code: "custom", message: `must be between ${min} ms and ${max} ms (got ${show(v)})` });
      return z.NEVER;
    }
    return Math.round(n);
  });
}

/** Why a file cannot be read, in a few words (never its contents). */
export function fileProblem(path: string): string | undefined {
  try {
    if (statSync(path).isDirectory()) return "is a directory";
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? "no such file"
      : code === "EACCES"
        ? "permission denied"
        : (err as Error).message;
  }
}

/**
 * A secret read from a file: its contents without the trailing newline (files written by `echo`
 * or mounted from a Kubernetes Secret often end in one). Throws an Error naming the file.
 */
export function readSecretFile(path: string): string {
  const problem = fileProblem(path);
  if (problem) throw new Error(`cannot read ${path} (${problem})`);
  return readFileSync(path, "utf8").replace(/\r?\n$/, "");
}

/**
 * A secret string (password, token, seed): error messages never show the value. Written either
 * inline or as `{ file: /path }`, read once when the config is loaded.
 */
export function secret() {
  const inline = z
    .string({
      error: (iss) =>
        iss.input === undefined ? "is required" : "must be a string (quote it in YAML) or { file: /path }",
    })
    .min(1, "must not be empty (leave the key out instead)");
  const fromFile = z.strictObject({ file: z.string().min(1, "must be a file path") });
  return z.union([inline, fromFile]).transform((v, ctx) => {
    if (typeof v === "string") return v;
    try {
      const value = readSecretFile(v.file);
      if (value !== "") return value;
      ctx.addIssue({ code: "custom", message: `the file ${v.file} is empty` });
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
    return z.NEVER;
  });
}

/** A path to a file that must be readable when the config is loaded (certificates, keys, creds). */
export function readableFile() {
  return z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a file path") })
    .min(1, "must not be empty (leave the key out instead)")
    .superRefine((path, ctx) => {
      const problem = fileProblem(path);
      if (problem) ctx.addIssue({ code: "custom", message: `cannot read ${path} (${problem})` });
    });
}

/** A MySQL/MariaDB URL, checked with the same rules as parseMysqlUrl. */
export function mysqlUrl() {
  return z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a mysql:// URL string") })
    .superRefine((url, ctx) => {
      const problem = mysqlUrlProblem(url);
      if (problem) {
        ctx.addIssue({ code: "custom", message: `${problem} (got ${JSON.stringify(displayUrl(url))})` });
        return;
      }
      const { tls } = parseMysqlUrl(url);
      for (const [param, path] of [
        ["ssl-ca", tls?.ca],
        ["ssl-cert", tls?.cert],
        ["ssl-key", tls?.key],
      ] as const) {
        const unreadable = path === undefined ? undefined : fileProblem(path);
        if (unreadable)
          ctx.addIssue({ code: "custom", message: `${param}: cannot read ${path} (${unreadable})` });
      }
    });
}

const NATS_SCHEMES = new Set(["nats:", "tls:", "ws:", "wss:"]);

/** One entry of a NATS server list, safe to show; anything but a plain `[scheme://]host[:port]` is hidden. */
export function displayNatsUrl(url: string): string {
  if (url.includes("@")) return displayUrl(url, true);
  return /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*)(:\d+)?\/?$/.test(url)
    ? url
    : "(url not shown)";
}

/**
 * Masks every URL in a comma-separated NATS server list. An entry with "@" but no scheme means a
 * comma split a password in two: then nothing is shown.
 */
export function displayNatsUrls(urls: string): string {
  const list = urls.split(",").map((u) => u.trim());
  if (list.some((u) => u.includes("@") && !u.includes("://"))) return "(urls not shown)";
  return list.map(displayNatsUrl).join(",");
}

/** One NATS server URL or a comma-separated list; `host:port` without a scheme means nats://. */
export function natsUrl() {
  return z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a URL string") })
    .superRefine((urls, ctx) => {
      if (displayNatsUrls(urls) === "(urls not shown)") {
        const message =
          'has an entry with "@" but no scheme; write nats://user:password@host and percent-encode "," as %2C';
        ctx.addIssue({ code: "custom", message });
        return;
      }
      for (const raw of urls.split(",")) {
        const url = raw.trim();
        let ok = false;
        try {
          const u = new URL(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) ? url : `nats://${url}`);
          ok = NATS_SCHEMES.has(u.protocol) && u.hostname !== "" && u.pathname.replace("/", "") === "";
        } catch {
          ok = false;
        }
        if (!ok) {
          const msg = `each entry must be a NATS server URL like nats://host:4222 (got ${JSON.stringify(displayNatsUrl(url))})`;
          ctx.addIssue({ code: "custom", message: msg });
        }
      }
    });
}

/**
 * Name patterns with `*` and `?` wildcards: `parts` is 1 for `db`, 2 for `db.table`, 3 for
 * `db.table.column`.
 */
export function patterns(parts: 1 | 2 | 3) {
  const example = ["", '"shop" or "shop_*"', '"shop.orders" or "shop.*"', '"shop.users.password"'][parts];
  const shape = ["", "a database name pattern", 'a "db.table" pattern', 'a "db.table.column" pattern'][parts];
  const item = z.string().superRefine((p, ctx) => {
    // A part that holds "." is quoted with backticks, as in MySQL: "`my.db`.orders".
    const segs = splitQualified(p);
    if (!segs || segs.length !== parts || segs.some((s) => s.trim() === "")) {
      const quoting = ' (quote a name that holds "." with backticks: "`my.db`")';
      ctx.addIssue({
        code: "custom",
        message: `must be ${shape} like ${example}${quoting} (got ${show(p)})`,
      });
    }
  });
  return z.array(item).default([]);
}

/** One of `values`; the message lists them. */
export const enumOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, {
    error: (iss) => `must be one of ${values.map((v) => `"${v}"`).join(", ")} (got ${show(iss.input)})`,
  });
