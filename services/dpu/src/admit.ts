import type { TableRef } from "@dfs/codec";
import { subjects } from "@dfs/nats";
import type { StreamMessage } from "./stream-reader.js";

/**
 * Admission of stream messages: whether a message on the source's stream can be one capture
 * published, before anything of it is applied. Anyone who may publish on dfs.<source>.> can put
 * bytes there (a misconfigured producer, a replayed copy, a test tool); those must be refused with
 * the reason, never mistaken for a change. What is checked:
 *
 * - the Dfs-Kind header is batch, ddl or heartbeat, and matches the subject (batches on
 *   dfs.<source>.<db>.<table>, DDL on dfs.<source>._ddl, heartbeats on dfs.<source>._heartbeat);
 * - Dfs-Scn and Dfs-Journal are there, the SCN a positive integer, and the SCNs of one journal
 *   strictly increase along the stream: a copy of an older message published again is refused;
 * - after decoding (see `checkPayload`): the payload's source id is this source's, a batch's table
 *   is its subject's, and the payload's SCN is the header's.
 *
 * Without a source id (the builder's unit tests) messages without those headers are let through. A
 * forged message that gets all of this right (a journal id of its own and SCNs that increase)
 * cannot be told from capture's: publishing rights on the stream are the boundary (docs/testing.md).
 */
export class Admission {
  /** Per journal, the SCNs admitted since the last reset (see `Seen`). */
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly sourceId: string | undefined) {}

  /** Forgets the order seen: delivery starts again at the checkpoint (a re-read, a new position). */
  reset(): void {
    this.seen.clear();
  }

  /** Why a message cannot be capture's, from its subject and headers; null when it may be. */
  refuse(m: StreamMessage): string | null {
    if (m.kind !== "batch" && m.kind !== "ddl" && m.kind !== "heartbeat")
      return `unknown Dfs-Kind header ${JSON.stringify(m.kind)} (expected batch, ddl or heartbeat)`;
    const expected = kindOfSubject(m.subject, this.sourceId);
    if (expected !== null && expected !== m.kind)
      return `a ${m.kind} message on ${m.subject}, where only ${expected} messages belong`;
    if (m.scn === "" && m.journal === "") {
      if (this.sourceId !== undefined)
        return "no Dfs-Scn and Dfs-Journal headers (capture sends both with every message)";
    } else if (m.scn === "" || m.journal === "")
      return "Dfs-Scn and Dfs-Journal headers must come together (capture sends both)";
    if (m.scn !== "") {
      if (!/^[1-9][0-9]{0,19}$/.test(m.scn)) return `Dfs-Scn header ${JSON.stringify(m.scn)} is not an SCN`;
      const scn = BigInt(m.scn);
      if (this.seen.get(m.journal)?.has(scn))
        return `SCN ${scn} of journal ${m.journal} was delivered already: a copy of an older message`;
    }
    return null;
  }

  /**
   * Why a decoded payload cannot be capture's message on its subject; null when it may be. `scn`
   * is the payload's SCN (0 when it has none). A message that passes is recorded as admitted.
   */
  checkPayload(
    m: StreamMessage,
    payload: { sourceId: string; scn: bigint; table?: TableRef },
  ): string | null {
    if (this.sourceId !== undefined && payload.sourceId !== this.sourceId)
      return payload.sourceId === ""
        ? "a message without a source id (capture names its source in every message)"
        : `a message of source ${JSON.stringify(payload.sourceId)} on the stream of source ${JSON.stringify(this.sourceId)}`;
    if (payload.table && m.subject !== "") {
      const s = subjects.parseData(m.subject);
      if (s && (s.db !== payload.table.db || s.table !== payload.table.table))
        return `a batch for ${payload.table.db}.${payload.table.table} on the subject of ${s.db}.${s.table}`;
    }
    if (m.scn === "" && payload.scn > 0n)
      return `payload has SCN ${payload.scn} but no Dfs-Scn/Dfs-Journal headers (capture sends both)`;
    if (m.scn !== "" && payload.scn !== BigInt(m.scn))
      return `payload SCN ${payload.scn} differs from its Dfs-Scn header ${m.scn}`;
    if (m.scn !== "") {
      let seen = this.seen.get(m.journal);
      if (!seen) {
        seen = new Seen();
        this.seen.set(m.journal, seen);
      }
      seen.add(BigInt(m.scn));
    }
    return null;
  }
}

/**
 * The SCNs of one journal admitted since a reset. Capture's SCNs follow one another (+1) along the
 * stream, so a run from the first one admitted is kept as its top: every SCN up to it was seen. An
 * SCN that jumps ahead (a forged one, or a gap) is remembered on its own (the last few thousand)
 * and does not move the top, so one forged message cannot make capture's next ones look old.
 */
class Seen {
  private first: bigint | null = null;
  private top = 0n;
  private readonly jumps = new Set<bigint>();

  has(scn: bigint): boolean {
    return (this.first !== null && scn >= this.first && scn <= this.top) || this.jumps.has(scn);
  }

  add(scn: bigint): void {
    if (this.first === null) {
      this.first = scn;
      this.top = scn;
    } else if (scn === this.top + 1n) {
      this.top = scn;
      while (this.jumps.delete(this.top + 1n)) this.top++;
    } else {
      this.jumps.add(scn);
      if (this.jumps.size > 4096) this.jumps.delete(this.jumps.values().next().value!);
    }
  }
}

/** The message kind a subject of the stream carries, or null when the subject is not known (fakes). */
function kindOfSubject(subject: string, sourceId: string | undefined): string | null {
  if (subject === "") return null;
  if (subjects.parseData(subject)) return "batch";
  const tail = subject.slice(subject.lastIndexOf(".") + 1);
  if (sourceId !== undefined && subject === subjects.ddl(sourceId)) return "ddl";
  if (sourceId !== undefined && subject === subjects.heartbeat(sourceId)) return "heartbeat";
  return tail === "_ddl" ? "ddl" : tail === "_heartbeat" ? "heartbeat" : null;
}

/**
 * Where a refused message is dead-lettered: its subject's table for a data subject, otherwise
 * `_dfs`.`_ddl`, `_dfs`.`_heartbeat` or `_dfs`.`_unknown` (`_dfs` is the DPU's own database, so no
 * table of the source shares the subject).
 */
export function deadLetterTable(m: StreamMessage): TableRef {
  const s = subjects.parseData(m.subject);
  if (s) return { db: s.db, table: s.table };
  const tail = m.subject.slice(m.subject.lastIndexOf(".") + 1);
  return { db: "_dfs", table: tail === "_ddl" || tail === "_heartbeat" ? tail : "_unknown" };
}
