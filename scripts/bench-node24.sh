#!/usr/bin/env bash
# npm run bench:node24 [-- options]: `npm run bench` on Node.js 24, the runtime of the image
# (Dockerfile), set up in .node24/ by `npm run setup:test`. Every process of the run (the bare
# proxy, Tollgate, the origin, the load generator) runs on it, so each ratio compares two servers
# on one runtime; better-sqlite3 comes from the build for Node.js 24 (scripts/node24-env.sh).
# The options are bench/run.mjs's; the results JSON records the Node.js version.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node24-env.sh bench:node24
exec node bench/run.mjs "$@"
