#!/usr/bin/env bash
# Builds the npm package @cloudcx/inbox-rules into engine/web/pkg/.
#
# Idempotent: installs the pinned wasm-bindgen CLI and the npm `binaryen`
# (for wasm-opt) only when missing, then builds the engine for
# wasm32-unknown-unknown, generates the browser (ES module) and Node.js
# bindings, optimises the wasm with `wasm-opt -Os`, and writes package.json,
# README.md and the type declarations. Fails when the gzipped wasm grows
# past the size budget.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

budget=125000  # gzipped wasm, bytes: the ceiling (122.4 KB is reached, 2.4 KB of it the backtest operation and the described event types; plus 5 KB would be higher)

# The CLI must be exactly the version the crate is pinned to (`=x.y.z`).
version=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "wasm-bindgen must be pinned with = in Cargo.toml" >&2; exit 1; }

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
  echo "installing wasm-bindgen-cli $version"
  cargo install wasm-bindgen-cli --version "$version"
fi
if [ ! -x "$here/tools/node_modules/.bin/wasm-opt" ]; then
  (cd "$here/tools" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Source paths end up in the wasm (panic locations); without the machine's
# own prefixes (the registry's directory, the toolchain's commit) the
# package is the same whichever machine builds it, and smaller.
remap=()
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  remap+=("--remap-path-prefix=${dir}=")
done
commit=$(rustc -vV | sed -n 's/^commit-hash: //p')
remap+=("--remap-path-prefix=/rustc/${commit}/=")
RUSTFLAGS="${remap[*]}" \
  cargo build --locked -p inbox-rules-web --target wasm32-unknown-unknown --profile wasm
wasm="target/wasm32-unknown-unknown/wasm/inbox_rules_web.wasm"

pkg="$here/pkg"
rm -rf "$pkg"
wasm-bindgen --target web --out-dir "$pkg/web" --out-name inbox_rules "$wasm"
wasm-bindgen --target nodejs --out-dir "$pkg/node" --out-name inbox_rules "$wasm"
for out in "$pkg/web/inbox_rules_bg.wasm" "$pkg/node/inbox_rules_bg.wasm"; do
  # -Os rather than -Oz: a few hundred bytes larger raw, smaller gzipped,
  # which is what a browser downloads. --low-memory-unused lets wasm-opt
  # fold constant offsets into loads and stores, assuming nothing lives in
  # the first kilobyte of memory: Rust's wasm puts its 1 MiB stack first,
  # growing down towards address 0 with data above it, and the engine's
  # recursion is bounded (expressions nest 32 deep, JSON 128), so the stack
  # never gets near that kilobyte.
  "$here/tools/node_modules/.bin/wasm-opt" -Os --converge --low-memory-unused \
    --strip-producers --strip-target-features \
    --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$out" -o "$out"
done
# The typed functions (npm/typed.js) over the wasm's `run`: an ES module
# for the browser, and the same file as CommonJS for Node's `require`.
cp "$here/npm/typed.js" "$here/npm/index.js" "$here/npm/index.d.ts" "$pkg/web/"
sed -e 's/^export function typed/function typed/' "$here/npm/typed.js" > "$pkg/node/typed.cjs"
echo 'module.exports = { typed };' >> "$pkg/node/typed.cjs"
# The Node entry is CommonJS; an ES module beside it gives Node the same
# `import` surface as the browser build (including a no-op `init`).
cp "$here/npm/node.cjs" "$pkg/node/index.cjs"
cp "$here/npm/node.mjs" "$pkg/node/index.mjs"
echo '{ "type": "commonjs" }' > "$pkg/node/package.json"
cp "$here/npm/README.md" "$pkg/README.md"

crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
sed "s/\"version\": \"0.0.0\"/\"version\": \"$crate_version\"/" "$here/npm/package.json" > "$pkg/package.json"

size=$(gzip -9 -c "$pkg/web/inbox_rules_bg.wasm" | wc -c)
printf 'wasm: %d bytes, %d bytes gzipped (budget %d)\n' \
  "$(wc -c < "$pkg/web/inbox_rules_bg.wasm")" "$size" "$budget"
if [ "$size" -gt "$budget" ]; then
  echo "the package's wasm is over its size budget" >&2
  exit 1
fi
