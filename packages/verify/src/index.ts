/**
 * @dfs/verify: `dfs verify`, source and target compared per table by primary-key chunk checksums,
 * each chunk once the DPU has applied past where its source side was read; drift narrowed to keys
 * and, with `repair`, put right through the DPU's own sink. See docs/verify.md.
 */
export type { Drift } from "./compare.js";
export { formatReport, reportJson } from "./report.js";
export {
  runVerify,
  type TableResult,
  type TableStatus,
  type VerifyOptions,
  type VerifyReport,
} from "./run.js";
