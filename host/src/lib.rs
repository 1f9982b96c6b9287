//! The Inbox Tickets webhook server and its command-line tools.
//!
//! `main.rs` only parses arguments and calls [`run`]; everything else lives
//! in this library so that tests drive the same code the binary runs.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connections;
pub mod delivery;
pub mod history;
pub mod ingest;
pub mod keys;
pub mod matcher;
pub mod metrics;
pub mod rules;
pub mod server;
pub mod store;
pub mod test_delivery;
pub mod vault;
pub mod webhooks;

use std::io::{BufRead, Write};

/// mimalloc instead of the system allocator: the server allocates small
/// buffers on many threads at once (requests, JSON, records), where glibc's
/// malloc showed as about a sixth of the server's time under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context as _;

/// Runs a parsed command line; returns the process exit status.
pub fn run(cli: &cli::Cli, stdin: &mut dyn BufRead, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    match &cli.command {
        cli::Command::Rules(args) => Ok(commands::rules::run(args, stdin, stdout)?.code()),
        cli::Command::Serve(args) => {
            let config = commands::admin::config(&args.store, args.bind.clone())?;
            logs(&config.log, config.log_json);
            tokio()?.block_on(server::run(config))?;
            Ok(0)
        }
        cli::Command::Tenant(command) => {
            logs("warn", false);
            tokio()?.block_on(commands::admin::tenant(command, stdout))?;
            Ok(0)
        }
        cli::Command::Key(command) => {
            logs("warn", false);
            tokio()?.block_on(commands::admin::key(command, stdout))?;
            Ok(0)
        }
    }
}

fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Sends `tracing` events to stderr, filtered by `filter` (checked when the
/// configuration was loaded), as text or JSON lines.
fn logs(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Only fails when a subscriber is already set (tests); keep that one.
    let _ = match json {
        true => builder.json().try_init(),
        false => builder.try_init(),
    };
}
