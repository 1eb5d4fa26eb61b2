#!/usr/bin/env bash
# Every test of the project: lint, build (the code and, apart from it, the tests), start the local
# stack (MariaDB source :13306, target :13307, NATS :14222; installs mariadb-server and
# nats-server when missing), then node's test runner over both lanes in one run: the unit lane
# first (no servers, seconds), then the integration lane against the stack. Files run one at a
# time: integration tests share the stack's servers and some stop them for a moment.
# `npm run test:unit` runs the unit lane alone, without the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
npx biome check .
npx turbo run build build:test
node packages/cli/bin/dfs.js stack up
node scripts/run-tests.mjs --all unit integration
