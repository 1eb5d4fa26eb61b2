// Every column type of MISSION.md goes source -> capture -> JetStream -> DPU -> target and arrives
// exactly as stored: after inserts, updates and a delete, each cell of the target equals the source's
// (HEX for bytes, bits, geometry and text, CAST AS CHAR for exact types, IEEE values for floats,
// TIMESTAMP read in UTC on both).
import assert from "node:assert/strict";
import { test } from "node:test";
import mysql from "mysql2/promise";
import { openPipeline, q } from "../support/pipeline.js";

/** How a column is read for comparison. */
type Render = "char" | "hex" | "text" | "float";

interface Col {
  name: string;
  sql: string;
  render: Render;
  /** SQL literals for rows 1 to 5 (missing or null: NULL). Row 3 is all NULL, row 5 holds zero dates. */
  values: (string | null)[];
}

const N = null;
const lit = (s: string) => mysql.escape(s);
const col = (name: string, sql: string, render: Render, values: (string | null)[]): Col => ({
  name,
  sql,
  render,
  values,
});
const UTF8 = "CHARACTER SET utf8mb4";
const LATIN1 = "CHARACTER SET latin1";
const D65 = `-${"1234567890".repeat(3)}12345.${"123456789".repeat(3)}123`;
const JSON1 = String.raw`{"a":{"b":[1,2.5,"x\"q\"y",{"c":null}]},"u":"é😀 \u00e9","big":123456789012345678901234567890}`;

// TIMESTAMPs are written in a +05:30 session.
const COLS: Col[] = [
  col("id", "INT PRIMARY KEY", "char", ["1", "2", "3", "4", "5"]),
  col("ti", "TINYINT", "char", ["-128", "127", N, "0"]),
  col("tiu", "TINYINT UNSIGNED", "char", ["255", "0", N, "1"]),
  col("si", "SMALLINT", "char", ["-32768", "32767", N, "-1"]),
  col("siu", "SMALLINT UNSIGNED", "char", ["65535", "0", N, "1"]),
  col("mi", "MEDIUMINT", "char", ["-8388608", "8388607", N, "-1"]),
  col("miu", "MEDIUMINT UNSIGNED", "char", ["16777215", "0", N, "1"]),
  col("i", "INT", "char", ["-2147483648", "2147483647", N, "-1"]),
  col("iu", "INT UNSIGNED", "char", ["4294967295", "0", N, "1"]),
  col("bi", "BIGINT", "char", ["-9223372036854775808", "9223372036854775807", N, "-1"]),
  col("biu", "BIGINT UNSIGNED", "char", ["18446744073709551615", "0", N, "9223372036854775808"]),
  col("d65", "DECIMAL(65,30)", "char", [
    D65,
    `${"9".repeat(35)}.${"9".repeat(30)}`,
    N,
    `-0.${"0".repeat(29)}1`,
  ]),
  col("d10", "DECIMAL(10,2)", "char", ["-12345678.99", "-0.01", N, "0.00"]),
  col("f", "FLOAT", "float", ["3.4028234e38", "1.1754944e-38", N, "-1.5e-7", "-3.4028234e38"]),
  col("dbl", "DOUBLE", "float", ["1.7976931348623157e308", "5e-324", N, "-0e0", "-1.7976931348623157e308"]),
  col("b1", "BIT(1)", "hex", ["b'1'", "b'0'", N, "b'1'"]),
  col("b13", "BIT(13)", "hex", ["b'1111111111111'", "b'1000000000001'", N, "b'0'"]),
  col("b64", "BIT(64)", "hex", [`b'${"1".repeat(64)}'`, `b'1${"0".repeat(63)}'`, N, "b'0'"]),
  col("c", `CHAR(10) ${UTF8}`, "text", [lit("ab😀"), "''", N, lit("  pad")]),
  col("vc", `VARCHAR(100) ${UTF8}`, "text", [lit(`x😀y "q" it's`), "''", N, lit("trailing  \u0000nul")]),
  col("tx", `TEXT ${UTF8}`, "text", [lit("multi\nline 😀 text — ünïcödé"), "''", N, lit("'\"\\`")]),
  col("cl", `CHAR(5) ${LATIN1}`, "text", [lit("é"), "''", N, lit("ÿé")]),
  col("vl", `VARCHAR(50) ${LATIN1}`, "text", [lit("é"), "''", N, lit("ÿ")]),
  col("tl", `TEXT ${LATIN1}`, "text", [lit("ÿ and é, naïve"), "''", N, lit("Ü")]),
  col("bn", "BINARY(8)", "hex", ["UNHEX('00FF0000')", "''", N, "UNHEX('0102030405060708')"]),
  col("vb", "VARBINARY(20)", "hex", ["UNHEX('00FF0000')", "''", N, `UNHEX('${"00".repeat(20)}')`]),
  col("bl", "BLOB", "hex", ["UNHEX('00FF000000')", "''", N, "UNHEX('DEADBEEF00')"]),
  col("en", `ENUM('a,b','it''s','"q"','plain') ${UTF8}`, "char", [lit("a,b"), lit("it's"), N, lit('"q"')]),
  col("st", `SET('x','y','z') ${UTF8}`, "char", [lit("x,z"), "''", N, lit("x,y,z")]),
  col("dt", "DATE", "char", ["'9999-12-31'", "'1000-01-01'", N, "'2024-02-29'", "'0000-00-00'"]),
  col("tm", "TIME(6)", "char", ["'-838:59:59.000000'", "'-00:00:01.500000'", N, "'838:59:59.999999'"]),
  col("dtm", "DATETIME(6)", "char", [
    "'9999-12-31 23:59:59.999999'",
    "'1000-01-01 00:00:00.000000'",
    N,
    "'2024-02-29 12:34:56.000001'",
    "'0000-00-00 00:00:00'",
  ]),
  col("ts", "TIMESTAMP(6) NULL", "char", [
    "'2038-01-19 08:44:07.999999'",
    "'1970-01-01 05:30:01.000000'",
    N,
    "'2024-06-01 00:00:00.000000'",
    "'0000-00-00 00:00:00'",
  ]),
  col("yr", "YEAR", "char", ["1901", "2155", N, "2024", "0000"]),
  col("js", "JSON", "text", [lit(JSON1), lit("[]"), N, lit('{"n":-0.000001,"s":"ÿ"}')]),
  col("geo", "GEOMETRY", "hex", [
    "ST_GeomFromText('POINT(1 2)', 4326)",
    "ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0.5)')",
    N,
    "ST_GeomFromText('POLYGON((0 0, 4 0, 4 4, 0 0))', 3857)",
  ]),
];
const ROWS = 5;

type Row = Record<string, string | number | null>;

/** Every row as the server renders it for comparison, keyed by id; TIMESTAMP read in UTC. */
async function readRows(conn: mysql.Connection, table: string): Promise<Map<string, Row>> {
  const exprs = COLS.filter((c) => c.render !== "float").map((c) => {
    const n = q(c.name);
    if (c.render === "char") return `CAST(${n} AS CHAR) AS ${n}`;
    if (c.render === "text") return `HEX(CONVERT(${n} USING utf8mb4)) AS ${n}`;
    return `HEX(${n}) AS ${n}`;
  });
  await conn.query("SET time_zone = '+00:00'");
  const [rows] = await conn.query(`SELECT ${exprs.join(", ")} FROM ${table} ORDER BY id`);
  // The binary protocol carries FLOAT and DOUBLE as IEEE values: the exact stored numbers.
  const [floats] = await conn.execute(`SELECT CAST(id AS CHAR) AS id, f, dbl FROM ${table} ORDER BY id`);
  const byId = new Map((floats as Row[]).map((r) => [String(r.id), r]));
  const out = new Map<string, Row>();
  for (const r of rows as Row[]) {
    const fl = byId.get(String(r.id))!;
    out.set(String(r.id), { ...r, f: fl.f!, dbl: fl.dbl! });
  }
  return out;
}

/** Asserts that the target holds exactly the source's rows, cell by cell. */
function compareRows(stage: string, source: Map<string, Row>, target: Map<string, Row>): void {
  assert.deepEqual([...target.keys()], [...source.keys()], `${stage}: ids of the target rows`);
  for (const [id, want] of source) {
    const got = target.get(id)!;
    for (const c of COLS) {
      const at = `${stage}: row id=${id}, column ${c.name} (${c.sql})`;
      if (c.render === "float")
        assert.ok(Object.is(got[c.name], want[c.name]), `${at}: ${got[c.name]} !== ${want[c.name]}`);
      else assert.equal(got[c.name], want[c.name], at);
    }
  }
}

test("roundtrip: every column type arrives in the target exactly as the source stores it", async () => {
  const p = await openPipeline("rt");
  const srcTable = `${q(p.db)}.\`all_types\``;
  const dstTable = `${q(p.targetDb)}.\`all_types\``;
  try {
    await p.startCapture();
    await p.startDpu();
    // Created after capture started: the table reaches the target through the DDL in the stream.
    await p.src.query(`CREATE TABLE ${srcTable} (${COLS.map((c) => `${q(c.name)} ${c.sql}`).join(", ")})`);
    await p.src.query("SET time_zone = '+05:30', sql_mode = ''"); // zero dates allowed on the source
    const tuples = Array.from(
      { length: ROWS },
      (_, r) => `(${COLS.map((c) => c.values[r] ?? "NULL").join(", ")})`,
    );
    await p.src.query(`INSERT INTO ${srcTable} VALUES ${tuples.join(",\n")}`); // one transaction
    const others = COLS.filter((c) => c.name !== "id").map((c) => q(c.name));
    await p.src.query(
      `INSERT INTO ${srcTable} (id, ${others.join(", ")}) SELECT 6, ${others.join(", ")} FROM ${srcTable} WHERE id = 1`,
    );
    await p.src.query("SET time_zone = '+05:30'");
    await p.src.query(
      `UPDATE ${srcTable} SET biu = 1, d65 = -d65, f = -f, dbl = -dbl, tx = CONCAT(tx, '!'), bl = UNHEX(''),
         b64 = b'101', b13 = b'1', vl = NULL, cl = '', js = ${lit('{"after":"update"}')},
         ts = '2001-01-01 00:00:00.5', tm = '-00:00:00.000001', geo = NULL, en = 'plain', st = 'y' WHERE id = 1`,
    );
    await p.src.query(
      `UPDATE ${srcTable} SET vc = '', bn = NULL, vb = UNHEX('00'), ti = NULL, geo = ST_GeomFromText('POINT(-1.5 2.25)', 3857) WHERE id = 4`,
    );
    await p.src.query(`DELETE FROM ${srcTable} WHERE id = 6`);
    await p.src.query(`INSERT INTO ${srcTable} (id) VALUES (7)`); // the marker: everything before it is in

    await p.converged("all_types");
    const source = await readRows(p.src, srcTable);
    const target = await readRows(p.dst, dstTable);
    assert.deepEqual([...source.keys()], ["1", "2", "3", "4", "5", "7"], "the source rows");
    assert.deepEqual(
      COLS.filter((c) => source.get("2")![c.name] === null).map((c) => c.name),
      [],
      "row 2 has a value in every column (so every type is compared)",
    );
    compareRows("after insert, update, delete", source, target);

    // Independent of the source's rendering: the exact values that were written.
    const t1 = target.get("1")!;
    const t2 = target.get("2")!;
    const t4 = target.get("4")!;
    const t5 = target.get("5")!;
    assert.equal(t1.bi, "-9223372036854775808", "bi");
    assert.equal(t2.biu, "0", "biu of row 2");
    assert.equal(target.get("4")!.biu, "9223372036854775808", "biu of row 4");
    assert.equal(t1.d65, D65.slice(1), "d65 negated by the update");
    assert.equal(t1.tm, "-00:00:00.000001", "tm of row 1");
    assert.equal(t2.tm, "-00:00:01.500000", "tm of row 2");
    assert.equal(t2.dtm, "1000-01-01 00:00:00.000000", "dtm of row 2");
    assert.equal(t1.ts, "2000-12-31 18:30:00.500000", "ts written at +05:30, read at UTC");
    assert.equal(t2.ts, "1970-01-01 00:00:01.000000", "ts of row 2");
    assert.equal(t4.ts, "2024-05-31 18:30:00.000000", "ts of row 4");
    assert.equal(t5.dt, "0000-00-00", "zero DATE");
    assert.equal(t5.dtm, "0000-00-00 00:00:00.000000", "zero DATETIME");
    assert.equal(t5.ts, "0000-00-00 00:00:00.000000", "zero TIMESTAMP");
    assert.equal(t1.b64, "5", "BIT(64) b'101'");
    assert.equal(t2.b64, "8000000000000000", "BIT(64) high bit");
    assert.equal(t2.b13, "1001", "BIT(13)");
    assert.equal(t1.f, -Math.fround(3.4028234e38), "FLOAT negated");
    assert.equal(t2.dbl, 5e-324, "smallest DOUBLE");
    assert.equal(t1.dbl, -1.7976931348623157e308, "DOUBLE negated");
    assert.equal(t2.en, "it's", "ENUM with a quote");
    assert.equal(target.get("4")!.en, '"q"', "ENUM with double quotes");
    assert.equal(t1.en, "plain", "ENUM updated");
    assert.equal(t2.st, "", "empty SET");
    assert.equal(t4.st, "x,y,z", "SET");
    assert.equal(t2.vb, "", "empty VARBINARY is not NULL");
    assert.equal(t4.vb, "00", "VARBINARY zero byte");
    assert.equal(target.get("3")!.vb, null, "NULL VARBINARY");
    assert.equal(t2.vc, "", "empty VARCHAR is not NULL");
    assert.equal(target.get("3")!.vc, null, "NULL VARCHAR");
    assert.equal(t1.cl, "", "latin1 CHAR updated to ''");
    assert.equal(t4.cl, "C3BFC3A9", "latin1 'ÿé' (utf8mb4 bytes after CONVERT)");
    assert.equal(t2.yr, "2155", "YEAR");
    assert.equal(t5.yr, "0000", "YEAR 0");
    const [[srid]] = (await p.dst.query(
      `SELECT ST_SRID(geo) AS s, ST_AsText(geo) AS t FROM ${dstTable} WHERE id = 4`,
    )) as unknown as [[{ s: number; t: string }]];
    assert.equal(Number(srid.s), 3857, "GEOMETRY keeps its SRID");
    assert.equal(srid.t, "POINT(-1.5 2.25)", "GEOMETRY value");
    const [[c1]] = (await p.dst.query(`SELECT vl, tl, vc FROM ${dstTable} WHERE id = 4`)) as unknown as [
      [{ vl: string; tl: string; vc: string }],
    ];
    assert.deepEqual([c1.vl, c1.tl, c1.vc], ["ÿ", "Ü", ""], "latin1 and utf8mb4 text of row 4");
    assert.equal(p.dpu!.status().deadLettered, 0, "nothing dead-lettered");
  } finally {
    await p.close();
  }
});
