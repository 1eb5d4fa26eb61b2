// `dfs verify`'s progress on stderr: lines when stderr is not a terminal (none with --json), a
// cli-progress bar on a terminal (the CLI run under a pseudo-terminal by util-linux's `script`).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { type CaptureService, startCapture } from "@dfs/capture";
import { waitFor } from "@dfs/common";
import { type DpuService, startDpu } from "@dfs/dpu";
import { openHarness, q } from "../support/harness.js";

const DFS = join(dirname(fileURLToPath(import.meta.url)), "../../../cli/bin/dfs.js");

/** Runs a command without blocking this process (its in-process capture and DPU keep running). */
function run(file: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: "utf8", timeout: 120_000 }, (err, out, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, out, err: stderr });
    });
  });
}

const dfs = (...args: string[]) => run(process.execPath, [DFS, ...args]);

/** A word for `sh -c`. */
const sh = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

test("progress: a line per table (and every 10 s) on stderr without a terminal, none with --json; a bar to 100% on a terminal", async () => {
  const h = await openHarness("vfyprog");
  let capture: CaptureService | null = null;
  let dpu: DpuService | null = null;
  try {
    const rows = { alpha: 3000, beta: 700 };
    for (const t of Object.keys(rows))
      await h.src.query(`CREATE TABLE ${q(h.db)}.${q(t)} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)`);
    // Started here rather than by the harness: the last case pauses the DPU.
    capture = await startCapture(h.cfg);
    dpu = await startDpu(h.cfg);
    for (const [t, n] of Object.entries(rows))
      await h.src.query(
        `INSERT INTO ${q(h.db)}.${q(t)} SELECT seq, CONCAT('v', seq) FROM ${q(h.db)}.seq_1_to_${n}`,
      );
    await h.caughtUp(["alpha", "beta"]);

    // Not a terminal: one line per table on stderr; stdout holds the table only.
    const text = await dfs("verify", "-c", h.configFile, "--chunk-rows", "500");
    assert.equal(text.code, 0, `${text.out}\n${text.err}`);
    const errLines = text.err.split("\n").filter((l) => l !== "");
    assert.equal(errLines.length, 2, `one progress line per table:\n${text.err}`);
    assert.match(errLines[0]!, new RegExp(`^verifying ${h.db}\\.alpha \\(about \\d+ rows\\)$`));
    assert.match(errLines[1]!, new RegExp(`^verifying ${h.db}\\.beta \\(about \\d+ rows\\)$`));
    const out = text.out.split("\n");
    assert.match(out[0]!, /^TABLE\s+SOURCE ROWS\s+TARGET ROWS\s+CHUNKS\s+DRIFTED KEYS\s+SECONDS\s+STATUS$/);
    assert.match(out[1]!, new RegExp(`^${h.db}\\.alpha\\s+3000\\s+3000\\s+\\d+\\s+0\\s+[\\d.]+\\s+ok$`));
    assert.match(out[2]!, new RegExp(`^${h.db}\\.beta\\s+700\\s+700\\s+\\d+\\s+0\\s+[\\d.]+\\s+ok$`));
    assert.match(text.out, /^2 tables, 3700 rows in .* 0 with drift, 0 not verifiable$/m);
    assert.ok(!text.out.includes("verifying"), "no progress on stdout");

    // --json: stdout is the report and nothing else; no progress at all.
    const json = await dfs("verify", "-c", h.configFile, "--chunk-rows", "500", "--json");
    assert.equal(json.code, 0, `${json.out}\n${json.err}`);
    const report = JSON.parse(json.out) as { tables: { name: string; status: string; sourceRows: number }[] };
    assert.deepEqual(
      report.tables.map((t) => [t.name, t.status, t.sourceRows]),
      [
        [`${h.db}.alpha`, "ok", 3000],
        [`${h.db}.beta`, "ok", 700],
      ],
    );
    assert.equal(json.err, "", "no progress with --json");

    // A terminal: `script` gives the CLI a pseudo-terminal for stdin, stdout and stderr (all merged
    // into script's stdout). -e: script exits with the CLI's code.
    const cmd = [
      process.execPath,
      DFS,
      "verify",
      "-c",
      h.configFile,
      "--table",
      `${h.db}.alpha`,
      "--chunk-rows",
      "500",
    ]
      .map(sh)
      .join(" ");
    const tty = await run("script", ["-qfec", cmd, "/dev/null"]);
    assert.equal(tty.code, 0, `${tty.out}\n${tty.err}`);
    // The bar as cli-progress draws it (shades_classic: filled and empty shades), redrawn in place.
    assert.match(
      tty.out,
      new RegExp(`${h.db}\\.alpha \\[[\\u2588\\u2591]{40}\\] \\d+% \\d+/\\d+ rows \\d+ rows/s`),
    );
    assert.match(tty.out, new RegExp(`${h.db}\\.alpha \\[\\u2588{40}\\] 100% 3000/3000 rows \\d+ rows/s`));
    // The report follows the bar, on a line of its own.
    assert.match(
      tty.out,
      new RegExp(`\\r?\\n${h.db}\\.alpha\\s+3000\\s+3000\\s+\\d+\\s+0\\s+[\\d.]+\\s+ok\\r?\\n`),
    );
    assert.ok(!tty.out.includes("verifying "), "no progress lines on a terminal");

    // A table that takes more than 10 s: a line of rows read after 10 s. The DPU is paused, and a
    // row written elsewhere on the source, so that the first chunk waits for the DPU to apply it.
    await h.src.query(`CREATE TABLE ${q(h.db)}.other (id INT PRIMARY KEY)`);
    await h.caughtUp(["other"]);
    dpu.pause();
    await h.src.query(`INSERT INTO ${q(h.db)}.other VALUES (1)`);
    const child = spawn(process.execPath, [
      DFS,
      "verify",
      "-c",
      h.configFile,
      "--table",
      `${h.db}.alpha`,
      "--chunk-rows",
      "500",
    ]);
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    await waitFor(() => err.includes("verifying"), { timeoutMs: 20_000, what: "verify to start the table" });
    // Held paused for 11 s on purpose (the scenario), not waiting for something.
    await new Promise((r) => setTimeout(r, 11_000));
    assert.equal(
      err.split("\n").filter((l) => l !== "").length,
      1,
      `nothing but the table's line yet:\n${err}`,
    );
    dpu.resume();
    assert.equal(await exited, 0, err);
    const lines = err.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 2, err);
    assert.match(lines[1]!, new RegExp(`^${h.db}\\.alpha: 500 rows$`));
  } finally {
    await dpu?.stop().catch(() => {});
    await capture?.stop().catch(() => {});
    await h.close();
  }
});
