//! The host's integration tests: one binary, shared helpers in `common`.

mod api;
mod cli;
mod common;
mod crash;
mod delivery;
mod engine;
mod history;
mod ingest;
mod network;
#[path = "../support/postgres.rs"]
mod postgres;
mod quotas;
mod secrets;
mod serve;
