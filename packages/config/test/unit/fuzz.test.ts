// Fuzz: malformed configs. From valid configs (the examples, with every section filled), seeded
// mutations at every known key (wrong types, negative, huge and non-finite numbers, random and
// unicode strings, bad URLs, deleted keys, unknown keys, deep nesting) go through parseConfig, and
// mutated YAML text (random bytes, truncations, deleted lines, inserted characters, deep nesting,
// alias bombs) through loadConfig. Each either parses or throws ConfigError whose problems each name
// where (`origin: dotted.path: ...` or `file:line:col: ...`); never another exception, never a hang,
// never a password in a message. DFS_TEST_SEED=<seed> repeats a run exactly.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ConfigError, type Random, seededRandom, testSeed } from "@dfs/common";
import { parse } from "yaml";
import { loadConfig, parseConfig } from "../../dist/index.js";
import { listConfigKeys } from "../../dist/schema.js";

const SEED = testSeed();
const OBJECT_CASES = 2_000;
const YAML_CASES = 600;
const TIME_BUDGET_MS = 30_000;
// A hang or a blow-up, not a speed measurement: generous, since the test machine may be busy.
const SLOW_MS = 10_000;
const PASSWORD = "S3cr3t-pw-fuzz";
const EXAMPLES = new URL("../../../../examples/", import.meta.url);

const tmp = mkdtempSync(join(tmpdir(), "dfs-config-fuzz-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

/** The examples, with a password in every URL and the optional sections present. */
function bases(): Obj[] {
  return ["sync.yaml", "pipeline.yaml"].map((f) => {
    const cfg = parse(readFileSync(new URL(f, EXAMPLES), "utf8")) as Obj;
    const source = cfg.source as Obj;
    source.url = `mysql://repl:${PASSWORD}@127.0.0.1:13306`;
    if (cfg.target) (cfg.target as Obj).url = `mysql://w:${PASSWORD}@127.0.0.1:13307`;
    cfg.nats = { url: `nats://u:${PASSWORD}@127.0.0.1:14222`, token: PASSWORD };
    cfg.control = { token: PASSWORD };
    cfg.dpu = { http: { port: 9103 }, batch: { maxRows: 500 } };
    cfg.monitor = { http: { port: 8080 } };
    return cfg;
  });
}

const KEYS = listConfigKeys();
const clone = (v: Obj): Obj => structuredClone(v);

function nested(depth: number, leaf: Json, r: Random): Json {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = r.chance(0.5) ? [v] : { a: v };
  return v;
}

function randomString(r: Random): string {
  const alphabet = [
    "a",
    "Z",
    "0",
    "-",
    "_",
    ".",
    "/",
    ":",
    "@",
    "%",
    " ",
    "\n",
    "\t",
    "\u0000",
    "é",
    "😀",
    "\u202e",
    "'",
    '"',
    "\\",
    "*",
    "$" + "{X}", // a placeholder some tools expand
    "&x",
    "!!",
  ];
  let s = "";
  for (let n = r.int(40); n > 0; n--) s += r.pick(alphabet);
  return s;
}

/** A value of a sort the key probably does not take. */
function badValue(r: Random): Json {
  const values: (() => Json)[] = [
    () => -1 - r.int(1_000_000),
    () => 0,
    () => r.pick([2 ** 53 + 2, 2 ** 64, 1e308, -1e308, Number.MAX_VALUE, 1.5, 0.0001]),
    () => r.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]),
    () => randomString(r),
    () =>
      r.pick([
        "",
        " ",
        "-5",
        "1e999",
        "0x10",
        "10 parsecs",
        "-1ms",
        "99999999999999999999h",
        "1.5.3",
        "true",
      ]),
    () =>
      r.pick([
        "mysql://",
        "mysql://u:p@",
        "http://127.0.0.1",
        "mysql://u:p@[::1",
        "mysql://h:99999",
        "::::",
        "nats://",
        "nats://a b",
        "mysql://%zz@h",
        `mysql://u:${PASSWORD}@h:-1/db?x=%`,
        `nats://u:${PASSWORD}@[bad`,
        `mysql://h/${"d".repeat(5000)}`,
      ]),
    () => r.chance(0.5),
    () => null,
    () => [],
    () => [randomString(r), r.int(10), null],
    () => ({}),
    () => ({ [randomString(r)]: randomString(r) }),
    () => nested(50 + r.int(2000), r.int(5), r),
    () => "x".repeat(r.int(200_000)),
  ];
  return r.pick(values)();
}

/** The parent object and key of a dotted path in `cfg`, creating mappings on the way. */
function slot(cfg: Obj, path: string): [Obj, string] | null {
  const keys = path.split(".");
  let obj: Obj = cfg;
  for (const k of keys.slice(0, -1)) {
    const next = obj[k];
    if (next === undefined) obj[k] = {};
    else if (typeof next !== "object" || next === null || Array.isArray(next)) return null;
    obj = obj[k] as Obj;
  }
  return [obj, keys.at(-1)!];
}

interface Mutation {
  what: string;
  /** The dotted path changed: some problem must name it, a part of it, or a key under it. */
  path: string;
  cfg: unknown;
}

function mutate(r: Random, base: Obj): Mutation {
  const cfg = clone(base);
  const key = r.pick(KEYS).path;
  const at = slot(cfg, key);
  const kind = r.int(10);
  if (!at || kind === 0) return { what: "the whole config replaced", path: "", cfg: badValue(r) };
  const [obj, last] = at;
  if (kind === 1) {
    delete obj[last];
    return { what: `${key} deleted`, path: key, cfg };
  }
  if (kind === 2) {
    const unknown = r.pick([
      "colour",
      "urls",
      "sourceId",
      randomString(r) || "x",
      "__proto__",
      "constructor",
    ]);
    obj[unknown] = badValue(r);
    return {
      what: `unknown key ${JSON.stringify(unknown)} beside ${key}`,
      path: key.split(".").slice(0, -1).join("."),
      cfg,
    };
  }
  obj[last] = badValue(r);
  return { what: `${key} = ${JSON.stringify(obj[last])?.slice(0, 80)}`, path: key, cfg };
}

let spentMs = 0;

/** Runs `fn`: it returns, or throws ConfigError whose problems pass `check`. Anything else fails. */
function expectParsedOrConfigError(
  what: string,
  fn: () => unknown,
  check: (problems: string[]) => void,
): "ok" | "error" {
  const started = performance.now();
  try {
    fn();
    return "ok";
  } catch (err) {
    if (!(err instanceof ConfigError))
      assert.fail(
        `seed ${SEED}: ${what}: threw ${(err as Error)?.constructor?.name} ${String(err).slice(0, 300)}, not a ConfigError`,
      );
    assert.ok(err.problems.length > 0, `seed ${SEED}: ${what}: a ConfigError without problems`);
    for (const p of err.problems)
      assert.ok(!p.includes(PASSWORD), `seed ${SEED}: ${what}: a problem shows the password: ${p}`);
    assert.ok(!err.message.includes(PASSWORD), `seed ${SEED}: ${what}: the message shows the password`);
    check(err.problems);
    return "error";
  } finally {
    const ms = performance.now() - started;
    spentMs += ms;
    assert.ok(ms < SLOW_MS, `seed ${SEED}: ${what}: took ${ms.toFixed(0)} ms`);
  }
}

test(`config fuzz (seed ${SEED}): mutated configs parse or name the path of each problem`, () => {
  const r = seededRandom(SEED);
  const configs = bases();
  for (const c of configs) parseConfig(c, {}, "fuzz"); // the bases are valid
  const outcomes = { ok: 0, error: 0 };
  for (let i = 0; i < OBJECT_CASES && spentMs < TIME_BUDGET_MS; i++) {
    const m = mutate(r, r.pick(configs));
    const what = `case ${i}: ${m.what}`;
    const outcome = expectParsedOrConfigError(
      what,
      () => parseConfig(m.cfg, {}, "fuzz"),
      (problems) => {
        for (const p of problems)
          assert.match(p, /^fuzz(: |$)/, `seed ${SEED}: ${what}: problem without its origin: ${p}`);
        if (m.path === "") return;
        // Some problem names the key changed, a section above it, or a key below it (cross-field
        // rules name the other key too).
        const top = m.path.split(".")[0]!;
        assert.ok(
          problems.some((p) => p.startsWith(`fuzz: ${top}`)),
          `seed ${SEED}: ${what}: no problem names ${m.path}:\n${problems.join("\n")}`,
        );
      },
    );
    outcomes[outcome]++;
  }
  // Most mutations are errors; some (a value the key takes after all) parse: both are exercised.
  assert.ok(outcomes.error > outcomes.ok, `seed ${SEED}: ${JSON.stringify(outcomes)}`);
  assert.ok(outcomes.ok > 0, `seed ${SEED}: ${JSON.stringify(outcomes)}`);
});

/** A mutation of YAML text. */
function mutateText(r: Random, text: string): { what: string; text: string | Buffer } {
  switch (r.int(8)) {
    case 0:
      return { what: "random bytes", text: r.bytes(r.int(2000)) };
    case 1: {
      const n = r.int(text.length);
      return { what: `cut at ${n}`, text: text.slice(0, n) };
    }
    case 2: {
      const lines = text.split("\n");
      lines.splice(r.int(lines.length), 1 + r.int(3));
      return { what: "lines deleted", text: lines.join("\n") };
    }
    case 3: {
      let t = text;
      for (let k = 1 + r.int(5); k > 0; k--) {
        const at = r.int(t.length);
        t =
          t.slice(0, at) +
          r.pick([":", "-", "\t", " ", "'", '"', "[", "{", "&a", "*a", "!!binary", "#", "\u0000", "%"]) +
          t.slice(at);
      }
      return { what: "characters inserted", text: t };
    }
    case 4: {
      const d = 100 + r.int(20_000);
      return { what: `nested ${d} deep`, text: `${text}\nextra: ${"[".repeat(d)}1${"]".repeat(d)}\n` };
    }
    case 5:
      // Billion laughs: aliases that would expand into gigabytes.
      return {
        what: "alias bomb",
        text: `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n${text}`,
      };
    case 6:
      return { what: "duplicate keys", text: `${text}\nsource:\n  id: again\n` };
    default:
      return {
        what: "a long line",
        text: `${text}\nlog:\n  level: ${"x".repeat(100_000 + r.int(400_000))}\n`,
      };
  }
}

test(`config fuzz (seed ${SEED}): mutated YAML loads or names the file and where`, () => {
  const r = seededRandom(SEED + 1);
  const texts = ["sync.yaml", "pipeline.yaml"].map((f) =>
    readFileSync(new URL(f, EXAMPLES), "utf8").replace("mysql://root@", `mysql://root:${PASSWORD}@`),
  );
  const file = join(tmp, "dfs.yaml");
  const outcomes = { ok: 0, error: 0 };
  for (let i = 0; i < YAML_CASES && spentMs < TIME_BUDGET_MS * 2; i++) {
    const m = mutateText(r, r.pick(texts));
    writeFileSync(file, m.text);
    const what = `yaml case ${i}: ${m.what}`;
    const outcome = expectParsedOrConfigError(
      what,
      () => loadConfig(file, {}),
      (problems) => {
        for (const p of problems)
          assert.ok(
            p.startsWith(file),
            `seed ${SEED}: ${what}: a problem that does not name the file: ${p.slice(0, 300)}`,
          );
      },
    );
    outcomes[outcome]++;
  }
  assert.ok(outcomes.error > 0, `seed ${SEED}: ${JSON.stringify(outcomes)}`);
});
