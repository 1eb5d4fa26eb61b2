/** The OLTP workload's parts, for tests that run it (the bench is `benchOltp`). */
export { checksum, createTables, writeFlat } from "./oltp.js";
