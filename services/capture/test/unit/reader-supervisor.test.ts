// The reader supervisor alone, with a stand-in reader: which failures restart it from the
// checkpoint and which stop capture, and how pauses for different reasons combine (no servers).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Position } from "@dfs/codec";
import { createLogger, type DfsError, ErrorCode, RefusedError, waitFor } from "@dfs/common";
import { fromZongji, type ReaderOptions, UndecodableEvent } from "../../dist/reader.js";
import { type BinlogReaderLike, ReaderSupervisor } from "../../dist/reader-supervisor.js";

class FakeReader implements BinlogReaderLike {
  starts: Position[] = [];
  stops = 0;
  paused = false;
  constructor(readonly options: ReaderOptions) {}
  start(from: Position) {
    this.starts.push(from);
  }
  position() {
    return this.starts.at(-1) ?? Position.NONE;
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  get isPaused() {
    return this.paused;
  }
  async stop() {
    this.stops++;
  }
  /** The reader fails as zongji does: with a driver error. */
  fail(errno: number | undefined, code: string, fatal = true) {
    this.options.onError(Object.assign(new Error(`${code} from the server`), { errno, code, fatal }));
  }
}

function supervisor() {
  let reader!: FakeReader;
  const checkpoint = { position: Position.at("mysql-bin.000001", 400, "", "s") };
  const fatals: DfsError[] = [];
  const retries: DfsError[] = [];
  const stop = new AbortController();
  const sup = new ReaderSupervisor({
    reader: { server: "s" } as never,
    afterEvent: () => {},
    settle: () => checkpoint,
    moveTo: (p) => {
      checkpoint.position = p;
      return checkpoint;
    },
    reconnect: { initialMs: 1, maxMs: 5 },
    log: createLogger({ level: "fatal" }),
    onFatal: (e) => fatals.push(e),
    onRetry: (e) => retries.push(e),
    signal: stop.signal,
    createReader: (o) => {
      reader = new FakeReader(o);
      return reader;
    },
  });
  return { sup, reader: () => reader, fatals, retries, checkpoint, stop };
}

describe("ReaderSupervisor", () => {
  test("a lost connection restarts the reader from the checkpoint after a backoff", async () => {
    const s = supervisor();
    s.sup.start(Position.at("mysql-bin.000001", 4));
    s.reader().fail(undefined, "PROTOCOL_CONNECTION_LOST");
    await waitFor(() => s.reader().starts.length === 2, { timeoutMs: 2000, what: "a restart" });
    assert.equal(s.reader().starts[1]!.toString(), "mysql-bin.000001:400", "from the checkpoint");
    assert.equal(s.reader().stops, 1);
    assert.equal(s.sup.reconnects, 1);
    assert.equal(s.retries[0]?.code, ErrorCode.SOURCE_UNAVAILABLE);
    assert.deepEqual(s.fatals, []);
  });

  test("access denied stops capture with the reason; it is not retried", async () => {
    const s = supervisor();
    s.sup.start(Position.at("mysql-bin.000001", 4));
    s.reader().fail(1045, "ER_ACCESS_DENIED_ERROR");
    await waitFor(() => s.fatals.length === 1, { timeoutMs: 2000, what: "a fatal error" });
    assert.ok(s.fatals[0] instanceof RefusedError);
    assert.equal(s.fatals[0]!.code, ErrorCode.SOURCE_ACCESS_DENIED);
    assert.match(s.fatals[0]!.message, /binlog reader at mysql-bin\.000001:4: .*errno 1045/);
    assert.equal(s.reader().starts.length, 1, "no restart");
  });

  test("an event that cannot be decoded stops capture at its position, naming capture.skipTo; never restarted into", async () => {
    const cases: [string, Error][] = [
      // What mysql2 hands on when zongji's parser throws inside a packet handler: fatal, no code, no errno.
      [
        "parser",
        Object.assign(new TypeError("Cannot read properties of undefined (reading 'type')"), { fatal: true }),
      ],
      ["handler", new UndecodableEvent("its writerows event cannot be handled: value out of range")],
    ];
    for (const [what, err] of cases) {
      const s = supervisor();
      s.sup.start(Position.at("mysql-bin.000001", 4));
      s.reader().options.onError(err);
      await waitFor(() => s.fatals.length === 1, { timeoutMs: 2000, what: `fatal for the ${what}` });
      assert.equal(s.fatals[0]!.code, ErrorCode.BINLOG_UNDECODABLE, what);
      assert.match(
        s.fatals[0]!.message,
        /the transaction at mysql-bin\.000001:400 cannot be decoded: .*Capture stopped instead of reading it again in a loop.*SHOW BINLOG EVENTS IN 'mysql-bin\.000001' FROM 400.*capture\.skipTo: "mysql-bin\.000001:<that position>"/,
        "names the checkpoint, where the failing transaction starts (the reader may be inside it)",
      );
      assert.equal(s.reader().starts.length, 1, "no restart");
      assert.equal(s.sup.reconnects, 0);
    }
  });

  test("zongji's own complaints about an event count as undecodable; its other errors keep their meaning", () => {
    for (const message of [
      "Table d.t schema changed between binlog event and metadata fetch: the event has 3 columns, fetched metadata has 2",
      "Insufficient permissions to access: d.t",
      'Unsupported type "14" on column "c" of the table "t" in the database "d"',
      "Server sent a TRANSACTION_PAYLOAD_EVENT (binlog_transaction_compression=ON). zongji cannot decode them",
    ]) {
      const e = fromZongji(new Error(message));
      assert.ok(e instanceof UndecodableEvent, message);
      assert.equal((e as Error).message, message);
    }
    const kept = [
      new Error("Control connection unavailable while fetching column metadata for d.t"),
      new Error("Invalid MariaDB GTID: 'x'"),
      // The same words from the driver (a code, an errno or fatal) are not zongji's complaint.
      Object.assign(new Error("Insufficient permissions to access: d.t"), { code: "ECONNRESET" }),
      Object.assign(new Error("Unsupported type"), { fatal: true }),
    ];
    for (const err of kept) assert.equal(fromZongji(err), err, err.message);
  });

  test("a purged binlog and an unclassified error stop capture", async () => {
    for (const [errno, code, expected] of [
      [1236, "ER_MASTER_FATAL_ERROR_READING_BINLOG", ErrorCode.CHECKPOINT_PURGED],
      [undefined, "", ErrorCode.CONFIG_INVALID],
    ] as const) {
      const s = supervisor();
      s.sup.start(Position.at("mysql-bin.000001", 4));
      s.reader().fail(errno, code, false);
      await waitFor(() => s.fatals.length === 1, {
        timeoutMs: 2000,
        what: `fatal for ${code || "an unclassified error"}`,
      });
      assert.equal(s.fatals[0]!.code, expected);
      assert.equal(s.reader().starts.length, 1);
    }
  });

  test("backpressure never resumes a reader a person paused", () => {
    const s = supervisor();
    s.sup.start(Position.at("mysql-bin.000001", 4));
    s.sup.pause("user");
    s.sup.backpressure.pause();
    assert.equal(s.sup.backpressure.paused, true);
    s.sup.backpressure.resume();
    assert.equal(s.reader().isPaused, true, "still paused: the person's pause holds");
    s.sup.resume("user");
    assert.equal(s.reader().isPaused, false);
  });

  test("moving the position needs a person's pause, and restarts the reader there, still paused", async () => {
    const s = supervisor();
    s.sup.start(Position.at("mysql-bin.000001", 4));
    await assert.rejects(s.sup.moveTo(Position.at("mysql-bin.000002", 4)), /pause capture/);
    s.sup.pause("user");
    await s.sup.moveTo(Position.at("mysql-bin.000002", 4));
    assert.equal(s.reader().starts.at(-1)!.toString(), "mysql-bin.000002:4");
    assert.equal(s.reader().isPaused, true);
  });
});
