/** `dfs doctor`'s checks of NATS: reachable with the configured credentials, JetStream enabled, the stream. */
import { ConfigError, errorMessage, TransientError } from "@dfs/common";
import { type DfsConfig, describeConfig } from "@dfs/config";
import { connectNats, subjects } from "@dfs/nats";
import { jetstreamManager } from "@nats-io/jetstream";
import { type CheckResult, fail, ok } from "./doctor-report.js";

export async function checkNats(cfg: DfsConfig): Promise<CheckResult[]> {
  // describeConfig shows URLs with their passwords and tokens masked.
  const where = String((describeConfig(cfg).nats as { url: string }).url);
  let nc: Awaited<ReturnType<typeof connectNats>>;
  try {
    nc = await connectNats({ ...cfg.nats, name: "dfs-doctor" });
  } catch (err) {
    if (err instanceof TransientError)
      return [
        fail(
          "nats: reachable",
          errorMessage(err),
          `start nats-server (with -js), or fix nats.url (DFS_NATS_URL); now ${where}`,
          "unavailable",
        ),
      ];
    if (err instanceof ConfigError)
      return [
        fail(
          "nats: reachable",
          errorMessage(err),
          "fix nats.url or nats.token (DFS_NATS_URL, DFS_NATS_TOKEN)",
        ),
      ];
    throw err;
  }
  try {
    const out = [ok("nats: reachable", `nats-server ${nc.info?.version ?? "?"} at ${where}`)];
    let jsm: Awaited<ReturnType<typeof jetstreamManager>>;
    try {
      jsm = await jetstreamManager(nc, { timeout: 5000 });
      const info = await jsm.getAccountInfo();
      out.push(ok("nats: JetStream", `enabled; ${info.streams} stream(s), ${info.storage} bytes stored`));
    } catch (err) {
      if ((err as Error).name === "JetStreamNotEnabled")
        out.push(
          fail(
            "nats: JetStream",
            `JetStream is not enabled: ${errorMessage(err)}`,
            "start nats-server with -js (or `jetstream {}` in its config), and enable it for this account",
          ),
        );
      else out.push(fail("nats: JetStream", errorMessage(err), "check the NATS server's log", "unavailable"));
      return out;
    }
    const stream = subjects.streamName(cfg.source.id);
    try {
      const s = await jsm.streams.info(stream);
      out.push(
        ok("nats: stream", `${stream}: ${s.state.messages} message(s), last sequence ${s.state.last_seq}`),
      );
    } catch (err) {
      if ((err as Error).name === "StreamNotFoundError")
        out.push(ok("nats: stream", `${stream} does not exist yet; capture creates it`));
      else
        out.push(
          fail(
            "nats: stream",
            `${stream}: ${errorMessage(err)}`,
            "check the NATS server's log",
            "unavailable",
          ),
        );
    }
    return out;
  } finally {
    await nc.close();
  }
}
