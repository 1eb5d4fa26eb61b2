#!/usr/bin/env node
// The `dfs` command. All logic is in ../dist (built by `npm run build`).
import { main } from "../dist/index.js";

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
