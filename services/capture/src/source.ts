import { Position, type StartPoint } from "@dfs/codec";
import type { DfsConfig, TableFilter } from "@dfs/config";
import { MysqlSession } from "@dfs/mysql";
import type { SchemaStatement } from "./assembler.js";
import { checkSource, type SourceFacts } from "./checks.js";
import type { Journal } from "./journal.js";
import { schemaSnapshot } from "./schema.js";
import { resolveStartPoint } from "./set-position.js";
import { requestInitialSnapshot } from "./snapshot.js";

/** What capture learned from the source at start-up. */
export interface PreparedSource {
  facts: SourceFacts;
  /** The captured tables' definitions, when the journal is new (journaled first); else empty. */
  schema: SchemaStatement[];
}

/** Where a new journal starts, as the config says (source.start). */
export function configuredStart(start: DfsConfig["source"]["start"]): StartPoint {
  switch (start.from) {
    case "position":
      return { kind: "at", position: Position.at(start.file!, start.position!) };
    case "gtid":
      return { kind: "at", position: Position.ofGtid(start.gtid!) };
    default:
      return { kind: start.from };
  }
}

/**
 * Checks the source (every problem reported at once) and, for a new journal, fixes where it starts
 * (resolved to a concrete position of this server now), asks for the initial snapshot when
 * configured, and takes the schema snapshot the stream starts with.
 */
export async function prepareSource(
  cfg: DfsConfig,
  journal: Journal,
  filter: TableFilter,
): Promise<PreparedSource> {
  const conn = await MysqlSession.open(cfg.source.endpoint, { role: "source" });
  try {
    const facts = await checkSource(conn, journal.checkpoint);
    if (journal.checkpoint) return { facts, schema: [] };
    const position = await resolveStartPoint(conn, configuredStart(cfg.source.start), facts);
    if (cfg.source.start.snapshot) requestInitialSnapshot(journal);
    journal.append([], { position, committedScn: 0, txnOrdinal: 0 });
    return { facts, schema: await schemaSnapshot(conn, filter) };
  } finally {
    await conn.close();
  }
}
