#!/usr/bin/env bash
# The control panel's tests: build it, then drive it in Debian's Chromium
# against the real server (target/debug/inbox-webhooks, built by
# `cargo test`) and a receiver on 127.0.0.1. Screenshots land in
# web/tests/screenshots/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

cd "$here"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
# `cargo test --workspace` (scripts/test) has built this binary; building it
# again with `cargo build` would compile the host a second time with other
# features, so only a missing binary is built.
bin="${INBOX_BIN:-$root/target/debug/inbox-webhooks}"
if [ ! -x "$bin" ]; then
  cargo build --locked -q -p inbox-webhooks --manifest-path "$root/Cargo.toml"
fi
INBOX_BIN="$bin" node --test tests/
