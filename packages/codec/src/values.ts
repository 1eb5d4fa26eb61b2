import type { Value } from "@dfs/proto";

/**
 * How a column's values travel in the envelope. Chosen once per column from its SQL type, so that
 * the per-row work is a switch on a small integer.
 */
export enum ValueKind {
  Int = 1,
  Uint = 2,
  Float64 = 3,
  Float32 = 4,
  Decimal = 5,
  Text = 6,
  Bytes = 7,
  Temporal = 8,
  Json = 9,
}

/** A column value as consumers see it: exact, JS-native. */
export type SqlValue = null | bigint | number | string | Uint8Array;

const NULL_VALUE: Value = { kind: { $case: "null", value: true } };

function asBigInt(v: unknown): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" || typeof v === "string") return BigInt(v);
  throw new TypeError(`expected an integer, got ${typeof v}`);
}

function asText(v: unknown): string {
  if (typeof v === "string") return v;
  if (Buffer.isBuffer(v)) return v.toString("utf8");
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

function asBytes(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === "string") return Buffer.from(v, "utf8");
  throw new TypeError(`expected bytes, got ${typeof v}`);
}

/** Converts a decoded column value to its envelope form. `undefined` and `null` become SQL NULL. */
export function toValue(kind: ValueKind, v: unknown): Value {
  if (v === null || v === undefined) return NULL_VALUE;
  switch (kind) {
    case ValueKind.Int:
      return { kind: { $case: "int", value: asBigInt(v) } };
    case ValueKind.Uint:
      return { kind: { $case: "uint", value: asBigInt(v) } };
    case ValueKind.Float64:
      return { kind: { $case: "float64", value: Number(v) } };
    case ValueKind.Float32:
      return { kind: { $case: "float32", value: Number(v) } };
    case ValueKind.Decimal:
      return { kind: { $case: "decimal", value: asText(v) } };
    case ValueKind.Text:
      // A text column of a binary collation may arrive as bytes: keep the bytes exactly.
      if (v instanceof Uint8Array) return { kind: { $case: "bytes", value: asBytes(v) } };
      return { kind: { $case: "text", value: asText(v) } };
    case ValueKind.Bytes:
      return { kind: { $case: "bytes", value: asBytes(v) } };
    case ValueKind.Temporal:
      return { kind: { $case: "temporal", value: asText(v) } };
    case ValueKind.Json:
      return { kind: { $case: "json", value: typeof v === "string" ? v : JSON.stringify(v) } };
  }
}

/** The JS value of an envelope value. Integers are bigint so that nothing is rounded. */
export function fromValue(v: Value | undefined): SqlValue {
  const k = v?.kind;
  if (!k) return null;
  switch (k.$case) {
    case "null":
      return null;
    case "int":
    case "uint":
      return k.value;
    case "float64":
    case "float32":
      return k.value;
    case "decimal":
    case "text":
    case "temporal":
    case "json":
      return k.value;
    case "bytes":
      return k.value;
  }
}

/** The envelope case name of a value ("null", "int", ...), for tests and diagnostics. */
export function valueCase(v: Value | undefined): string {
  return v?.kind?.$case ?? "null";
}
