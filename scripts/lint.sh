#!/usr/bin/env bash
# `npm run lint [-- PATH...]`: ESLint (type-aware rules, eslint.config.js) and Prettier's check
# (.prettierrc.json), over the whole tree or the given files and folders. Both always run.
# `npm run format [-- PATH...]`: Prettier rewrites the files (the same scope).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin

if [ "${1:-}" = --format ]; then
  shift
  exec "$bin/prettier" --write --ignore-unknown "${@:-.}"
fi

status=0
"$bin/eslint" --max-warnings 0 --no-error-on-unmatched-pattern --no-warn-ignored "${@:-.}" || status=1
"$bin/prettier" --check --ignore-unknown "${@:-.}" || status=1
exit "$status"
