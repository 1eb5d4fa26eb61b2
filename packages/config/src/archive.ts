import * as z from "zod";
import { duration, enumOf, size } from "./fields.js";

/** How the archive cuts its files: one per source hour or day of commit time, or by size only. */
export const ARCHIVE_PERIODS = ["hour", "day", "size"] as const;

/** Longest retention age accepted (a retention is not a timer: no 24.8-day limit). */
const MAX_AGE_MS = 100 * 365 * 24 * 3600 * 1000;

/**
 * The backup use: the DPU writes the stream into SQLite files instead of a target database
 * (docs/backup.md). Used when `target` is absent.
 */
export const archiveSchema = z.strictObject({
  dir: z
    .string()
    .min(1, "must not be empty")
    .optional()
    .describe(
      "Folder of the archive's SQLite files; default ./data/<source.id>/archive, relative to the working directory",
    ),
  period: enumOf(ARCHIVE_PERIODS)
    .default("day")
    .describe(
      "A new file starts with the first transaction committed (source time, UTC) in a new hour or day; size: only when a file reaches maxFileBytes",
    ),
  maxFileBytes: size({ min: 1024 * 1024 })
    .prefault("1GiB")
    .describe("A new file starts once the current one is this large, whatever the period"),
  retention: z
    .strictObject({
      maxAge: duration({ max: MAX_AGE_MS })
        .optional()
        .describe("Whole files whose newest change committed longer ago than this are deleted"),
      maxBytes: size()
        .optional()
        .describe("The oldest whole files are deleted while all files together are larger than this"),
    })
    .prefault({})
    .describe("What is deleted, whole files only, never the file being written; absent = keep everything"),
});

/** Default archive folder of a source. */
export function defaultArchiveDir(sourceId: string): string {
  return `./data/${sourceId}/archive`;
}
