// The monitor end to end in headless Chromium: a real capture and DPU on the test stack, the
// monitor watching them, the page logged in with the token. A row inserted on the source shows on
// the page within 2 s; the page's pause button stops the pipeline, resume starts it again.
// DFS_SCREENSHOTS=1 also runs a short mixed load and writes docs/monitor.png and monitor-login.png.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type CaptureService, startCapture } from "@dfs/capture";
import { sleep, waitFor } from "@dfs/common";
import { type ControlClient, connectControl } from "@dfs/control";
import { type DpuService, startDpu } from "@dfs/dpu";
import { connectNats } from "@dfs/nats";
import { deleteStreams, ensureStack, sourceConnection, testConfig, uniqueId, urls } from "@dfs/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import mysql from "mysql2/promise";
import type { Browser, Page } from "playwright-core";
import { type MonitorService, startMonitor } from "../../dist/index.js";
import { launchChromium } from "../support/browser.js";
import { quiet } from "../support/fakes.js";

const TOKEN = "monitor-e2e-token-7c1d";
const SHOTS = process.env.DFS_SCREENSHOTS === "1";
const shot = (name: string) => fileURLToPath(new URL(`../../../../docs/${name}`, import.meta.url));
const q = (name: string) => `\`${name.replace(/`/g, "``")}\``;

/** Fails if `happened` becomes true within `ms` (polled): for "nothing moves while paused". */
async function staysFalse(happened: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    assert.equal(await happened(), false, what);
    await sleep(100);
  }
}

describe("monitor in a browser", () => {
  const id = uniqueId("mon");
  const db = `${id}_src`;
  const targetDb = `${id}_dst`;
  let src: mysql.Connection;
  let dst: mysql.Connection;
  let nc: NatsConnection;
  let capture: CaptureService | null = null;
  let dpu: DpuService | null = null;
  let monitor: MonitorService | null = null;
  let control: ControlClient | null = null;
  let browser: Browser | null = null;
  let page: Page;
  let url = "";

  const targetHas = async (key: number) => {
    const [rows] = await dst.query(`SELECT COUNT(*) AS n FROM ${q(targetDb)}.orders WHERE id = ?`, [key]);
    return Number((rows as { n: number }[])[0]?.n) === 1;
  };
  const text = (testid: string) => page.getByTestId(testid).textContent({ timeout: 1000 });
  const stateOf = (name: string) =>
    page.getByTestId(`stage-${name}`).getAttribute("data-state", { timeout: 1000 });

  before(async () => {
    await ensureStack();
    browser = await launchChromium();
    const cfg = testConfig(id, db, {
      target: { url: urls.targetUrl, database: targetDb },
      control: { token: TOKEN },
      dpu: { retry: { initialMs: "50ms", maxMs: "1s" } },
    });
    src = await sourceConnection();
    dst = await mysql.createConnection({ host: "127.0.0.1", port: 13307, user: "root" });
    nc = await connectNats({ url: urls.natsUrl, name: `test-${id}` });
    await src.query(`CREATE DATABASE ${q(db)}`);
    await src.query(
      `CREATE TABLE ${q(db)}.orders (id INT PRIMARY KEY, customer VARCHAR(40), amount DECIMAL(10,2), status VARCHAR(12))`,
    );
    capture = await startCapture(cfg, { log: quiet });
    dpu = await startDpu(cfg, { log: quiet });
    const at = (port: number) => `127.0.0.1:${port}`;
    monitor = await startMonitor(
      testConfig(id, db, {
        control: { token: TOKEN },
        monitor: {
          http: { port: 0 },
          services: [
            {
              kind: "capture",
              grpc: at(capture.endpoints.grpc),
              http: `http://${at(capture.endpoints.http)}`,
            },
            {
              kind: "dpu",
              name: "dpu",
              grpc: at(dpu.endpoints.grpc),
              http: `http://${at(dpu.endpoints.http)}`,
            },
          ],
        },
      }),
      { log: quiet },
    );
    control = connectControl("capture", at(capture.endpoints.grpc), { token: TOKEN });
    url = `http://127.0.0.1:${monitor.port}/`;
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    control?.close();
    await monitor?.stop().catch(() => {});
    await dpu?.stop().catch(() => {});
    await capture?.stop().catch(() => {});
    await deleteStreams(nc, id).catch(() => {});
    await nc?.close().catch(() => {});
    await src?.query(`DROP DATABASE IF EXISTS ${q(db)}`).catch(() => {});
    await dst?.query(`DROP DATABASE IF EXISTS ${q(targetDb)}`).catch(() => {});
    await dst
      ?.query("DELETE FROM `_dfs`.`_dfs_checkpoint` WHERE consumer LIKE ?", [`${id}:%`])
      .catch(() => {});
    await src?.end().catch(() => {});
    await dst?.end().catch(() => {});
  });

  test("the login form refuses a wrong token and accepts the right one", async () => {
    await page.goto(url);
    await page.getByTestId("login-token").waitFor({ state: "visible" });
    assert.equal(await page.getByTestId("app").isHidden(), true);
    if (SHOTS) {
      await page.setViewportSize({ width: 1100, height: 640 });
      await page.screenshot({ path: shot("monitor-login.png") });
      await page.setViewportSize({ width: 1440, height: 1000 });
    }
    await page.getByTestId("login-token").fill("not-the-token");
    await page.getByTestId("login-submit").click();
    await waitFor(async () => (await text("login-message")) === "wrong token", {
      timeoutMs: 5000,
      what: "the login form to say the token is wrong",
    });
    assert.equal(await page.getByTestId("app").isHidden(), true);

    await page.getByTestId("login-token").fill(TOKEN);
    await page.getByTestId("login-submit").click();
    await page.getByTestId("app").waitFor({ state: "visible", timeout: 5000 });
    await waitFor(
      async () => (await stateOf("capture")) === "running" && (await stateOf("dpu")) === "running",
      {
        timeoutMs: 10_000,
        what: "capture and dpu shown as running",
      },
    );
    assert.ok(!page.url().includes(TOKEN), "the token is not in the URL");
    assert.equal(
      await page.getByTestId("login-token").inputValue(),
      "",
      "the token is cleared from the form",
    );
  });

  test("a row inserted on the source shows on the page within 2 s", async () => {
    const table = `${db}.orders`;
    // A first row, so the table's counts are on the page and the pipeline is warm.
    await src.query(`INSERT INTO ${q(db)}.orders VALUES (1, 'warm-up', 1.00, 'new')`);
    await waitFor(async () => (await text("recent-changes"))?.includes("id=1"), {
      timeoutMs: 15_000,
      what: "the warm-up row on the page",
    });
    // The recent changes (Activity) and the per-table counts (/metrics) are read one after the
    // other in a poll round: the count may show one round later than the row. Wait for it, rather
    // than reading it once (which failed on a slow machine when the round fell between the two).
    await waitFor(async () => (await text(`captured-${table}`)) === "1 / 0 / 0", {
      timeoutMs: 10_000,
      what: "the warm-up row counted on the page",
    });
    const countBefore = "1 / 0 / 0";

    const started = Date.now();
    await src.query(`INSERT INTO ${q(db)}.orders VALUES (424242, 'ada', 12.50, 'new')`);
    await waitFor(async () => (await text("recent-changes"))?.includes("id=424242"), {
      timeoutMs: 5000,
      intervalMs: 25,
      what: "the inserted row in the recent changes",
    });
    const shown = Date.now() - started;
    await waitFor(async () => (await text(`captured-${table}`)) !== countBefore, {
      timeoutMs: 5000,
      intervalMs: 25,
      what: "the table's captured count to increase",
    });
    const counted = Date.now() - started;
    console.log(`# insert shown in recent changes after ${shown} ms, counted after ${counted} ms`);
    assert.ok(shown < 2000, `the change took ${shown} ms to show`);
    assert.ok(counted < 2000, `the count took ${counted} ms to change`);
    assert.equal(await text(`captured-${table}`), "2 / 0 / 0");

    // Applied on the target: the DPU's count and its INSERT statement (placeholders, no values).
    await waitFor(async () => (await text(`applied-${table}`)) === "2 / 0 / 0", {
      timeoutMs: 10_000,
      what: "the applied count on the page",
    });
    const dml = (await text("recent-dml")) ?? "";
    assert.match(dml, /INSERT INTO/);
    assert.ok(!dml.includes("ada"), "statements are shown without values");
    assert.equal(await targetHas(424242), true);
  });

  test("the page's pause button stops capture; resume starts it again", async () => {
    await page.getByTestId("btn-pause-capture").click();
    await waitFor(async () => (await page.getByTestId("call-result").getAttribute("data-ok")) === "true", {
      timeoutMs: 5000,
      what: "the pause call to succeed",
    });
    assert.equal((await control!.status()).state, "paused");
    await waitFor(async () => (await stateOf("capture")) === "paused", {
      timeoutMs: 3000,
      what: "the diagram to show capture paused",
    });
    assert.equal(await page.getByTestId("btn-pause-capture").isDisabled(), true);
    const read = (await control!.status()).changesTotal;
    await src.query(`INSERT INTO ${q(db)}.orders VALUES (424243, 'grace', 7.25, 'new')`);
    await staysFalse(
      async () => (await targetHas(424243)) || (await control!.status()).changesTotal !== read,
      2000,
      "the row was read or reached the target while capture was paused",
    );
    assert.ok(!(await text("recent-changes"))?.includes("id=424243"));

    await page.getByTestId("btn-resume-capture").click();
    await waitFor(async () => (await control!.status()).state === "running", {
      timeoutMs: 5000,
      what: "capture to run again",
    });
    await waitFor(() => targetHas(424243), { timeoutMs: 15_000, what: "the row on the target after resume" });
    await waitFor(async () => (await text("recent-changes"))?.includes("id=424243"), {
      timeoutMs: 5000,
      what: "the row on the page after resume",
    });
    assert.equal(await stateOf("capture"), "running");
  });

  test("the page's Snapshot button re-reads the tables; the reads show on the page", async () => {
    const table = `${db}.orders`;
    await page.getByTestId("btn-snapshot-capture").click();
    await waitFor(async () => (await page.getByTestId("call-result").getAttribute("data-ok")) === "true", {
      timeoutMs: 5000,
      what: "the snapshot call to succeed",
    });
    assert.match(
      (await text("call-result")) ?? "",
      /^capture: snapshot \S+ of every included table started$/,
    );
    // Every row of orders comes back as a read (op r): in the recent changes and the counts. The
    // number is the table's, not a constant: it does not depend on the tests before this one.
    const [counted] = await src.query(`SELECT COUNT(*) AS n FROM ${q(db)}.orders`);
    const rows = Number((counted as { n: number | string }[])[0]!.n);
    assert.ok(rows > 0, "orders has rows to snapshot");
    await waitFor(async () => (await text(`captured-${table}`))?.endsWith(`+ ${rows} read`), {
      timeoutMs: 15_000,
      what: `the snapshot's ${rows} reads counted on the page`,
    });
    assert.match((await text("recent-changes")) ?? "", /read/);
    await waitFor(async () => (await text(`applied-${table}`))?.endsWith(`+ ${rows} read`), {
      timeoutMs: 15_000,
      what: "the snapshot's reads applied",
    });
  });

  test("screenshots for docs/monitor.md (DFS_SCREENSHOTS=1)", { skip: !SHOTS }, async () => {
    // A short mixed load over three tables, one change dead-lettered, so every panel has content.
    await src.query(
      `CREATE TABLE ${q(db)}.customers (id INT PRIMARY KEY, name VARCHAR(40), tier VARCHAR(10));
       CREATE TABLE ${q(db)}.items (order_id INT, line INT, sku VARCHAR(20), qty INT, PRIMARY KEY (order_id, line))`,
    );
    const tables = async () => {
      const [rows] = await dst.query(`SHOW TABLES IN ${q(targetDb)}`);
      return (rows as Record<string, string>[]).map((r) => Object.values(r)[0]);
    };
    await waitFor(async () => (await tables()).includes("customers") && (await tables()).includes("items"), {
      timeoutMs: 15_000,
      what: "the new tables on the target",
    });
    await dst.query(`ALTER TABLE ${q(targetDb)}.customers MODIFY tier VARCHAR(4)`);
    const end = Date.now() + 25_000;
    for (let i = 1000; Date.now() < end; i++) {
      const burst = 5 + Math.round(20 * (1 + Math.sin(i / 6)));
      const values = Array.from({ length: burst }, (_, k) => `(${i * 100 + k}, 'c${k}', ${k}.99, 'new')`);
      await src.query(`INSERT INTO ${q(db)}.orders VALUES ${values.join(",")}`);
      await src.query(
        `INSERT INTO ${q(db)}.items VALUES (${i}, 1, 'SKU-${i}', 2), (${i}, 2, 'SKU-${i + 1}', 1)`,
      );
      await src.query(
        `UPDATE ${q(db)}.orders SET status = 'paid' WHERE id BETWEEN ${i * 100} AND ${i * 100 + 3}`,
      );
      if (i % 3 === 0) await src.query(`INSERT INTO ${q(db)}.customers VALUES (${i}, 'cust ${i}', 'gold')`);
      if (i % 4 === 0) await src.query(`DELETE FROM ${q(db)}.orders WHERE id = ${i * 100 + 1}`);
      if (i === 1010) await src.query(`INSERT INTO ${q(db)}.customers VALUES (1, 'too long', 'platinum')`);
      await sleep(250);
    }
    await waitFor(async () => (await text("dlq"))?.includes("customers"), {
      timeoutMs: 15_000,
      what: "the dead letter on the page",
    });
    await page.getByTestId("btn-pause-dpu").click();
    await waitFor(async () => (await stateOf("dpu")) === "paused", { timeoutMs: 5000, what: "dpu paused" });
    await src.query(`INSERT INTO ${q(db)}.orders VALUES (999999, 'late', 1.00, 'new')`);
    await waitFor(async () => (await text("recent-changes"))?.includes("id=999999"), {
      timeoutMs: 5000,
      what: "the last row on the page",
    });
    await page.mouse.move(0, 0);
    await page.screenshot({ path: shot("monitor.png"), fullPage: true });
    await page.getByTestId("btn-resume-dpu").click();
    await waitFor(async () => (await stateOf("dpu")) === "running", { timeoutMs: 5000, what: "dpu running" });
  });
});
