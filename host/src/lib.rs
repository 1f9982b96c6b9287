//! The Inbox Tickets webhook server and its command-line tools.
//!
//! `main.rs` only parses arguments and calls [`run`]; everything else lives
//! in this library so that tests drive the same code the binary runs.
#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod rules;

use std::io::{BufRead, Write};

/// Runs a parsed command line; returns the process exit status.
pub fn run(cli: &cli::Cli, stdin: &mut dyn BufRead, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    match &cli.command {
        cli::Command::Rules(args) => Ok(commands::rules::run(args, stdin, stdout)?.code()),
    }
}
