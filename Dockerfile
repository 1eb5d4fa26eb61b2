# syntax=docker/dockerfile:1
#
# One image for every dfs service; the command picks the service:
#
#   docker run IMAGE capture -c /etc/dfs/dfs.yaml     (also dpu, relmgr, monitor, run, doctor, ctl ...)
#
# Configuration: a YAML file mounted at /etc/dfs/dfs.yaml, overridden by DFS_* variables; secrets
# from files with DFS_*_FILE (e.g. DFS_SOURCE_PASSWORD_FILE=/run/secrets/source_password), see
# docs/configuration.md. The capture journal belongs on a volume at /var/lib/dfs
# (DFS_JOURNAL_PATH=/var/lib/dfs/journal.db). docker-compose.yml at the root runs the whole
# pipeline with it.
#
# packages/cli/test/integration/image.test.ts runs this file's COPY and RUN lines of the build
# stage in a temporary directory and starts the services with the ENTRYPOINT: keep the build
# steps plain (one command per RUN, no shell tricks that only work in the image).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: every dependency, the native better-sqlite3 compiled here, the TypeScript built ----
FROM ${NODE_IMAGE} AS build
# better-sqlite3 is compiled from source here (npm_config_build_from_source below), so no prebuilt
# binary is downloaded at build time; the toolchain stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# npm_config_build_from_source is read by better-sqlite3's install script (prebuild-install): it
# compiles with node-gyp instead of fetching a binary.
ENV npm_config_build_from_source=true \
    TURBO_TELEMETRY_DISABLED=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false
WORKDIR /app

# Manifests first, so the dependency layer is rebuilt only when they change. Every workspace's
# package.json is listed (image.test.ts checks that none is missing); patches/ is needed by the
# root postinstall (patch-package fixes @vlasky/zongji 0.9.0, pinned to that exact version).
COPY package.json package-lock.json ./
COPY patches/ patches/
COPY proto/package.json proto/
COPY packages/archive/package.json packages/archive/
COPY packages/bench/package.json packages/bench/
COPY packages/cli/package.json packages/cli/
COPY packages/codec/package.json packages/codec/
COPY packages/common/package.json packages/common/
COPY packages/config/package.json packages/config/
COPY packages/control/package.json packages/control/
COPY packages/deploy-tests/package.json packages/deploy-tests/
COPY packages/mapping/package.json packages/mapping/
COPY packages/metrics/package.json packages/metrics/
COPY packages/mysql/package.json packages/mysql/
COPY packages/nats/package.json packages/nats/
COPY packages/stack/package.json packages/stack/
COPY packages/testkit/package.json packages/testkit/
COPY packages/verify/package.json packages/verify/
COPY services/capture/package.json services/capture/
COPY services/dpu/package.json services/dpu/
COPY services/monitor/package.json services/monitor/
COPY services/relmgr/package.json services/relmgr/
RUN npm ci

# The sources (.dockerignore keeps out node_modules, dist, tests' output, .stack, .git ...).
COPY tsconfig.base.json turbo.json ./
COPY proto/ proto/
COPY packages/ packages/
COPY services/ services/
COPY deploy/docker/ deploy/docker/
RUN npm run build
# Dev dependencies out (the TypeScript compiler, turbo, buf, test tools); the patched zongji and
# the compiled better-sqlite3 stay as they are.
RUN npm prune --omit=dev

# ---- runtime: node, the built workspace and its production dependencies; no compiler, no npm cache ----
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the service user; only /var/lib/dfs is writable.
COPY --from=build /app /app
RUN mkdir -p /var/lib/dfs /etc/dfs \
 && chown node:node /var/lib/dfs
# The node image's unprivileged user (uid 1000).
USER node
VOLUME ["/var/lib/dfs"]
# HTTP /metrics /healthz /readyz: capture 9101, relmgr 9102, dpu 9103, monitor 8080 (web UI too);
# gRPC control planes: capture 50101, relmgr 50102, dpu 50103.
EXPOSE 8080 9101 9102 9103 50101 50102 50103
# Finds the service's command and config from the running dfs process and asks its /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs"]
ENTRYPOINT ["node", "/app/packages/cli/bin/dfs.js"]
CMD ["run", "-c", "/etc/dfs/dfs.yaml"]
