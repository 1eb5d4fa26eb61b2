import assert from "node:assert/strict";
import { test } from "node:test";
import { waitFor } from "@dfs/common";
import { pipelineSchema } from "@dfs/config";
import { sourceConnection } from "@dfs/testkit";
import { seededRandom, testSeed } from "../support/failure.js";
import { openPipeline, q } from "../support/pipeline.js";
import { shopDifferences, shopLoad, shopPipeline, sourceSchema, targetSchema } from "../support/shop.js";

const CHANGES = 50_000;

test("pipeline: 50,000 mixed changes on customers -> orders -> order_items reach clients -> sales -> sale_lines through generated keys, with the target's own writes untouched", async (t) => {
  const seed = testSeed();
  const p = await openPipeline("pipe", {}, {});
  const { db, targetDb: tdb } = p;
  const writers = await Promise.all([0, 1, 2, 3].map(() => sourceConnection()));
  try {
    for (const sql of sourceSchema(db)) await p.src.query(sql);
    for (const sql of targetSchema(tdb)) await p.dst.query(sql);
    // The mappings go through the config's schema, like a user's.
    p.cfg.pipeline = pipelineSchema.parse(shopPipeline(db, tdb));
    await p.startCapture();
    await p.startDpu();

    // The target takes its own writes into the same tables meanwhile.
    let own = 0;
    let loading = true;
    const ownWriter = (async () => {
      while (loading) {
        const [res] = await p.dst.query(
          `INSERT INTO ${q(tdb)}.clients (full_name, email, origin) VALUES (?, NULL, 'own')`,
          [`own ${own}`],
        );
        const id = (res as { insertId: number }).insertId;
        await p.dst.query(
          `INSERT INTO ${q(tdb)}.sales (client_id, placed, amount, origin) VALUES (?, '2020-01-01', 1.00, 'own')`,
          [id],
        );
        own++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const started = Date.now();
    const written = await shopLoad(db, writers, CHANGES, seededRandom(seed));
    const loaded = Date.now();
    loading = false;
    await ownWriter;
    assert.ok(written >= CHANGES, `${written} changes written`);

    let diffs: string[] = [];
    await waitFor(
      async () => {
        diffs = await shopDifferences(p.src, p.dst, db, tdb);
        return diffs.length === 0;
      },
      {
        timeoutMs: 240_000,
        intervalMs: 1000,
        what: "the target to equal the source through the mappings",
      },
    ).catch(() => {
      assert.deepEqual(diffs, [], `seed ${seed}; ${JSON.stringify(p.dpu?.status())}`);
    });
    t.diagnostic(
      `seed ${seed}: ${written} changes written in ${loaded - started} ms; target equal ${Date.now() - loaded} ms after`,
    );
    // The target's own rows are untouched.
    const [ownRows] = await p.dst.query(
      `SELECT COUNT(*) AS n FROM ${q(tdb)}.clients c JOIN ${q(tdb)}.sales s USING (client_id) WHERE c.origin = 'own' AND s.origin = 'own' AND c.full_name LIKE 'own %' AND s.amount = 1.00`,
    );
    assert.equal(Number((ownRows as { n: number }[])[0]!.n), own, "the target's own rows");
    assert.equal(p.dpu!.status().deadLettered, 0, "nothing dead-lettered");
  } finally {
    await Promise.all(writers.map((w) => w.end().catch(() => {})));
    await p.close();
  }
});
