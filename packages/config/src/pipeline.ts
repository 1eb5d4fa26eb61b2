/**
 * The `pipeline` section: how source tables map onto a target of another structure. Only the
 * shape is checked here; whether the tables, columns and expressions fit the real schemas is
 * checked at start-up against the servers (@dfs/mapping compileMappings), every problem at once.
 */
import * as z from "zod";
import { duration, show } from "./fields.js";

const QUALIFIED = /^[^.\s`]+\.[^.\s`]+$/;
/** `db.table(col, ...)` as a relationship end. */
const TABLE_COLUMNS = /^\s*([^.\s`()]+)\.([^.\s`()]+)\s*\(\s*([^()]+?)\s*\)\s*$/;
const KEY_COLUMNS = /^columns\(\s*([^()]+?)\s*\)$/;
export const CASTS = ["int", "decimal", "string", "date", "datetime", "bool"] as const;

const qualified = (what: string) =>
  z.string({ error: (iss) => `must be "db.table" (got ${show(iss.input)})` }).regex(QUALIFIED, {
    error: (iss) => `must name a ${what} as "db.table" (got ${show(iss.input)})`,
  });

/** A table end of a relationship, parsed. */
export interface TableColumns {
  db: string;
  table: string;
  columns: string[];
}

const tableColumns = z
  .string({ error: (iss) => `must be "db.table(column, ...)" (got ${show(iss.input)})` })
  .transform((v, ctx): TableColumns => {
    const m = TABLE_COLUMNS.exec(v);
    if (!m) {
      ctx.addIssue({ code: "custom", message: `must be "db.table(column, ...)" (got ${show(v)})` });
      return z.NEVER;
    }
    return { db: m[1]!, table: m[2]!, columns: m[3]!.split(",").map((c) => c.trim()) };
  });

const castField = z
  .enum(CASTS, {
    error: (iss) => `must be one of ${CASTS.map((c) => `"${c}"`).join(", ")} (got ${show(iss.input)})`,
  })
  .optional()
  .describe("Converts the value: int, decimal, string, date, datetime or bool");

/** What one target column is written from. */
const columnSpec = z.union(
  [
    z.string().min(1),
    z.strictObject({
      column: z.string().min(1).describe("Source column"),
      cast: castField,
      references: qualified("target table")
        .optional()
        .describe("For a foreign-key column: the parent's target table, when its source maps to several"),
    }),
    z.strictObject({
      const: z.union([z.string(), z.number(), z.boolean(), z.null()]).describe("A constant value"),
    }),
    z.strictObject({
      expr: z.string().min(1).describe("An expression over the source row's columns"),
      cast: castField,
    }),
  ],
  {
    error: (iss) =>
      `must be a source column name, or one of { column, cast?, references? }, { const }, { expr, cast? } (got ${show(iss.input)})`,
  },
);
export type ColumnSpec = z.output<typeof columnSpec>;

export type KeySpec = { kind: "source" } | { kind: "generated" } | { kind: "columns"; columns: string[] };

const keySpec = z
  .string()
  .default("source")
  .transform((v, ctx): KeySpec => {
    if (v === "source" || v === "generated") return { kind: v };
    const m = KEY_COLUMNS.exec(v.trim());
    if (m) return { kind: "columns", columns: m[1]!.split(",").map((c) => c.trim()) };
    ctx.addIssue({
      code: "custom",
      message: `must be "source", "generated" or "columns(a, b, ...)" (got ${show(v)})`,
    });
    return z.NEVER;
  });

const mappingSchema = z.strictObject({
  source: qualified("source table").describe("The source table"),
  target: qualified("target table").describe("The target table it is written to"),
  key: keySpec.describe(
    'How target rows are identified: "source" (the target key is the mapped source key), "generated" (the target makes its own key; dfs keeps a key map), "columns(a, b)" (a unique key of the target)',
  ),
  columns: z
    .record(z.string().min(1), columnSpec)
    .default({})
    .describe("Target column -> source column, { column, cast }, { const } or { expr }"),
  copy: z
    .boolean()
    .default(true)
    .describe("Also write every source column the target has under the same name, unless mapped or dropped"),
  drop: z.array(z.string().min(1)).default([]).describe("Source columns never copied"),
  filter: z.string().min(1).optional().describe("Expression: a row is in the target only while it is true"),
  hooks: z
    .string()
    .min(1)
    .optional()
    .describe(
      "A JavaScript or TypeScript module whose `map(row, context)` may change or drop each mapped row",
    ),
});
export type MappingSpec = z.output<typeof mappingSchema>;

export const pipelineSchema = z.strictObject({
  mappings: z
    .array(mappingSchema)
    .min(1, "must hold at least one mapping")
    .describe("Per source table, the target tables it is written to and how"),
  relationships: z
    .array(
      z.strictObject({
        child: tableColumns.describe("db.table(column, ...) holding the reference"),
        parent: tableColumns.describe("db.table(column, ...) it references"),
      }),
    )
    .default([])
    .describe("Foreign keys the source does not declare, beside the ones it does (discovered)"),
  orphanWaitMs: duration({ min: 0 })
    .prefault("5s")
    .describe("How long a child change waits for its parent's key map before it goes to the dead letters"),
});
export type PipelineConfig = z.output<typeof pipelineSchema>;
