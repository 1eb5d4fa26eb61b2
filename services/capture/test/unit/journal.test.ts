// The Journal alone, on a temporary SQLite file: what is committed survives, what is not is
// dropped, the checkpoint moves with its rows, and journals of an earlier version still open.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Position } from "@dfs/codec";
import Database from "better-sqlite3";
import { type Checkpoint, Journal, type JournalEntry } from "../../dist/journal.js";

const dir = mkdtempSync(join(tmpdir(), "dfs-journal-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const path = () => join(dir, `j${n++}.db`);

const entry = (scn: number, table = "t"): JournalEntry => ({
  scn,
  kind: "batch",
  subject: `dfs.s.db.${table}`,
  msgId: `s:${scn}`,
  ref: { db: "my.db", table },
  ops: { c: 2, u: 1, d: 0, r: 0 },
  sortable: "0000000001:000000000100",
  payload: Buffer.alloc(100, scn),
});
const cp = (committedScn: number, pos: number, txnOrdinal = committedScn): Checkpoint => ({
  position: Position.at("mysql-bin.000001", pos, "0-1-5", "mariadb:1"),
  committedScn,
  txnOrdinal,
});

describe("Journal", () => {
  test("entries and the checkpoint are written together and read back exactly", () => {
    const p = path();
    const j = new Journal(p);
    assert.equal(j.checkpoint, null);
    j.append([entry(1), entry(2, "u")], cp(2, 500, 1));
    j.close();
    const again = new Journal(p);
    assert.equal(again.checkpoint?.position.toString(), "mysql-bin.000001:500");
    assert.equal(again.checkpoint?.position.gtid, "0-1-5");
    assert.equal(again.checkpoint?.position.server, "mariadb:1");
    assert.equal(again.nextScn, 3);
    const read = again.read(0, 10);
    assert.deepEqual(
      read.map((e) => [e.scn, e.ref, e.ops, e.msgId, e.sortable]),
      [
        [1, { db: "my.db", table: "t" }, { c: 2, u: 1, d: 0, r: 0 }, "s:1", "0000000001:000000000100"],
        [2, { db: "my.db", table: "u" }, { c: 2, u: 1, d: 0, r: 0 }, "s:2", "0000000001:000000000100"],
      ],
    );
    assert.deepEqual(Buffer.from(read[1]!.payload), Buffer.alloc(100, 2));
    assert.equal(again.stats().entries, 2);
    assert.equal(again.stats().bytes, 200);
    again.close();
  });

  test("a new journal has 16 KiB pages; an existing one keeps its own", () => {
    const fresh = path();
    new Journal(fresh).close();
    const pageSize = (p: string) => {
      const db = new Database(p, { readonly: true });
      const size = db.pragma("page_size", { simple: true });
      db.close();
      return size;
    };
    assert.equal(pageSize(fresh), 16384);
    const old = path();
    const db = new Database(old);
    db.pragma("journal_mode = WAL");
    db.exec("CREATE TABLE x (a)");
    db.close();
    new Journal(old).close();
    assert.equal(pageSize(old), 4096);
  });

  test("the publisher reads what was just appended from memory; older entries and uncommitted chunks from the table", () => {
    const j = new Journal(path());
    const first = [entry(1), entry(2)];
    j.append(first, cp(2, 500));
    j.append([entry(3)], null); // a chunk of a transaction not yet committed
    const read = j.read(0, 10);
    assert.deepEqual(
      read.map((e) => e.scn),
      [1, 2],
      "nothing past the checkpoint",
    );
    assert.equal(read[0], first[0], "the appended entry itself, not a copy read back");
    j.append([entry(4)], cp(4, 900));
    assert.deepEqual(
      j.read(2, 10).map((e) => e.scn),
      [3, 4],
    );
    // The reader moved past 1 and 2: a resync that goes back reads them from the table.
    const again = j.read(0, 10);
    assert.deepEqual(
      again.map((e) => e.scn),
      [1, 2, 3, 4],
    );
    assert.deepEqual(Buffer.from(again[0]!.payload), Buffer.alloc(100, 1));
    assert.deepEqual(j.read(4, 10), [], "nothing after the last entry");
    j.close();
  });

  test("chunks of a transaction whose commit never came are dropped on open, and never read", () => {
    const p = path();
    const j = new Journal(p);
    j.append([entry(1)], cp(1, 100));
    j.append([entry(2), entry(3)], null); // a large transaction's first chunks
    assert.deepEqual(
      j.read(0, 10).map((e) => e.scn),
      [1],
      "uncommitted entries are not read",
    );
    j.close();
    const again = new Journal(p);
    assert.equal(again.stats().entries, 1);
    assert.equal(again.nextScn, 2, "the transaction is read again with the same SCNs");
    again.close();
  });

  test("markPublished trims, and the checkpoint never goes backwards", () => {
    const j = new Journal(path());
    j.append([entry(1), entry(2), entry(3)], cp(3, 300));
    j.markPublished(2);
    assert.deepEqual(j.stats(), { entries: 1, bytes: 100, committedScn: 3, publishedScn: 2 });
    assert.deepEqual(
      j.read(0, 10).map((e) => e.scn),
      [3],
    );
    j.markPublished(1); // behind: ignored
    assert.equal(j.publishedScn, 2);
    assert.throws(() => j.append([], cp(2, 400)), /must not go backwards/);
    j.close();
  });

  test("meta values persist", () => {
    const p = path();
    const j = new Journal(p);
    j.setMeta("snapshot", '{"id":"x"}');
    j.setMeta("gone", "1");
    j.setMeta("gone", null);
    j.close();
    const again = new Journal(p);
    assert.equal(again.getMeta("snapshot"), '{"id":"x"}');
    assert.equal(again.getMeta("gone"), null);
    assert.match(again.journalId, /^[0-9a-f-]{36}$/);
    again.close();
  });

  test("a journal written by the first version (ops as text, no table columns) opens and reads", () => {
    const p = path();
    const old = new Database(p);
    old.exec(`
      CREATE TABLE entries (scn INTEGER PRIMARY KEY, kind INTEGER NOT NULL, subject TEXT NOT NULL,
        msg_id TEXT NOT NULL, rows INTEGER NOT NULL, pos TEXT NOT NULL, payload BLOB NOT NULL,
        ops TEXT NOT NULL DEFAULT '');
      CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), file TEXT NOT NULL, pos INTEGER NOT NULL,
        gtid TEXT, committed_scn INTEGER NOT NULL, txn_ordinal INTEGER NOT NULL,
        server_identity TEXT NOT NULL, updated_ms INTEGER NOT NULL);
      CREATE TABLE published (id INTEGER PRIMARY KEY CHECK (id = 1), scn INTEGER NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO entries VALUES (1, 0, 'dfs.s.db.t', 's:1', 3, '0000000001:000000000100', x'00', 'c=3');
      INSERT INTO checkpoint VALUES (1, 'mysql-bin.000001', 120, NULL, 1, 1, 'mariadb:1', 0);
    `);
    old.close();
    const j = new Journal(p);
    assert.equal(j.checkpoint?.position.toString(), "mysql-bin.000001:120");
    assert.equal(j.checkpoint?.position.gtid, "");
    const [e] = j.read(0, 10);
    assert.equal(e?.msgId, "s:1");
    assert.equal(e?.ref, null, "no table known for an old entry: it is still published");
    j.append([entry(2)], cp(2, 200));
    assert.equal(j.read(0, 10).length, 2);
    j.close();
  });
});
