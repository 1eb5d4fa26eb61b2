#!/usr/bin/env node
// The `dfs` command. All logic is in ../dist (built by `npm run build`).
import module from "node:module";

// Node 22.1+: compiled code is cached on disk (NODE_COMPILE_CACHE or the OS temp dir), so later
// starts of dfs and of its worker threads skip most of the compiling. Node 20 has no such cache.
module.enableCompileCache?.();
const { main } = await import("../dist/index.js");

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // A failure outside every command (the build missing, a bug in the command line): EX_SOFTWARE.
    console.error(err?.stack ?? String(err));
    process.exitCode = 70;
  },
);
