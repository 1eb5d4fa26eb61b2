/**
 * A fast path for the common expressions (sums, differences and products of integer and decimal
 * columns and literals, and comparisons of them): scaled BigInts instead of decimal.js objects.
 * The results are exactly those of the general evaluator in expr.ts (same values, same text);
 * wherever they could differ (a value that is not a plain decimal, more than 80 significant
 * digits, anything else) the fast path answers `undefined` and the general evaluator runs.
 */
import type { SqlValue } from "@dfs/codec";
import type jsep from "jsep";

/** An exact number: v × 10^-s. */
interface Exact {
  v: bigint;
  s: number;
}

type Num = (row: Record<string, SqlValue>) => Exact | null | undefined;
type Bool = (row: Record<string, SqlValue>) => boolean | null | undefined;

/** Decimal.js keeps 80 significant digits; past that the two paths could differ. */
const MAX_DIGITS = 80;
const PLAIN = /^(-?)(\d+)(?:\.(\d*))?$/;
const POW10: bigint[] = [1n];
const pow10 = (n: number): bigint => {
  for (let i = POW10.length; i <= n; i++) POW10.push(POW10[i - 1]! * 10n);
  return POW10[n]!;
};

function parse(text: string): Exact | undefined {
  const m = PLAIN.exec(text);
  if (!m) return undefined;
  const frac = m[3] ?? "";
  const v = BigInt(m[2]! + frac);
  return { v: m[1] ? -v : v, s: frac.length };
}

function fromValue(x: SqlValue | undefined): Exact | null | undefined {
  if (x === null || x === undefined) return null;
  if (typeof x === "bigint") return { v: x, s: 0 };
  if (typeof x === "number") return Number.isInteger(x) ? { v: BigInt(x), s: 0 } : undefined;
  if (typeof x === "string") return parse(x);
  return undefined;
}

function digits(v: bigint): number {
  return (v < 0n ? -v : v).toString().length;
}

function align(a: Exact, b: Exact): [bigint, bigint, number] {
  if (a.s === b.s) return [a.v, b.v, a.s];
  return a.s > b.s ? [a.v, b.v * pow10(a.s - b.s), a.s] : [a.v * pow10(b.s - a.s), b.v, b.s];
}

function checked(r: Exact): Exact | undefined {
  return digits(r.v) > MAX_DIGITS ? undefined : r;
}

/** `e` as decimal.js's toFixed() writes it: no trailing fraction zeros, no exponent, no "-0". */
export function formatExact(e: Exact): string {
  let v = e.v;
  let s = e.s;
  while (s > 0 && v % 10n === 0n) {
    v /= 10n;
    s--;
  }
  if (s === 0) return v.toString();
  const neg = v < 0n;
  const t = (neg ? -v : v).toString().padStart(s + 1, "0");
  return `${neg ? "-" : ""}${t.slice(0, t.length - s)}.${t.slice(t.length - s)}`;
}

function num(n: jsep.Expression, numeric: (c: string) => boolean): Num | undefined {
  switch (n.type) {
    case "Identifier": {
      const name = n.name as string;
      if (!numeric(name)) return undefined;
      return (row) => fromValue(row[name]);
    }
    case "Literal": {
      if (typeof n.value !== "number") return undefined;
      const lit = parse(String(n.raw));
      return lit ? () => lit : undefined;
    }
    case "UnaryExpression": {
      if (n.operator !== "-") return undefined;
      const a = num(n.argument as jsep.Expression, numeric);
      if (!a) return undefined;
      return (row) => {
        const x = a(row);
        return x ? { v: -x.v, s: x.s } : x;
      };
    }
    case "BinaryExpression": {
      const op = n.operator as string;
      if (op !== "+" && op !== "-" && op !== "*") return undefined;
      const a = num(n.left as jsep.Expression, numeric);
      const b = num(n.right as jsep.Expression, numeric);
      if (!a || !b) return undefined;
      return (row) => {
        const x = a(row);
        if (x === undefined) return undefined;
        const y = b(row);
        if (y === undefined) return undefined;
        if (x === null || y === null) return null;
        if (op === "*") return checked({ v: x.v * y.v, s: x.s + y.s });
        const [p, q, s] = align(x, y);
        return checked({ v: op === "+" ? p + q : p - q, s });
      };
    }
  }
  return undefined;
}

const COMPARE: Record<string, (c: number) => boolean> = {
  "==": (c) => c === 0,
  "===": (c) => c === 0,
  "!=": (c) => c !== 0,
  "!==": (c) => c !== 0,
  "<": (c) => c < 0,
  "<=": (c) => c <= 0,
  ">": (c) => c > 0,
  ">=": (c) => c >= 0,
};

function bool(n: jsep.Expression, numeric: (c: string) => boolean): Bool | undefined {
  if (n.type !== "BinaryExpression") return undefined;
  const f = COMPARE[n.operator as string];
  if (!f) return undefined;
  const a = num(n.left as jsep.Expression, numeric);
  const b = num(n.right as jsep.Expression, numeric);
  if (!a || !b) return undefined;
  return (row) => {
    const x = a(row);
    if (x === undefined) return undefined;
    const y = b(row);
    if (y === undefined) return undefined;
    if (x === null || y === null) return null;
    const [p, q] = align(x, y);
    return f(p < q ? -1 : p > q ? 1 : 0);
  };
}

/**
 * The fast evaluators of an expression, where it has them: `text` for arithmetic (the value as
 * the target gets it), `test` for a comparison. Each answers undefined when the general path must.
 */
export function exactPaths(
  ast: jsep.Expression,
  numeric: (column: string) => boolean,
): {
  text?: (row: Record<string, SqlValue>) => string | null | undefined;
  test?: Bool;
} {
  const t = bool(ast, numeric);
  if (t) return { test: t };
  const a = ast.type === "Identifier" || ast.type === "Literal" ? undefined : num(ast, numeric);
  if (!a) return {};
  return {
    text: (row) => {
      const x = a(row);
      return x === undefined ? undefined : x === null ? null : formatExact(x);
    },
  };
}
