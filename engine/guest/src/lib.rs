//! The rule engine as a WebAssembly component: a thin shell over
//! `inbox-rules` that implements `engine/wit/inbox-rules.wit`.
//!
//! Each export converts its arguments (JSON text into the engine's types),
//! calls the engine, and converts the answer back with the engine's own
//! serialisation. No rule logic lives here.
//!
//! The component only exists for `wasm32` (`host/build.rs` builds it for
//! `wasm32-wasip2`); built natively, as `cargo test --workspace` does, the
//! crate is empty, since its export names are not valid native symbols.

#[cfg(target_arch = "wasm32")]
mod component;

/// The guest is single-threaded wasm, which this allocator is built for.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
