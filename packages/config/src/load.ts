/**
 * Reading the config: YAML file, then environment overrides, then the schema. Every problem is
 * collected and reported at once, each naming where it is (`file: dotted.path: message`, or
 * `ENV_VAR (dotted.path): message` for a value from the environment). Secrets never appear.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { ConfigError, displayUrl, ErrorCode } from "@dfs/common";
import { LineCounter, parseDocument } from "yaml";
import type * as z from "zod";
import { displayNatsUrls, readSecretFile, show } from "./fields.js";
import { configSchema, type DfsConfig, knownKeysAt } from "./schema.js";

/** One environment variable that overrides one config key. */
export interface EnvOverride {
  env: string;
  /** Dotted config path it sets. */
  path: string;
  /** A secret (or a value that may hold one, like a URL): `<env>_FILE` may name a file holding it. */
  secret?: true;
}

/**
 * The environment overrides: the only list of them (docs/configuration.md reproduces it). Applied
 * after the YAML is read, so they win over the file. Unset or empty variables are ignored;
 * surrounding whitespace is removed; numbers are coerced by the schema.
 */
export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { env: "DFS_SOURCE_ID", path: "source.id" },
  { env: "DFS_SOURCE_URL", path: "source.url", secret: true },
  { env: "DFS_SOURCE_PASSWORD", path: "source.password", secret: true },
  { env: "DFS_SOURCE_SERVER_ID", path: "source.serverId" },
  { env: "DFS_START_FROM", path: "source.start.from" },
  { env: "DFS_TARGET_URL", path: "target.url", secret: true },
  { env: "DFS_TARGET_PASSWORD", path: "target.password", secret: true },
  { env: "DFS_TARGET_DATABASE", path: "target.database" },
  { env: "DFS_NATS_URL", path: "nats.url", secret: true },
  { env: "DFS_NATS_TOKEN", path: "nats.token", secret: true },
  { env: "DFS_NATS_USER", path: "nats.user" },
  { env: "DFS_NATS_PASSWORD", path: "nats.password", secret: true },
  { env: "DFS_NATS_NKEY_SEED", path: "nats.nkeySeed", secret: true },
  { env: "DFS_NATS_CREDS_FILE", path: "nats.credsFile" },
  { env: "DFS_JOURNAL_PATH", path: "capture.journal.path" },
  { env: "DFS_CAPTURE_HTTP_PORT", path: "capture.http.port" },
  { env: "DFS_CAPTURE_GRPC_PORT", path: "capture.grpc.port" },
  { env: "DFS_DPU_GROUP", path: "dpu.group" },
  { env: "DFS_DPU_HTTP_PORT", path: "dpu.http.port" },
  { env: "DFS_DPU_GRPC_PORT", path: "dpu.grpc.port" },
  { env: "DFS_RELMGR_HTTP_PORT", path: "relmgr.http.port" },
  { env: "DFS_RELMGR_GRPC_PORT", path: "relmgr.grpc.port" },
  { env: "DFS_MONITOR_PORT", path: "monitor.http.port" },
  { env: "DFS_MONITOR_HOST", path: "monitor.http.host" },
  { env: "DFS_LOG_LEVEL", path: "log.level" },
  { env: "DFS_CONTROL_TOKEN", path: "control.token", secret: true },
  { env: "DFS_CONTROL_HOST", path: "control.host" },
];

/**
 * The value of a secret's environment variable `name`, or of the file `<name>_FILE` names (its
 * trailing newline removed), or undefined when neither is set. Throws an Error naming the variable
 * and the file when the file cannot be read, or when both are set.
 */
export function envSecret(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const direct = env[name]?.trim();
  const file = env[`${name}_FILE`]?.trim();
  if (file === undefined || file === "") return direct === "" ? undefined : direct;
  if (direct !== undefined && direct !== "")
    throw new Error(`${name} and ${name}_FILE are both set; set one`);
  try {
    return readSecretFile(file);
  } catch (err) {
    throw new Error(`${name}_FILE: ${(err as Error).message}`);
  }
}

/** Origin named in messages when no config file is given. */
export const NO_FILE_ORIGIN = "(no config file)";

type Mapping = Record<string, unknown>;

const isMapping = (v: unknown): v is Mapping =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** A copy without keys whose value is empty (YAML null): `capture:` with nothing under it = absent. */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (!isMapping(v)) return v;
  const out: Mapping = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNulls(x);
  return out;
}

/**
 * Applies ENV_OVERRIDES to a copy of `raw` (a secret's `<VAR>_FILE` read in place of `<VAR>`);
 * returns it, which paths came from which variable, and the variables that could not be read.
 */
function applyEnv(
  raw: Mapping,
  env: NodeJS.ProcessEnv,
): { data: Mapping; fromEnv: Map<string, string>; problems: string[] } {
  const data: Mapping = { ...raw };
  const fromEnv = new Map<string, string>();
  const problems: string[] = [];
  for (const { env: name, path, secret } of ENV_OVERRIDES) {
    let value: string | undefined;
    try {
      value = secret ? envSecret(env, name) : env[name]?.trim();
    } catch (err) {
      problems.push(`${(err as Error).message} (${path})`);
      continue;
    }
    if (value === undefined || value === "") continue;
    const source = secret && env[`${name}_FILE`]?.trim() ? `${name}_FILE` : name;
    const keys = path.split(".");
    let obj: Mapping | undefined = data;
    for (const key of keys.slice(0, -1)) {
      const child: unknown = obj[key];
      if (child !== undefined && !isMapping(child)) {
        obj = undefined; // not a mapping: the schema reports the bad section
        break;
      }
      const copy: Mapping = { ...child };
      obj[key] = copy;
      obj = copy;
    }
    if (obj === undefined) continue;
    obj[keys.at(-1)!] = value;
    fromEnv.set(path, source);
  }
  return { data, fromEnv, problems };
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  object: "a mapping",
  array: "a list, e.g. [a, b]",
};

/** Messages for zod's built-in checks; the schema's own checks carry their messages. */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === "invalid_type") {
    if (iss.input === undefined) return "is required";
    return `must be ${TYPE_NAMES[iss.expected] ?? iss.expected} (got ${show(iss.input)})`;
  }
  return undefined;
};

function dotted(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function unknownKeyMessage(path: readonly PropertyKey[], key: string): string {
  const known = knownKeysAt(path) ?? [];
  const close = known
    .map((k) => ({ k, d: editDistance(k.toLowerCase(), key.toLowerCase()) }))
    .filter(({ d }) => d <= Math.max(1, Math.floor(key.length / 4)))
    .sort((a, b) => a.d - b.d)[0];
  if (close) return `unknown key (did you mean "${close.k}"?)`;
  return known.length ? `unknown key (allowed: ${known.join(", ")})` : "unknown key";
}

/** One line per problem, each naming where it is. */
function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  origin: string,
  fromEnv: Map<string, string>,
): string[] {
  const where = (path: readonly PropertyKey[]) => {
    const p = dotted(path);
    const env = fromEnv.get(p);
    if (env) return `${env} (${p})`;
    return p ? `${origin}: ${p}` : origin;
  };
  const problems: string[] = [];
  for (const iss of issues) {
    if (iss.code === "unrecognized_keys") {
      for (const key of iss.keys)
        problems.push(`${where([...iss.path, key])}: ${unknownKeyMessage(iss.path, key)}`);
    } else {
      problems.push(`${where(iss.path)}: ${iss.message}`);
    }
  }
  return problems;
}

/**
 * Applies the environment overrides to `raw` (the parsed YAML), then validates and resolves it.
 * Throws ConfigError(CONFIG_INVALID) whose `problems` lists every problem found, each as
 * `<origin>: <dotted.path>: <message>` or `<ENV_VAR> (<dotted.path>): <message>`.
 */
export function parseConfig(
  raw: unknown,
  env: NodeJS.ProcessEnv = process.env,
  origin = "config",
): DfsConfig {
  const input = dropNulls(raw ?? {});
  if (!isMapping(input)) {
    const problem = `${origin}: the top level must be a mapping of sections (source, nats, capture, ...) (got ${show(input)})`;
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [problem], { details: { origin } });
  }
  const { data, fromEnv, problems: envProblems } = applyEnv(input, env);
  const result = configSchema.safeParse(data, { error: errorMap });
  if (result.success && envProblems.length === 0) return result.data;
  const problems = [
    ...envProblems,
    ...(result.success ? [] : formatIssues(result.error.issues, origin, fromEnv)),
  ];
  throw new ConfigError(ErrorCode.CONFIG_INVALID, problems, { details: { origin } });
}

function readError(file: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason =
    code === "ENOENT"
      ? "no such file"
      : code === "EACCES"
        ? "permission denied"
        : code === "EISDIR"
          ? "is a directory"
          : (err as Error).message;
  const full = isAbsolute(file) ? "" : ` (${resolve(file)})`;
  return new ConfigError(
    ErrorCode.CONFIG_UNREADABLE,
    [`${file}: cannot read the config file${full}: ${reason}`],
    {
      cause: err,
      details: { file },
    },
  );
}

/** Parses YAML text; syntax errors become ConfigError(CONFIG_UNREADABLE) with line and column. */
function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems = doc.errors.map((e) => {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    // Only the first line of yaml's message: later lines may quote the source text (and a secret).
    return `${file}:${line}:${col}: YAML syntax error: ${e.message.split("\n")[0]}`;
  });
  if (problems.length > 0)
    throw new ConfigError(ErrorCode.CONFIG_UNREADABLE, problems, { details: { file } });
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    const problem = `${file}: YAML cannot be loaded: ${(err as Error).message.split("\n")[0]}`;
    throw new ConfigError(ErrorCode.CONFIG_UNREADABLE, [problem], { details: { file } });
  }
}

/**
 * Reads the YAML config file (or nothing when `file` is undefined: then only the environment and
 * defaults), applies the environment overrides and validates. A missing file or bad YAML throws
 * ConfigError(CONFIG_UNREADABLE); an invalid config throws ConfigError(CONFIG_INVALID).
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): DfsConfig {
  if (file === undefined) return parseConfig({}, env, NO_FILE_ORIGIN);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw readError(file, err);
  }
  return parseConfig(parseYaml(text, file), env, file);
}

const SECRET_KEY = /token|password|secret|seed/i;
export const REDACTED = "[redacted]";

function scrub(v: unknown, path: string): unknown {
  if (Array.isArray(v)) return v.map((x, i) => scrub(x, `${path}[${i}]`));
  if (isMapping(v)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrub(x, path ? `${path}.${k}` : k)]));
  }
  if (typeof v !== "string") return v;
  const key = path.slice(path.lastIndexOf(".") + 1);
  if (SECRET_KEY.test(key)) return REDACTED;
  if (path === "nats.url") return displayNatsUrls(v);
  if (/url$/i.test(key)) return displayUrl(v);
  return v;
}

/** A copy of the config safe to log: URLs without passwords, tokens replaced by "[redacted]". */
export function describeConfig(cfg: DfsConfig): Record<string, unknown> {
  return scrub(cfg, "") as Record<string, unknown>;
}
