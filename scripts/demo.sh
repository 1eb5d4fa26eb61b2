#!/usr/bin/env bash
# The demo: build, start the local stack, run capture on examples/sync.yaml, write a small load to
# the source and print every change as it arrives in JetStream. Extra arguments go to `dfs demo`
# (e.g. --seconds 0 to run until Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
npx turbo run build
node packages/cli/bin/dfs.js demo -c examples/sync.yaml "$@"
