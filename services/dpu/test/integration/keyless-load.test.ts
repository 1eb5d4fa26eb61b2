// The initial load of a table without a primary or unique key, while other sessions keep writing
// it: capture reads it whole under a table read lock between its watermarks and journals a
// TRUNCATE before the rows, so the target's copy ends equal to the source's (duplicates
// included), nothing lost or doubled. Before this, such tables were skipped with a warning and the
// target's copy stayed empty while the sync looked healthy.
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { openPipeline, q } from "../support/pipeline.js";

test("a keyless table's initial load under concurrent writes ends equal to the source", async () => {
  const p = await openPipeline("keyless", {}, { source: { start: { snapshot: true } } });
  const log = `${q(p.db)}.log`;
  let writing = true;
  try {
    await p.src.query(`CREATE TABLE ${log} (a INT NOT NULL, b VARCHAR(20))`);
    await p.src.query(`CREATE TABLE ${q(p.db)}.k (id INT PRIMARY KEY, v INT NOT NULL)`);
    // 3,000 rows with many duplicates (a repeats every 100 rows) and NULLs.
    await p.src.query(
      `INSERT INTO ${log} SELECT seq % 100, IF(seq % 7 = 0, NULL, CONCAT('r', seq % 50)) FROM ${q(p.db)}.seq_1_to_3000`,
    );
    await p.src.query(`INSERT INTO ${q(p.db)}.k SELECT seq, seq FROM ${q(p.db)}.seq_1_to_1000`);

    // Writers of the keyless table run before, during and after its locked read.
    let n = 0;
    const writer = (async () => {
      while (writing) {
        n++;
        const a = n % 100;
        if (n % 3 === 0) await p.src.query(`DELETE FROM ${log} WHERE a = ? LIMIT 1`, [a]);
        else if (n % 3 === 1) await p.src.query(`INSERT INTO ${log} VALUES (?, ?)`, [a, `w${n}`]);
        else await p.src.query(`UPDATE ${log} SET b = ? WHERE a = ? LIMIT 1`, [`u${n}`, a]);
        if (n % 10 === 0) await p.src.query(`UPDATE ${q(p.db)}.k SET v = v + 1 WHERE id = ?`, [n % 1000]);
      }
    })();
    const capture = await p.startCapture();
    await p.startDpu();
    await waitFor(() => capture.status().snapshot?.tablesLeft === 0, {
      timeoutMs: 60_000,
      what: "the initial snapshot (keyless table included)",
    });
    await waitFor(() => n > 300, { timeoutMs: 30_000, what: "writes after the snapshot" });
    writing = false;
    await writer;
    await p.converged("log", 60_000);
    await p.converged("k", 60_000);
  } finally {
    writing = false;
    await p.close();
  }
});
