/**
 * Hook modules: what a mapping's declarative form cannot say. A module (JavaScript, or TypeScript
 * whose types are stripped: node's own stripper where it has one, amaro on node 20) exports
 * `map(row, context)`: it gets the mapped target row (its own copy) and returns the row to write,
 * or null when the row is not in the target (as a filter that is false). A hook that throws sends
 * that change to the dead letters with the module's name and its message.
 */
import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { SqlValue, TableRef } from "@dfs/codec";

export interface HookContext {
  /** The source change's operation (c insert, u update, d delete, r snapshot read). */
  op: "c" | "u" | "d" | "r";
  /** Which image of the change the row is. */
  image: "before" | "after";
  source: TableRef;
  target: TableRef;
  /** The source row the target row was mapped from (read-only). */
  sourceRow: Readonly<Record<string, SqlValue>>;
}

export type Hook = (
  row: Record<string, SqlValue>,
  context: HookContext,
) => Record<string, SqlValue> | null | undefined;

/** Loads each module once; a module that cannot be loaded is an Error naming it and why. */
export async function loadHooks(
  paths: readonly string[],
  baseDir: string,
): Promise<Map<string, Hook | Error>> {
  const out = new Map<string, Hook | Error>();
  for (const p of new Set(paths)) out.set(p, await loadHook(p, baseDir).catch((e: Error) => e));
  return out;
}

async function loadHook(path: string, baseDir: string): Promise<Hook> {
  const file = isAbsolute(path) ? path : resolve(baseDir, path);
  let mod: Record<string, unknown>;
  try {
    if (/\.[mc]?ts$/.test(file)) {
      // Types stripped to plain JavaScript (positions kept), loaded from memory: relative imports
      // are not available to a TypeScript hook on node 20; a JavaScript module may use them.
      const code = await stripTypes(await readFile(file, "utf8"));
      mod = await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
    } else mod = await import(pathToFileURL(file).href);
  } catch (err) {
    throw new Error(`hooks module ${path} cannot be loaded: ${(err as Error).message}`);
  }
  const map = (mod.map ?? (mod.default as Record<string, unknown> | undefined)?.map) as unknown;
  if (typeof map !== "function")
    throw new Error(`hooks module ${path} does not export a function map(row, context)`);
  return map as Hook;
}

/**
 * TypeScript to JavaScript by removing the types (positions kept): node's own stripper where it
 * has one (22.13 and later), else amaro, the package node's is built from (node 20).
 */
async function stripTypes(source: string): Promise<string> {
  const mod = (await import("node:module")) as { stripTypeScriptTypes?: (code: string) => string };
  if (typeof mod.stripTypeScriptTypes === "function") return mod.stripTypeScriptTypes(source);
  const { transformSync } = await import("amaro");
  return transformSync(source, { mode: "strip-only" }).code;
}
