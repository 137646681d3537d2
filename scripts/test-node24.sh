#!/usr/bin/env bash
# `npm run test:node24`: the fast project on Node.js 24 (`npm test` runs it after the suite on the
# machine's Node.js). Node 24 and a better-sqlite3 built for it come from `npm run setup:test`,
# in .node24/; scripts/node24-env.sh sets the run up to take them. Extra arguments go to vitest
# (a file or a folder, say).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node24-env.sh test:node24
echo "test:node24: Node.js $(node --version)"
exec node node_modules/vitest/vitest.mjs run --project fast "$@"
