import { AssertionError, ConfigError, ErrorCode } from "@dfs/common";
import type { SourcePosition as WirePosition } from "@dfs/proto";
import { gtidFlavor } from "./gtid.js";

/**
 * A place in one source server's history: the binlog file and byte offset of the next event (the
 * resume point after a complete transaction), the GTID set executed up to there, and the identity
 * of the server the file name belongs to. File positions compare only within one server; the
 * GTID set is what carries over to another one.
 *
 * This is the one shape of "a position" in the project: the reader reports it, the journal stores
 * it (field by field), the envelope carries it (`toWire`), the control plane and the monitor show
 * it (`toString`), and message ids and headers use its sortable form.
 */
export class Position {
  /** Binlog file name, e.g. "mysql-bin.000042"; "" when only a GTID set is known. */
  readonly file: string;
  /** Byte offset in `file` of the next event. */
  readonly pos: number;
  /** GTID set executed up to here (MySQL "uuid:1-5,...", MariaDB "0-1-100,..."); "" when unknown. */
  readonly gtid: string;
  /** Server the file name belongs to: server_uuid (MySQL), "mariadb:<server_id>"; "" when unknown. */
  readonly server: string;

  /** No position at all: before anything was read. */
  static readonly NONE = new Position("", 0, "", "");

  private constructor(file: string, pos: number, gtid: string, server: string) {
    this.file = file;
    this.pos = pos;
    this.gtid = gtid;
    this.server = server;
  }

  /** A file position (and what else is known about it). */
  static at(file: string, pos: number | bigint, gtid = "", server = ""): Position {
    const p = Number(pos);
    if (!Number.isSafeInteger(p) || p < 0) throw new AssertionError(`binlog offset out of range: ${pos}`);
    if (file !== "") binlogFileNumber(file); // validates the name
    return new Position(file, p, gtid ?? "", server ?? "");
  }

  /** A position known only by its GTID set (a start point given by GTIDs). */
  static ofGtid(gtid: string, server = ""): Position {
    return new Position("", 0, gtid.trim(), server);
  }

  /**
   * Parses the text form `toString` writes: "mysql-bin.000042:1234", or a GTID set alone.
   * Throws ConfigError naming the problem.
   */
  static parse(text: string, server = ""): Position {
    const t = text.trim();
    const m = FILE_POS.exec(t);
    if (m) return Position.at(m[1]!, Number(m[2]), "", server);
    if (gtidFlavor(t) !== null) return Position.ofGtid(t, server);
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `position ${JSON.stringify(text)}: must be "file:pos" (e.g. mysql-bin.000042:1234) or a GTID set`,
    ]);
  }

  /** From the envelope's SourcePosition (its resume point). */
  static fromWire(w: WirePosition | undefined, server = ""): Position {
    if (!w) return Position.NONE;
    return new Position(w.file, Number(w.pos), w.gtid, server);
  }

  /** Stored field by field (the journal, a checkpoint table). */
  static fromRecord(r: { file: string; pos: number | bigint; gtid?: string | null; server?: string | null }) {
    return new Position(r.file, Number(r.pos), r.gtid ?? "", r.server ?? "");
  }

  get isNone(): boolean {
    return this.file === "" && this.gtid === "";
  }

  /** Whether this position names a file offset (rather than only GTIDs). */
  get hasFile(): boolean {
    return this.file !== "";
  }

  /** The number of the binlog file ("mysql-bin.000042" -> 42); 0 without a file. */
  get fileNumber(): number {
    return this.file ? binlogFileNumber(this.file) : 0;
  }

  /**
   * "0000000042:000000001234": compares with < in binlog order on one server. Used in message
   * ids and the Dfs-Pos header. "" without a file.
   */
  get sortable(): string {
    if (!this.file) return "";
    return `${String(this.fileNumber).padStart(10, "0")}:${String(this.pos).padStart(12, "0")}`;
  }

  /** "mysql-bin.000042:1234", or the GTID set when there is no file, or "". */
  toString(): string {
    return this.file ? `${this.file}:${this.pos}` : this.gtid;
  }

  toJSON(): { file: string; pos: number; gtid: string; server: string } {
    return { file: this.file, pos: this.pos, gtid: this.gtid, server: this.server };
  }

  withGtid(gtid: string | null | undefined): Position {
    return new Position(this.file, this.pos, gtid ?? "", this.server);
  }

  withServer(server: string): Position {
    return new Position(this.file, this.pos, this.gtid, server);
  }

  /**
   * Binlog order of two file positions of the same server: negative, 0 or positive. Comparing
   * positions of two servers, or one without a file, is a bug and throws.
   */
  compare(other: Position): number {
    if (!this.file || !other.file)
      throw new AssertionError(`cannot order positions without a file (${this} vs ${other})`);
    if (this.server && other.server && this.server !== other.server)
      throw new AssertionError(
        `positions of different servers do not compare (${this.server}, ${other.server})`,
      );
    return this.fileNumber - other.fileNumber || this.pos - other.pos;
  }

  equals(other: Position): boolean {
    return (
      this.file === other.file &&
      this.pos === other.pos &&
      this.gtid === other.gtid &&
      this.server === other.server
    );
  }

  /**
   * The envelope's SourcePosition: this position as the resume point, `start` (default: this) as
   * the transaction's start, `gtid` the transaction's own GTID (not the executed set).
   */
  toWire(gtid: string, start: Position = this): WirePosition {
    return {
      gtid,
      file: this.file,
      pos: BigInt(this.pos),
      startFile: start.file,
      startPos: BigInt(start.pos),
      sortable: this.sortable,
    };
  }
}

const FILE_POS = /^([^\s/\\:]+\.\d+):(\d+)$/;

/** The number of a binlog file name: "mysql-bin.000123" -> 123. */
export function binlogFileNumber(file: string): number {
  const m = /\.(\d+)$/.exec(file);
  if (!m) throw new AssertionError(`not a binlog file name: "${file}"`);
  return Number(m[1]);
}

/** Where a reader should start, as a person or the config names it. */
export type StartPoint =
  | { kind: "earliest" }
  | { kind: "latest" }
  /** A file position or a GTID set (Position.hasFile tells which). */
  | { kind: "at"; position: Position };

/** Parses "earliest", "latest", "file:pos" or a GTID set; ConfigError naming the problem otherwise. */
export function parseStartPoint(text: string): StartPoint {
  const t = text.trim();
  if (t === "earliest" || t === "latest") return { kind: t };
  try {
    return { kind: "at", position: Position.parse(t) };
  } catch {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, [
      `position ${JSON.stringify(text)}: must be "earliest", "latest", "file:pos" (e.g. mysql-bin.000042:1234) or a GTID set`,
    ]);
  }
}

/** A place in a JetStream stream, as the DPU's control call names it. */
export type StreamPoint = { kind: "earliest" } | { kind: "latest" } | { kind: "seq"; seq: number };

/** Parses "earliest", "latest", "seq:N" or N; ConfigError naming the problem otherwise. */
export function parseStreamPoint(text: string): StreamPoint {
  const t = text.trim();
  if (t === "earliest" || t === "latest") return { kind: t };
  const m = /^(?:seq:)?(\d+)$/.exec(t);
  if (m && Number.isSafeInteger(Number(m[1]))) return { kind: "seq", seq: Number(m[1]) };
  throw new ConfigError(ErrorCode.CONFIG_INVALID, [
    `position ${JSON.stringify(text)}: must be "earliest", "latest" or a stream sequence ("seq:N" or N)`,
  ]);
}

/** Message headers capture sets on every message (besides Nats-Msg-Id). */
export const Headers = {
  /** "batch", "ddl" or "heartbeat": which message type the payload is. */
  kind: "Dfs-Kind",
  /** Journal sequence number of the message. */
  scn: "Dfs-Scn",
  /** Identity of the journal that wrote it; SCNs compare only within one journal. */
  journal: "Dfs-Journal",
  /** Sortable source position (Position.sortable). */
  position: "Dfs-Pos",
  /** Rows in a batch. */
  rows: "Dfs-Rows",
} as const;

export type MessageKind = "batch" | "ddl" | "heartbeat";
