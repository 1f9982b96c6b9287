#!/usr/bin/env bash
# Tests the npm package as its users get it: builds it (build.sh), packs it
# with `npm pack`, installs the tarball into a temporary project, then runs
# the fixture corpus against it with Node's test runner, compiles a
# TypeScript consumer of every export, and loads it in headless Chromium.
#
# Chromium comes from Debian (/usr/bin/chromium, or $CHROMIUM); scripts/test
# installs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

"$here/build.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/tests/package.json" "$here/tests/tsconfig.json" "$here/tests/"*.mjs "$here/tests/"*.ts "$work/"
tarball=$(cd "$work" && npm pack "$here/pkg" --silent)
(cd "$work" && npm install --no-audit --no-fund --loglevel=error && npm install --no-save --no-audit --no-fund --loglevel=error "./$tarball")

cd "$work"
echo "package: $tarball ($(wc -c < "$tarball") bytes packed)"
CORPUS_DIR="$root/tests/fixtures" node --test corpus.test.mjs browser.test.mjs
npx --no-install tsc -p tsconfig.json
echo "typescript: consumer.ts compiles against the declarations"
