//! The host's integration tests: one binary, shared helpers in `common`.

mod cli;
mod common;
mod engine;
