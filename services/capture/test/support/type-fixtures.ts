// The column types of MISSION.md with edge values: the fixture of the type tests (binlog path,
// snapshot path, DPU round trip). Not part of the service's API.
import mysql from "mysql2/promise";

export type Render = "char" | "hex" | "bits" | "text" | "json" | "float";

/** A column: its SQL type, the envelope case of a non-null value, how the source renders it for comparison. */
export interface Col {
  name: string;
  sql: string;
  case: string;
  render: Render;
  /** SQL literals for rows 1 to 5; missing or null is NULL. Row 3 is all NULL, row 5 holds zero dates. */
  values: (string | null)[];
  bits?: number;
}

const N = null;
export const lit = (s: string) => mysql.escape(s);
export const JSON1 = String.raw`{"a":{"b":[1,2.5,"x\"q\"y",{"c":null}]},"u":"é😀 \u00e9","big":123456789012345678901234567890,"neg":-1.5e-300,"t":true}`;
const JSON2 = `[1, "two", null, true, {"k": []}]`;
const JSON4 = String.raw`{"say":"it's \"quoted\"","nested":{"deeper":{"x":[{"y":"ÿ"}]}},"n":-0.000001}`;
export const D65 = `-${"1234567890".repeat(3)}12345.${"123456789".repeat(3)}123`;
const [UTF8, LATIN1] = ["CHARACTER SET utf8mb4", "CHARACTER SET latin1"];
const col = (
  name: string,
  sql: string,
  kase: string,
  render: Render,
  values: (string | null)[],
  bits?: number,
): Col => ({
  name,
  sql,
  case: kase,
  render,
  values,
  ...(bits ? { bits } : {}),
});

// TIMESTAMPs are written in a +05:30 session (and read back in UTC).
export const COLS: Col[] = [
  col("id", "INT PRIMARY KEY", "int", "char", ["1", "2", "3", "4", "5"]),
  col("ti", "TINYINT", "int", "char", ["-128", "127", N, "0"]),
  col("tiu", "TINYINT UNSIGNED", "uint", "char", ["255", "0", N, "1"]),
  col("si", "SMALLINT", "int", "char", ["-32768", "32767", N, "-1"]),
  col("siu", "SMALLINT UNSIGNED", "uint", "char", ["65535", "0", N, "1"]),
  col("mi", "MEDIUMINT", "int", "char", ["-8388608", "8388607", N, "-1"]),
  col("miu", "MEDIUMINT UNSIGNED", "uint", "char", ["16777215", "0", N, "1"]),
  col("i", "INT", "int", "char", ["-2147483648", "2147483647", N, "-1"]),
  col("iu", "INT UNSIGNED", "uint", "char", ["4294967295", "0", N, "1"]),
  col("bi", "BIGINT", "int", "char", ["-9223372036854775808", "9223372036854775807", N, "-1"]),
  col("biu", "BIGINT UNSIGNED", "uint", "char", ["18446744073709551615", "0", N, "9223372036854775808"]),
  col("d65", "DECIMAL(65,30)", "decimal", "char", [
    D65,
    `${"9".repeat(35)}.${"9".repeat(30)}`,
    N,
    `-0.${"0".repeat(29)}1`,
  ]),
  col("d10", "DECIMAL(10,2)", "decimal", "char", ["-12345678.99", "-0.01", N, "0.00"]),
  col("d55", "DECIMAL(5,5)", "decimal", "char", ["-0.99999", "0.00001", N, "0.10000"]),
  col("d20", "DECIMAL(20,0)", "decimal", "char", ["-12345678901234567890", "1", N, "10000000000000000000"]),
  col("f", "FLOAT", "float32", "float", ["3.4028234e38", "1.1754944e-38", N, "-1.5e-7"]),
  col("dbl", "DOUBLE", "float64", "float", ["1.7976931348623157e308", "5e-324", N, "-0e0"]),
  col("b1", "BIT(1)", "bytes", "bits", ["b'1'", "b'0'", N, "b'1'"], 1),
  col("b13", "BIT(13)", "bytes", "bits", ["b'1111111111111'", "b'1000000000001'", N, "b'0'"], 13),
  col("b64", "BIT(64)", "bytes", "bits", [`b'${"1".repeat(64)}'`, `b'1${"0".repeat(63)}'`, N, "b'0'"], 64),
  col("c", `CHAR(10) ${UTF8}`, "text", "text", [lit("ab"), "''", N, lit("  pad")]),
  col("vc", `VARCHAR(100) ${UTF8}`, "text", "text", [
    lit(`x😀y "q" it's`),
    "''",
    N,
    lit("trailing  \u0000nul"),
  ]),
  // 400 and 1020 bytes: the binlog folds such CHAR lengths into the type byte.
  col("c100", `CHAR(100) ${UTF8}`, "text", "text", [lit(`${"😀".repeat(99)}é`), "''"]),
  col("c255", `CHAR(255) ${UTF8}`, "text", "text", [lit("ü".repeat(255)), lit("a")]),
  col("tx", `TEXT ${UTF8}`, "text", "text", [lit("multi\nline 😀 text — ünïcödé"), "''", N, lit("'\"\\`")]),
  col("vl", `VARCHAR(50) ${LATIN1}`, "text", "text", [lit("é"), "''", N, lit("ÿ")]),
  col("tl", `TEXT ${LATIN1}`, "text", "text", [lit("ÿ and é, naïve"), "''", N, lit("Ü")]),
  col("bn", "BINARY(8)", "bytes", "hex", ["UNHEX('00FF0000')", "''", N, "UNHEX('0102030405060708')"]),
  col("vb", "VARBINARY(20)", "bytes", "hex", ["UNHEX('00FF0000')", "''", N, `UNHEX('${"00".repeat(20)}')`]),
  col("bl", "BLOB", "bytes", "hex", ["UNHEX('00FF000000')", "''", N, "UNHEX('DEADBEEF00')"]),
  col("en", `ENUM('a,b','it''s','"q"','plain') ${UTF8}`, "text", "char", [
    lit("a,b"),
    lit("it's"),
    N,
    lit('"q"'),
  ]),
  col("st", `SET('x','y','z') ${UTF8}`, "text", "char", [lit("x,z"), "''", N, lit("x,y,z")]),
  col("dt", "DATE", "temporal", "char", ["'9999-12-31'", "'1000-01-01'", N, "'2024-02-29'", "'0000-00-00'"]),
  col("tm", "TIME(6)", "temporal", "char", [
    "'-838:59:59.000000'",
    "'-00:00:01.500000'",
    N,
    "'838:59:59.999999'",
  ]),
  col("dtm", "DATETIME(6)", "temporal", "char", [
    "'9999-12-31 23:59:59.999999'",
    "'1000-01-01 00:00:00.000000'",
    N,
    "'2024-02-29 12:34:56.000001'",
    "'0000-00-00 00:00:00'",
  ]),
  col("ts", "TIMESTAMP(6) NULL", "temporal", "char", [
    "'2038-01-19 08:44:07.999999'",
    "'1970-01-01 05:30:01.000000'",
    N,
    "'2024-06-01 00:00:00.000000'",
  ]),
  col("tm3", "TIME(3)", "temporal", "char", ["'-00:00:00.001'", "'838:59:59.999'", N, "'12:00:00.100'"]),
  col("dtm1", "DATETIME(1)", "temporal", "char", ["'2024-01-02 03:04:05.6'", "'1000-01-01 00:00:00.1'"]),
  col("dtm0", "DATETIME", "temporal", "char", [
    "'2024-01-02 03:04:05'",
    N,
    N,
    "'1000-01-01 00:00:00'",
    "'2024-00-00 00:00:00'",
  ]),
  col("ts0", "TIMESTAMP NULL", "temporal", "char", [
    "'2024-01-02 03:04:05'",
    N,
    N,
    N,
    "'0000-00-00 00:00:00'",
  ]),
  col("yr", "YEAR", "int", "char", ["1901", "2155", N, "2024"]),
  col("js", "JSON", "json", "json", [lit(JSON1), lit(JSON2), N, lit(JSON4)]),
  col("geo", "GEOMETRY", "bytes", "hex", [
    "ST_GeomFromText('POINT(1 2)', 4326)",
    "ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0.5)')",
    N,
    "ST_GeomFromText('POLYGON((0 0, 4 0, 4 4, 0 0))', 3857)",
  ]),
];
export const ROW_COUNT = 5;

/** INSERT statements for the fixture's rows into `table` (run in a +05:30 session, sql_mode ''). */
export function insertStatements(table: string): string[] {
  const out: string[] = [];
  for (let r = 0; r < ROW_COUNT; r++) {
    const set = COLS.filter((c) => c.values[r] != null);
    out.push(
      `INSERT INTO ${table} (${set.map((c) => `\`${c.name}\``).join(", ")}) VALUES (${set.map((c) => c.values[r]).join(", ")})`,
    );
  }
  return out;
}

export const createStatement = (table: string): string =>
  `CREATE TABLE ${table} (${COLS.map((c) => `\`${c.name}\` ${c.sql}`).join(", ")})`;
