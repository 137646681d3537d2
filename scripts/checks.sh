#!/usr/bin/env bash
# `npm run checks`: the type checks (npm run typecheck) and the lint (npm run lint) side by side:
# each is one single-threaded process, so on 2 cores they take the time of the longer one.
# Both always finish; the output of each is printed whole, one after the other.
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
npm run --silent typecheck >"$out/typecheck" 2>&1 &
typecheck=$!
npm run --silent lint >"$out/lint" 2>&1 &
lint=$!
status=0
wait "$typecheck" || { status=1; echo "checks: npm run typecheck failed:"; }
cat "$out/typecheck"
wait "$lint" || { status=1; echo "checks: npm run lint failed:"; }
cat "$out/lint"
[ "$status" -eq 0 ] && echo "checks: typecheck and lint pass"
exit "$status"
