// The stack for the cli's integration tests: servers already answering on the stack's ports (e.g. a
// stack another checkout of the project started, which `dfs stack up` here would refuse as not its
// own) are used as they are; otherwise the project's stack is started.
import { connect } from "node:net";
import { ensureStack, urls } from "@dfs/testkit";

function answers(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export async function stackReady(): Promise<void> {
  const up = await Promise.all([urls.sourceUrl, urls.targetUrl, urls.natsUrl].map(answers));
  if (up.every(Boolean)) return;
  await ensureStack();
}
