import { Position, type StartPoint } from "@dfs/codec";
import type { Logger } from "@dfs/common";
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
  log: Logger,
): Promise<PreparedSource> {
  const conn = await MysqlSession.open(cfg.source.endpoint, { role: "source" });
  try {
    const facts = await checkSource(conn, journal.checkpoint);
    if (journal.checkpoint) {
      if (cfg.capture.skipTo) await skipTo(conn, journal, cfg.capture.skipTo, facts, log);
      return { facts, schema: [] };
    }
    const position = await resolveStartPoint(conn, configuredStart(cfg.source.start), facts);
    if (cfg.source.start.snapshot) requestInitialSnapshot(journal);
    journal.append([], { position, committedScn: 0, txnOrdinal: 0 });
    return { facts, schema: await schemaSnapshot(conn, filter) };
  } finally {
    await conn.close();
  }
}

/**
 * capture.skipTo: moves the checkpoint forward to `to`, deliberately (past an event capture
 * stopped on as undecodable); nothing when the checkpoint is already there or past it.
 */
async function skipTo(
  conn: MysqlSession,
  journal: Journal,
  to: string,
  facts: SourceFacts,
  log: Logger,
): Promise<void> {
  const cp = journal.checkpoint!;
  const target = await resolveStartPoint(conn, { kind: "at", position: Position.parse(to) }, facts);
  const from = cp.position;
  if (from.hasFile && target.sortable <= from.sortable) {
    log.info(
      { skipTo: to, checkpoint: from.toString() },
      "capture.skipTo is not after the checkpoint: nothing skipped (remove the setting)",
    );
    return;
  }
  journal.append([], { ...cp, position: target });
  log.warn(
    { from: from.toString(), to: target.toString() },
    "checkpoint moved forward by capture.skipTo: the binlog between is not captured (remove the setting)",
  );
}
