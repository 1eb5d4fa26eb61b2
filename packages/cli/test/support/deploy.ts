// Reading the deploy files the way Docker and Compose read them: the Dockerfile's instructions,
// .dockerignore's patterns and docker-compose.yml (YAML with merge keys). Used by the deploy unit
// test and by the image test, which replays the Dockerfile's build steps without Docker.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

/** The repository's root: the first folder above this file with a Dockerfile. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "Dockerfile")) && existsSync(join(dir, "package.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("no folder with a Dockerfile above this test");
    dir = parent;
  }
}

export interface Instruction {
  /** Upper-case instruction name: FROM, RUN, COPY, ENV, ... */
  cmd: string;
  /** Everything after the name, continuation lines joined with a space. */
  rest: string;
  /** The exec form's arguments when `rest` is a JSON array. */
  json?: string[];
  line: number;
}

export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults. */
  args: Record<string, string>;
  stages: Stage[];
}

/** Parses a Dockerfile: comments, line continuations (with comment lines inside), exec and shell forms. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    const start = i + 1;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, " ");
      i++;
      if (/^\s*#/.test(lines[i]!)) continue;
      line += lines[i]!.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse ${JSON.stringify(line)}`);
    const rest = m[2]!.trim().replace(/\s+/g, " ");
    let json: string[] | undefined;
    if (rest.startsWith("[")) {
      try {
        json = JSON.parse(rest) as string[];
      } catch {
        json = undefined;
      }
    }
    instructions.push({ cmd: m[1]!.toUpperCase(), rest, json, line: start });
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.cmd === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.rest);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: bad FROM ${ins.rest}`);
      const from = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? "");
      stages.push({ from, name: m[2], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.cmd !== "ARG") throw new Error(`Dockerfile line ${ins.line}: ${ins.cmd} before FROM`);
      const [k, v] = ins.rest.split("=", 2);
      args[k!] = v ?? "";
    } else stages.at(-1)!.instructions.push(ins);
  }
  return { args, stages };
}

/** The KEY=value pairs of an ENV instruction (quotes removed). */
export function envPairs(rest: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) out[m[1]!] = m[3] ?? m[2]!;
  return out;
}

/** COPY's flags (--from, --chown ...), its sources and its destination. */
export function copyParts(ins: Instruction): {
  flags: Record<string, string>;
  sources: string[];
  dest: string;
} {
  const words = ins.json ?? ins.rest.split(" ");
  const flags: Record<string, string> = {};
  const paths: string[] = [];
  for (const w of words) {
    const f = /^--([a-z-]+)(?:=(.*))?$/.exec(w);
    if (f && paths.length === 0) flags[f[1]!] = f[2] ?? "true";
    else paths.push(w);
  }
  if (paths.length < 2) throw new Error(`Dockerfile line ${ins.line}: COPY needs a source and a destination`);
  return { flags, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** One .dockerignore pattern as Docker reads it: a path glob, `**` for any folders, `!` to re-include. */
interface IgnoreRule {
  negate: boolean;
  re: RegExp;
}

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      i++;
      if (glob[i + 1] === "/") {
        i++;
        re += "(?:.*/)?";
      } else re += ".*";
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * A predicate telling whether a context path (relative, `/`-separated) is left out by these
 * .dockerignore lines. As Docker does: the last matching rule wins, and a rule matching a folder
 * matches everything in it.
 */
export function dockerignore(text: string): (path: string) => boolean {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    const pattern = posix.normalize(line.slice(negate ? 1 : 0).trim()).replace(/^\/+|\/+$/g, "");
    rules.push({ negate, re: globToRegExp(pattern) });
  }
  return (path: string) => {
    const parts = path.split("/");
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let excluded = false;
    for (const rule of rules) if (prefixes.some((p) => rule.re.test(p))) excluded = !rule.negate;
    return excluded;
  };
}

/**
 * Does what `COPY <sources> <dest>` of the build context does, from `context` into `workdir`
 * (the image's WORKDIR), leaving out what .dockerignore leaves out of the context. Returns the
 * context paths copied.
 */
export function copyFromContext(
  context: string,
  ignored: (path: string) => boolean,
  sources: string[],
  dest: string,
  workdir: string,
): string[] {
  const copied: string[] = [];
  const destAbs = join(workdir, dest);
  const copyTree = (rel: string, to: string) => {
    if (ignored(rel)) return;
    const abs = join(context, rel);
    if (statSync(abs).isDirectory()) {
      mkdirSync(to, { recursive: true });
      for (const name of readdirSync(abs).sort()) copyTree(posix.join(rel, name), join(to, name));
    } else {
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(abs, to);
      copied.push(rel);
    }
  };
  for (const src of sources) {
    const rel = posix.normalize(src).replace(/^\.?\/+|\/+$/g, "");
    if (rel === "" || rel === ".") throw new Error("COPY of the whole context is not replayed");
    if (!existsSync(join(context, rel))) throw new Error(`COPY ${src}: not in the build context`);
    if (ignored(rel)) throw new Error(`COPY ${src}: left out of the build context by .dockerignore`);
    if (statSync(join(context, rel)).isDirectory()) copyTree(rel, destAbs);
    else copyTree(rel, dest.endsWith("/") ? join(destAbs, posix.basename(rel)) : destAbs);
  }
  return copied;
}

// biome-ignore lint/suspicious/noExplicitAny: the compose file is walked untyped
export type Json = any;

/** docker-compose.yml as Compose reads it: YAML 1.2 with `<<` merge keys resolved. */
export function loadCompose(root = repoRoot()): Json {
  return parseYaml(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true });
}

/** A compose service's environment as a map (the list form `KEY=value` too). */
export function serviceEnv(service: Json): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    const out: Record<string, string> = {};
    for (const item of env as string[]) {
      const eq = item.indexOf("=");
      out[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? "" : item.slice(eq + 1);
    }
    return out;
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? "" : String(v)]));
}

/** `${VAR:-default}` as Compose interpolates it with no such variable set: the default. */
export function interpolateDefaults(value: string): string {
  return value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_, _name, def) => def ?? "");
}
