/**
 * Expressions of the pipeline's computed columns and row filters. The syntax is a small part of
 * JavaScript's (parsed by jsep): column names, numbers, strings, true/false/null, + - * / %,
 * comparisons, && || !, `a ? b : c` and the functions in FUNCTIONS. The values are exact: every
 * number is a decimal of up to 80 digits (BIGINT UNSIGNED and DECIMAL(65,30) lose nothing),
 * temporal values stay the text the source sent (DATETIME(6) keeps its microseconds), and NULL
 * behaves as in SQL (it spreads through arithmetic, comparisons and concat; a filter that is NULL
 * is not true).
 */
import type { SqlValue } from "@dfs/codec";
import { Decimal } from "decimal.js";
import jsep from "jsep";
import { exactPaths } from "./exact.js";

/** Exact decimals: 80 significant digits, half-up rounding (MySQL's), plain notation. */
export const Dec = Decimal.clone({
  precision: 80,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -100,
  toExpPos: 100,
});
export type Dec = InstanceType<typeof Dec>;

/** A value while an expression runs. */
export type ExprValue = null | string | boolean | Dec | Uint8Array;

/** A mistake in an expression's text or names, found when it is compiled. */
export class ExprError extends Error {}

/** A compiled expression: evaluates over a row (source column -> value). */
export interface Compiled {
  source: string;
  /** The source columns it reads. */
  columns: string[];
  run(row: Record<string, SqlValue>): ExprValue;
  /** Arithmetic over exact columns: the value as the target gets it (undefined: use run). */
  text?: (row: Record<string, SqlValue>) => string | null | undefined;
}

/** How a source column's values enter an expression: numbers as exact decimals. */
export interface ColumnKinds {
  has(column: string): boolean;
  numeric(column: string): boolean;
}

type Fn = (args: ExprValue[]) => ExprValue;

const isDec = (v: ExprValue): v is Dec => v instanceof Dec;

function num(v: ExprValue, what: string): Dec | null {
  if (v === null) return null;
  if (isDec(v)) return v;
  if (typeof v === "boolean") return new Dec(v ? 1 : 0);
  if (typeof v === "string" && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v))
    return new Dec(v.trim());
  throw new TypeError(`${what} needs a number, got ${describe(v)}`);
}

function text(v: ExprValue): string | null {
  if (v === null) return null;
  if (isDec(v)) return v.toFixed();
  if (typeof v === "boolean") return v ? "1" : "0";
  if (v instanceof Uint8Array) return Buffer.from(v).toString("utf8");
  return v;
}

function describe(v: ExprValue): string {
  if (v === null) return "NULL";
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (isDec(v)) return v.toFixed();
  if (typeof v === "boolean") return String(v);
  return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
}

/** SQL truth: NULL and zero are not true; a string is true when it is not empty. */
export function truthy(v: ExprValue): boolean {
  if (v === null) return false;
  if (isDec(v)) return !v.isZero();
  if (typeof v === "boolean") return v;
  return v.length > 0;
}

function compare(a: ExprValue, b: ExprValue): number | null {
  if (a === null || b === null) return null;
  const numeric = isDec(a) || isDec(b) || typeof a === "boolean" || typeof b === "boolean";
  if (numeric) return num(a, "a comparison")!.comparedTo(num(b, "a comparison")!);
  const x = text(a)!;
  const y = text(b)!;
  return x < y ? -1 : x > y ? 1 : 0;
}

function arity(name: string, args: ExprValue[], min: number, max = min): void {
  if (args.length < min || args.length > max)
    throw new TypeError(
      `${name}() takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`,
    );
}

const strFn =
  (name: string, f: (s: string) => string): Fn =>
  (args) => {
    arity(name, args, 1);
    const s = text(args[0]!);
    return s === null ? null : f(s);
  };

const decFn =
  (name: string, f: (d: Dec) => Dec): Fn =>
  (args) => {
    arity(name, args, 1);
    const d = num(args[0]!, `${name}()`);
    return d === null ? null : f(d);
  };

/** The first `n` characters of a temporal text, checked against its form. */
const datePart =
  (name: string, from: number, to: number): Fn =>
  (args) => {
    arity(name, args, 1);
    const s = text(args[0]!);
    if (s === null) return null;
    if (!/^\d{4}-\d{2}-\d{2}/.test(s))
      throw new TypeError(`${name}() needs a date or datetime, got ${describe(s)}`);
    return new Dec(s.slice(from, to));
  };

export const FUNCTIONS: Record<string, Fn> = {
  concat: (args) => {
    let out = "";
    for (const a of args) {
      const s = text(a);
      if (s === null) return null;
      out += s;
    }
    return out;
  },
  lower: strFn("lower", (s) => s.toLowerCase()),
  upper: strFn("upper", (s) => s.toUpperCase()),
  trim: strFn("trim", (s) => s.trim()),
  length: (args) => {
    arity("length", args, 1);
    const s = text(args[0]!);
    return s === null ? null : new Dec([...s].length);
  },
  substr: (args) => {
    arity("substr", args, 2, 3);
    const s = text(args[0]!);
    const from = num(args[1]!, "substr()");
    const len = args.length > 2 ? num(args[2]!, "substr()") : null;
    if (s === null || from === null || (args.length > 2 && len === null)) return null;
    const chars = [...s];
    const start = from.toNumber() > 0 ? from.toNumber() - 1 : Math.max(0, chars.length + from.toNumber());
    return chars.slice(start, len === null ? undefined : start + len.toNumber()).join("");
  },
  coalesce: (args) => args.find((a) => a !== null) ?? null,
  ifnull: (args) => {
    arity("ifnull", args, 2);
    return args[0] ?? args[1]!;
  },
  if: (args) => {
    arity("if", args, 3);
    return truthy(args[0]!) ? args[1]! : args[2]!;
  },
  round: (args) => {
    arity("round", args, 1, 2);
    const d = num(args[0]!, "round()");
    const places = args.length > 1 ? num(args[1]!, "round()") : new Dec(0);
    if (d === null || places === null) return null;
    return d.toDecimalPlaces(places.toNumber(), Dec.ROUND_HALF_UP);
  },
  floor: decFn("floor", (d) => d.floor()),
  ceil: decFn("ceil", (d) => d.ceil()),
  abs: decFn("abs", (d) => d.abs()),
  str: (args) => {
    arity("str", args, 1);
    return text(args[0]!);
  },
  num: (args) => {
    arity("num", args, 1);
    return num(args[0]!, "num()");
  },
  date: (args) => {
    arity("date", args, 1);
    const s = text(args[0]!);
    if (s === null) return null;
    if (!/^\d{4}-\d{2}-\d{2}/.test(s))
      throw new TypeError(`date() needs a date or datetime, got ${describe(s)}`);
    return s.slice(0, 10);
  },
  year: datePart("year", 0, 4),
  month: datePart("month", 5, 7),
  day: datePart("day", 8, 10),
};

const BINARY: Record<string, (a: ExprValue, b: ExprValue) => ExprValue> = {
  "+": (a, b) => arith(a, b, "+", (x, y) => x.plus(y)),
  "-": (a, b) => arith(a, b, "-", (x, y) => x.minus(y)),
  "*": (a, b) => arith(a, b, "*", (x, y) => x.times(y)),
  // Division by zero is NULL, as in MySQL.
  "/": (a, b) => arith(a, b, "/", (x, y) => (y.isZero() ? null : x.dividedBy(y))),
  "%": (a, b) => arith(a, b, "%", (x, y) => (y.isZero() ? null : x.modulo(y))),
  "==": (a, b) => cmp(a, b, (c) => c === 0),
  "===": (a, b) => cmp(a, b, (c) => c === 0),
  "!=": (a, b) => cmp(a, b, (c) => c !== 0),
  "!==": (a, b) => cmp(a, b, (c) => c !== 0),
  "<": (a, b) => cmp(a, b, (c) => c < 0),
  "<=": (a, b) => cmp(a, b, (c) => c <= 0),
  ">": (a, b) => cmp(a, b, (c) => c > 0),
  ">=": (a, b) => cmp(a, b, (c) => c >= 0),
};

function arith(a: ExprValue, b: ExprValue, op: string, f: (x: Dec, y: Dec) => Dec | null): ExprValue {
  const x = num(a, `"${op}"`);
  const y = num(b, `"${op}"`);
  return x === null || y === null ? null : f(x, y);
}

function cmp(a: ExprValue, b: ExprValue, f: (c: number) => boolean): ExprValue {
  const c = compare(a, b);
  return c === null ? null : f(c);
}

type Node = jsep.Expression;
type Eval = (row: Record<string, SqlValue>) => ExprValue;

/** A source value as an expression sees it. */
export function fromSql(v: SqlValue | undefined, numeric: boolean): ExprValue {
  if (v === null || v === undefined) return null;
  if (typeof v === "number" || typeof v === "bigint") return new Dec(v.toString());
  if (numeric && typeof v === "string") return new Dec(v);
  return v;
}

/** An expression's value as the target gets it: decimals as exact text, booleans as 1/0. */
export function toSql(v: ExprValue): SqlValue {
  if (v === null) return null;
  if (isDec(v)) return v.toFixed();
  if (typeof v === "boolean") return v ? 1 : 0;
  return v;
}

/** Compiles `source` for a table whose columns are `kinds`; names and syntax are checked now. */
export function compileExpr(source: string, kinds: ColumnKinds, o: { exact?: boolean } = {}): Compiled {
  let ast: Node;
  try {
    ast = jsep(source);
  } catch (err) {
    throw new ExprError(`cannot parse ${JSON.stringify(source)}: ${(err as Error).message}`);
  }
  const columns = new Set<string>();
  const column = (name: string): Eval => {
    if (!kinds.has(name)) throw new ExprError(`unknown source column "${name}" in ${JSON.stringify(source)}`);
    columns.add(name);
    const numeric = kinds.numeric(name);
    return (row) => fromSql(row[name], numeric);
  };
  const build = (n: Node): Eval => {
    switch (n.type) {
      case "Identifier":
        return column(n.name as string);
      case "Literal": {
        const v = n.value;
        const lit: ExprValue =
          typeof v === "number" ? new Dec(String(n.raw)) : (v as string | boolean | null);
        return () => lit;
      }
      case "UnaryExpression": {
        const arg = build(n.argument as Node);
        if (n.operator === "!") return (row) => !truthy(arg(row));
        if (n.operator === "-")
          return (row) => {
            const d = num(arg(row), '"-"');
            return d === null ? null : d.negated();
          };
        if (n.operator === "+") return (row) => num(arg(row), '"+"');
        break;
      }
      case "BinaryExpression": {
        const left = build(n.left as Node);
        const right = build(n.right as Node);
        if (n.operator === "&&") return (row) => truthy(left(row)) && truthy(right(row));
        if (n.operator === "||") return (row) => truthy(left(row)) || truthy(right(row));
        const op = BINARY[n.operator as string];
        if (op) return (row) => op(left(row), right(row));
        break;
      }
      case "ConditionalExpression": {
        const test = build(n.test as Node);
        const yes = build(n.consequent as Node);
        const no = build(n.alternate as Node);
        return (row) => (truthy(test(row)) ? yes(row) : no(row));
      }
      case "CallExpression": {
        const callee = n.callee as Node;
        const args = (n.arguments as Node[]) ?? [];
        const name = callee.type === "Identifier" ? String(callee.name) : "";
        if (name === "col") {
          const arg = args[0];
          if (args.length !== 1 || arg?.type !== "Literal" || typeof arg.value !== "string")
            throw new ExprError(`col() takes one column name in quotes, in ${JSON.stringify(source)}`);
          return column(arg.value);
        }
        const f = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
        if (!f)
          throw new ExprError(
            `unknown function "${name || "?"}" in ${JSON.stringify(source)} (known: col, ${Object.keys(FUNCTIONS).join(", ")})`,
          );
        const argv = args.map(build);
        return (row) => f(argv.map((a) => a(row)));
      }
    }
    const what =
      n.type === "BinaryExpression" || n.type === "UnaryExpression" ? `operator "${n.operator}"` : n.type;
    throw new ExprError(`${what} is not supported in ${JSON.stringify(source)}`);
  };
  const run = build(ast);
  const fast = o.exact === false ? {} : exactPaths(ast, (c) => kinds.numeric(c));
  const test = fast.test;
  return {
    source,
    columns: [...columns],
    ...(fast.text ? { text: fast.text } : {}),
    run(row) {
      try {
        if (test) {
          const r = test(row);
          if (r !== undefined) return r;
        }
        return run(row);
      } catch (err) {
        throw new TypeError(`${JSON.stringify(source)}: ${(err as Error).message}`);
      }
    },
  };
}

/** Converts a value as `cast` says; a value that cannot be converted is an error naming it. */
export function castValue(v: ExprValue, cast: string): ExprValue {
  if (v === null) return null;
  switch (cast) {
    case "int":
      return num(v, "cast int")!.toDecimalPlaces(0, Dec.ROUND_HALF_UP);
    case "decimal":
      return num(v, "cast decimal");
    case "string":
      return text(v);
    case "bool":
      return truthy(v);
    case "date":
    case "datetime": {
      const s = text(v)!;
      const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?))?/.exec(s);
      if (!m) throw new TypeError(`cast ${cast} needs a date or datetime, got ${describe(v)}`);
      return cast === "date" ? m[1]! : `${m[1]} ${m[2] ?? "00:00:00"}`;
    }
  }
  throw new TypeError(`unknown cast "${cast}"`);
}
