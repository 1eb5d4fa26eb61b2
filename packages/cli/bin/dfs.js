#!/usr/bin/env node
// The `dfs` command. All logic is in ../dist (built by `npm run build`).
import { main } from "../dist/index.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err?.stack ?? String(err));
    process.exitCode = 1;
  },
);
