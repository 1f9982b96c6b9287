#!/usr/bin/env bash
# Builds the control panel into web/dist (served by the host at `/`): the
# npm package first (engine/web/build.sh, which the panel depends on as a
# package), then the panel's own dependencies and its Vite build.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

"$root/engine/web/build.sh"
cd "$here"
# The package is a `file:` dependency; a fresh install picks up a rebuild.
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
