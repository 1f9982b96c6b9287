//! Builds the rule engine guest (`engine/guest`) for `wasm32-wasip2` and
//! leaves it in `OUT_DIR` for `src/rules/runtime.rs` to embed, so that building the
//! host is all it takes: `cargo build -p inbox-webhooks`.
//!
//! The guest is built by a nested `cargo build` in its own target directory
//! (`target/guest`), always in the `guest` profile, so the outer build's
//! directory lock is never contended and the guest is compiled once whatever
//! profile the host is built in.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const ARTIFACT: &str = "inbox_rules_guest.wasm";

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    for watched in [
        "engine/core/src",
        "engine/core/Cargo.toml",
        "engine/guest/src",
        "engine/guest/Cargo.toml",
        "engine/wit",
        "Cargo.lock",
        // Embedded by `sqlx::migrate!`.
        "host/migrations",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    require_target();

    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("guest"),
        None => root.join("target").join("guest"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "-p",
            "inbox-rules-guest",
            "--target",
            TARGET,
            "--profile",
            "guest",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the host (coverage, sanitizers…) must not reach
        // the guest. SIMD128 lets the guest's substring search use vector
        // instructions, which wasmtime compiles to native ones.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+simd128")
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the rule engine guest: {e}"));
    assert!(
        status.success(),
        "building the rule engine guest (engine/guest) failed; see above"
    );

    let built = target_dir.join(TARGET).join("guest").join(ARTIFACT);
    let out = PathBuf::from(env("OUT_DIR")).join(ARTIFACT);
    std::fs::copy(&built, &out)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", built.display(), out.display()));
}

/// Stops the build with the command that fixes it when the target is
/// missing, rather than with a page of compiler errors.
fn require_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let installed = sysroot.is_some_and(|root| {
        Path::new(&root)
            .join("lib")
            .join("rustlib")
            .join(TARGET)
            .join("lib")
            .is_dir()
    });
    assert!(
        installed,
        "the rule engine runs as a {TARGET} component, and that target is not installed: \
         run `rustup target add {TARGET}` and build again"
    );
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}
