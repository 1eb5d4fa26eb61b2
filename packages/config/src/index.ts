/**
 * @dfs/config: the one YAML file that configures every dfs service. `loadConfig` reads it, applies
 * the DFS_* environment overrides and validates it against `configSchema`; every problem is
 * reported at once, each naming the key. See docs/configuration.md.
 */

export { ARCHIVE_PERIODS } from "./archive.js";
export { captureFilter, type FilterRules, SYSTEM_DATABASES, TableFilter } from "./filter.js";
export {
  describeConfig,
  ENV_OVERRIDES,
  type EnvOverride,
  envSecret,
  loadConfig,
  parseConfig,
} from "./load.js";
export {
  CASTS,
  type ColumnSpec,
  type KeySpec,
  type MappingSpec,
  type PipelineConfig,
  pipelineSchema,
  type TableColumns,
} from "./pipeline.js";
export { configSchema, type DfsConfig, type DfsConfigInput, LOG_LEVELS, START_FROM } from "./schema.js";
export type { ClientTls } from "./security.js";
