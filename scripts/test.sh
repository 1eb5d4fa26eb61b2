#!/usr/bin/env bash
# Every test of the project: lint, build, start the local stack (MariaDB source :13306, target
# :13307, NATS :14222; installs mariadb-server and nats-server when missing), then node's test
# runner over every compiled *.test.js. Files run one at a time: integration tests share the
# stack's servers and some change global server settings for a moment.
set -euo pipefail
cd "$(dirname "$0")/.."
npx biome check .
npx turbo run build
node packages/cli/bin/dfs.js stack up
mapfile -t files < <(find packages services proto -path '*/node_modules' -prune -o -path '*/dist/*' -name '*.test.js' -print | sort)
echo "running ${#files[@]} test files"
node --test --test-concurrency=1 --test-timeout=900000 "${files[@]}"
