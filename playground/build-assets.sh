#!/usr/bin/env bash
# GraphiQL's browser files, built from the pinned npm packages in playground/package.json and
# package-lock.json: `npm ci` in a temporary directory, then the packages' prebuilt files are
# copied into playground/assets/ (committed; the server embeds them and serves them at
# /playground/assets/) with LICENSES.txt, the licence notices of every installed package.
# The same lockfile gives the same bytes, so the output is reproducible.
#
# Usage:
#   bash playground/build-assets.sh                        rebuild playground/assets/
#   bash playground/build-assets.sh --check                rebuild in a temporary directory and
#                                                          fail if playground/assets/ differs
#   bash playground/build-assets.sh --upgrade graphiql@4.1.2 [react@18.3.1 ...]
#                                                          pin new versions (package.json and
#                                                          package-lock.json), then rebuild
# Then rebuild the server (the assets are compiled in).
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '9,15p' build-assets.sh >&2; exit 2; }
mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --upgrade) mode=upgrade; shift; [ $# -gt 0 ] || usage ;;
  *) usage ;;
esac

# A check that passed is not repeated for the same inputs and outputs (stamp under target/).
stamp=../target/playground-assets-check.sha256
inputs() { sha256sum package.json package-lock.json build-assets.sh licenses.mjs assets/* | sha256sum; }
if [ "$mode" = check ] && [ -d assets ] && [ "$(cat "$stamp" 2>/dev/null)" = "$(inputs)" ]; then
  echo "playground/assets/ matches package-lock.json (checked before, same files)" >&2
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json package-lock.json "$work/"
npm_flags=(--ignore-scripts --no-audit --no-fund --loglevel=error)
if [ "$mode" = upgrade ]; then
  (cd "$work" && npm install --package-lock-only --save-exact "${npm_flags[@]}" "$@")
  cp "$work/package.json" "$work/package-lock.json" .
fi
(cd "$work" && npm ci --prefer-offline "${npm_flags[@]}" >&2)

# asset name <- file in node_modules
files=(
  graphiql.min.js:graphiql/graphiql.min.js
  graphiql.min.css:graphiql/graphiql.min.css
  react.production.min.js:react/umd/react.production.min.js
  react-dom.production.min.js:react-dom/umd/react-dom.production.min.js
)
out="$work/assets"
mkdir "$out"
for pair in "${files[@]}"; do
  name=${pair%%:*} from=$work/node_modules/${pair#*:}
  if [ ! -f "$from" ]; then
    echo "FATAL: $from is missing: the pinned package no longer ships this prebuilt file" >&2
    exit 1
  fi
  cp "$from" "$out/$name"
done
node licenses.mjs "$work" >"$out/LICENSES.txt"

if [ "$mode" = check ]; then
  if ! diff -r assets "$out" >/dev/null; then
    diff -rq assets "$out" >&2 || true
    echo "FATAL: playground/assets/ is not what package-lock.json builds; run bash playground/build-assets.sh" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$stamp")" && inputs >"$stamp"
  echo "playground/assets/ matches package-lock.json" >&2
else
  rm -rf assets
  cp -r "$out" assets
  echo "playground/assets/ rebuilt:" >&2
  (cd assets && ls -l) >&2
fi
