// Every column type arrives exactly as stored: each envelope value is compared with the source's own
// rendering of the row (HEX for bytes, CAST AS CHAR for exact types, the binary protocol for floats)
// and with the envelope case its SQL type calls for.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fromValue, valueCase } from "@dfs/codec";
import type { ChangeBatch, Value } from "@dfs/proto";
import type mysql from "mysql2/promise";
import { batchesOf, startHarness, waitForRaw } from "../support/harness.js";
import { COLS, D65, JSON1, lit, ROW_COUNT } from "../support/type-fixtures.js";

type SourceRow = Record<string, string | number | null>;

/** The rows as the source renders them (TIMESTAMP in UTC), keyed by id. */
async function readSource(conn: mysql.Connection, table: string): Promise<Map<string, SourceRow>> {
  const exprs = COLS.map((c) => {
    const q = `\`${c.name}\``;
    if (c.render === "char" || c.render === "json") return `CAST(${q} AS CHAR) AS ${q}`;
    if (c.render === "text") return `HEX(CONVERT(${q} USING utf8mb4)) AS ${q}`;
    if (c.render === "float") return `${q}`;
    return `HEX(${q}) AS ${q}`;
  });
  await conn.query("SET time_zone = '+00:00'");
  const [rows] = await conn.query(`SELECT ${exprs.join(", ")} FROM ${table} ORDER BY id`);
  // The binary protocol carries FLOAT and DOUBLE as their IEEE bytes: the exact stored values.
  const [floats] = await conn.execute(`SELECT CAST(id AS CHAR) AS id, f, dbl FROM ${table} ORDER BY id`);
  const exact = new Map((floats as SourceRow[]).map((r) => [String(r.id), r]));
  const out = new Map<string, SourceRow>();
  for (const r of rows as SourceRow[])
    out.set(String(r.id), { ...r, f: exact.get(String(r.id))!.f!, dbl: exact.get(String(r.id))!.dbl! });
  return out;
}

const hex = (v: unknown) =>
  Buffer.from(v as Uint8Array)
    .toString("hex")
    .toUpperCase();

/** Asserts that one envelope image equals the source's row, value by value and case by case. */
function checkImage(where: string, batch: ChangeBatch, image: Value[], expected: SourceRow): void {
  assert.equal(image.length, COLS.length, `${where}: image width`);
  for (const col of COLS) {
    const at = `${where}, column ${col.name}`;
    const v = image[batch.columns.findIndex((c) => c.name === col.name)];
    const want = expected[col.name];
    const got = fromValue(v);
    if (want === null || want === undefined) {
      assert.equal(valueCase(v), "null", `${at}: case`);
      continue;
    }
    if (col.render === "json")
      assert.ok(["json", "text"].includes(valueCase(v)), `${at}: case ${valueCase(v)}`);
    else assert.equal(valueCase(v), col.case, `${at}: case`);
    switch (col.render) {
      case "char":
        assert.equal(typeof got === "bigint" ? got.toString() : got, want, at);
        break;
      case "hex":
        assert.equal(hex(got), want, at);
        break;
      case "bits":
        assert.equal(hex(got), String(want).padStart(2 * Math.ceil(col.bits! / 8), "0"), at);
        break;
      case "text":
        assert.equal(typeof got, "string", at);
        assert.equal(hex(Buffer.from(got as string, "utf8")), want, at);
        break;
      case "json":
        // MariaDB keeps JSON as the text written (LONGTEXT): byte-exact; MySQL's binary JSON: same content.
        if (valueCase(v) === "text") assert.equal(got, want, at);
        assert.deepEqual(JSON.parse(got as string), JSON.parse(String(want)), at);
        break;
      case "float":
        assert.equal(typeof got, "number", at);
        if (col.case === "float32")
          assert.ok(Object.is(Math.fround(got as number), got), `${at}: ${got} is not a float32`);
        assert.ok(Object.is(got, want), `${at}: ${String(got)} !== ${String(want)}`);
        break;
    }
  }
}

test("every column type arrives exactly as stored", async (t) => {
  const h = await startHarness("types");
  const table = `\`${h.db}\`.\`all_types\``;
  try {
    await h.conn.query(`CREATE TABLE ${table} (${COLS.map((c) => `\`${c.name}\` ${c.sql}`).join(", ")})`);
    await h.conn.query("SET time_zone = '+05:30', sql_mode = ''");
    for (let r = 0; r < ROW_COUNT; r++) {
      const set = COLS.filter((c) => c.values[r] != null);
      await h.conn.query(
        `INSERT INTO ${table} (${set.map((c) => `\`${c.name}\``).join(", ")}) VALUES (${set.map((c) => c.values[r]).join(", ")})`,
      );
    }
    const inserted = await readSource(h.conn, table);
    await h.conn.query("SET time_zone = '+05:30'");
    await h.conn.query(
      `UPDATE ${table} SET biu = 1, d65 = -d65, f = -f, tx = CONCAT(tx, '!'), bl = UNHEX(''), b64 = b'101',
         vl = NULL, js = ${lit('{"after":"update"}')}, ts = '2001-01-01 00:00:00.5', geo = NULL WHERE id = 1`,
    );
    const updated = await readSource(h.conn, table);
    await h.conn.query(`DELETE FROM ${table} WHERE id = 2`);

    const messages = await waitForRaw(h.nc, h.id, (ms) => {
      const rows = batchesOf(ms)
        .filter((b) => b.table === "all_types")
        .flatMap((b) => b.rows);
      return rows.length >= ROW_COUNT + 2;
    });
    const batches = batchesOf(messages).filter((b) => b.table === "all_types");
    const changes = batches.flatMap((b) => b.rows.map((r) => ({ batch: b, row: r })));
    assert.deepEqual(
      changes.map((c) => c.row.op),
      [...Array(ROW_COUNT).fill(1), 2, 3],
      "an insert per row, 1 update, 1 delete",
    );
    const inserts = changes.slice(0, ROW_COUNT);
    const [update, del] = changes.slice(ROW_COUNT) as [(typeof changes)[number], (typeof changes)[number]];

    await t.test("columns, charsets and primary key describe the table", () => {
      const b = batches[0]!;
      assert.deepEqual(b.db, h.db);
      assert.deepEqual(
        b.columns.map((c) => c.name),
        COLS.map((c) => c.name),
      );
      assert.deepEqual(b.primaryKey, ["id"]);
      const col = (n: string) => b.columns.find((c) => c.name === n)!;
      for (const n of ["c", "vc", "tx", "en", "st"]) assert.equal(col(n).charset, "utf8mb4", n);
      for (const n of ["vl", "tl"]) assert.equal(col(n).charset, "latin1", n);
      for (const n of ["bn", "vb", "bl", "i", "dtm"]) assert.equal(col(n).charset, "", n);
      assert.match(col("d65").type, /^decimal\(65,30\)/);
      assert.match(col("biu").type, /^bigint(\(20\))? unsigned$/);
      assert.match(col("b13").type, /^bit\(13\)$/);
      assert.equal(col("en").type, `enum('a,b','it''s','"q"','plain')`);
    });

    await t.test("inserted rows equal the source row by row, with the case of each type", () => {
      const full = inserted.get("1")!;
      assert.deepEqual(
        COLS.filter((c) => full[c.name] === null).map((c) => c.name),
        [],
        "row 1 has a value in every column (so every type is compared)",
      );
      for (const [i, c] of inserts.entries()) {
        const id = String(i + 1);
        assert.deepEqual(c.row.before, [], `insert ${id} has no before image`);
        checkImage(`insert id=${id}`, c.batch, c.row.after, inserted.get(id)!);
      }
    });

    await t.test("extremes carry their exact values (independent of the source's rendering)", () => {
      const after = (i: number) => {
        const c = inserts[i]!;
        return (name: string) =>
          fromValue(c.row.after[c.batch.columns.findIndex((col) => col.name === name)]);
      };
      const r1 = after(0);
      const r2 = after(1);
      const r4 = after(3);
      const r5 = after(4);
      assert.equal(r1("biu"), 18446744073709551615n);
      assert.equal(r1("bi"), -9223372036854775808n);
      assert.equal(r1("ti"), -128n);
      assert.equal(r4("biu"), 9223372036854775808n);
      assert.equal(r1("d65"), D65);
      assert.equal(r2("d10"), "-0.01");
      assert.equal(r1("f"), Math.fround(3.4028234e38));
      assert.equal(r2("f"), Math.fround(1.1754944e-38));
      assert.equal(r1("dbl"), 1.7976931348623157e308);
      assert.equal(r2("dbl"), 5e-324);
      assert.equal(hex(r1("b64")), "FFFFFFFFFFFFFFFF");
      assert.equal(hex(r2("b64")), "8000000000000000");
      assert.equal(hex(r2("b13")), "1001");
      assert.equal(r1("tm"), "-838:59:59.000000");
      assert.equal(r2("tm"), "-00:00:01.500000");
      assert.equal(r1("dtm"), "9999-12-31 23:59:59.999999");
      assert.equal(r2("dtm"), "1000-01-01 00:00:00.000000");
      // Written at +05:30; the envelope carries TIMESTAMP in UTC.
      assert.equal(r1("ts"), "2038-01-19 03:14:07.999999");
      assert.equal(r2("ts"), "1970-01-01 00:00:01.000000");
      assert.equal(r4("ts"), "2024-05-31 18:30:00.000000");
      assert.equal(r1("tm3"), "-00:00:00.001");
      assert.equal(r1("dtm1"), "2024-01-02 03:04:05.6");
      assert.equal(r1("dtm0"), "2024-01-02 03:04:05");
      assert.equal(r1("ts0"), "2024-01-01 21:34:05");
      assert.equal(r5("dt"), "0000-00-00");
      assert.equal(r5("dtm"), "0000-00-00 00:00:00.000000");
      assert.equal(r5("dtm0"), "2024-00-00 00:00:00");
      assert.equal(r5("ts0"), "0000-00-00 00:00:00");
      assert.equal(r1("c100"), `${"😀".repeat(99)}é`);
      assert.equal(r1("d20"), "-12345678901234567890");
      assert.equal(r1("d55"), "-0.99999");
      assert.equal(r1("yr"), 1901n);
      assert.equal(r2("yr"), 2155n);
      assert.equal(r1("vl"), "é");
      assert.equal(r1("tl"), "ÿ and é, naïve");
      assert.equal(r1("vc"), `x😀y "q" it's`);
      assert.equal(r4("vc"), "trailing  \u0000nul");
      assert.equal(hex(r1("bn")), "00FF000000000000");
      assert.equal(hex(r1("bl")), "00FF000000");
      assert.equal(r1("en"), "a,b");
      assert.equal(r2("en"), "it's");
      assert.equal(r4("en"), '"q"');
      assert.equal(r4("st"), "x,y,z");
      // Stored geometry: 4-byte little-endian SRID, then WKB (here a point, SRID 4326).
      assert.equal(hex(r1("geo")), "E61000000101000000000000000000F03F0000000000000040");
      assert.deepEqual(JSON.parse(r1("js") as string), JSON.parse(JSON1));
    });

    await t.test("NULL, empty string and empty binary stay distinct", () => {
      const cell = (i: number, name: string) => {
        const c = inserts[i]!;
        return c.row.after[c.batch.columns.findIndex((col) => col.name === name)];
      };
      for (const name of ["c", "vc", "tx", "vl", "tl"]) {
        assert.equal(valueCase(cell(1, name)), "text", name);
        assert.equal(fromValue(cell(1, name)), "", name);
        assert.equal(valueCase(cell(2, name)), "null", name);
      }
      for (const name of ["vb", "bl"]) {
        assert.equal(valueCase(cell(1, name)), "bytes", name);
        assert.equal((fromValue(cell(1, name)) as Uint8Array).byteLength, 0, name);
        assert.equal(valueCase(cell(2, name)), "null", name);
      }
      assert.equal(hex(fromValue(cell(1, "bn"))), "0000000000000000", "BINARY(8) '' is 8 zero bytes");
      assert.equal(valueCase(cell(1, "st")), "text", "empty SET is ''");
      assert.equal(fromValue(cell(1, "st")), "");
      assert.equal(valueCase(cell(1, "biu")), "uint", "0 is a value, not NULL");
    });

    await t.test("UPDATE carries both images, DELETE the before image", () => {
      assert.ok(update.row.before.length > 0 && update.row.after.length > 0);
      checkImage("update before", update.batch, update.row.before, inserted.get("1")!);
      checkImage("update after", update.batch, update.row.after, updated.get("1")!);
      assert.equal(
        fromValue(update.row.after[update.batch.columns.findIndex((c) => c.name === "ts")]),
        "2000-12-31 18:30:00.500000",
      );
      assert.equal(del.row.after.length, 0, "delete has no after image");
      checkImage("delete before", del.batch, del.row.before, updated.get("2")!);
      const inTxn = changes.map((c) => c.row.rowIndex - c.batch.sourceTxns[c.row.sourceTxn]!.firstRow);
      assert.ok(
        inTxn.every((n) => n === 0),
        "one row per source transaction: each is its transaction's first row",
      );
    });
  } finally {
    await h.close();
  }
});

test("YEAR columns are described as COLUMN_TYPE says (no ' unsigned')", {}, async () => {
  const h = await startHarness("typesyr");
  try {
    await h.conn.query(`CREATE TABLE \`${h.db}\`.y (id INT PRIMARY KEY, yr YEAR)`);
    await h.conn.query(`INSERT INTO \`${h.db}\`.y VALUES (1, 2001)`);
    const messages = await waitForRaw(h.nc, h.id, (ms) => batchesOf(ms).length > 0);
    const [[info]] = (await h.conn.query(
      "SELECT COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'y' AND COLUMN_NAME = 'yr'",
      [h.db],
    )) as unknown as [[{ t: string }]];
    const col = batchesOf(messages)[0]!.columns.find((c) => c.name === "yr")!;
    assert.equal(col.type.replace(/\(4\)$/, ""), info.t.replace(/\(4\)$/, ""));
  } finally {
    await h.close();
  }
});
