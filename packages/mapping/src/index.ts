/**
 * @dfs/mapping: the pipeline use's mappings. compileMappings checks them against the real schemas
 * (every problem with its config path); mapChange turns a source change into target writes and
 * removals; expressions are exact (expr.ts); hooks modules may change or drop rows (hooks.ts).
 */
export {
  type ColumnPlan,
  type CompiledPipeline,
  compileMappings,
  type MappingProblem,
  type Schemas,
  type TargetPlan,
} from "./compile.js";
export { castValue, compileExpr, Dec, ExprError, type ExprValue, FUNCTIONS, toSql, truthy } from "./expr.js";
export { type Edge, parentsFirst, tableGroups } from "./graph.js";
export { type Hook, type HookContext, loadHooks } from "./hooks.js";
export { encodeKey, type MappedRow, MappingError, mapChange, type TargetOp } from "./map.js";
