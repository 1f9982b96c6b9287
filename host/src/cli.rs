//! The command line: `inbox-webhooks <command>`.
//!
//! The argument types live here; each command's work lives in its module
//! (`rules` for the rule engine's tools).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The Inbox Tickets webhook server and its tools.
#[derive(Debug, Parser)]
#[command(name = "inbox-webhooks", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with the rule engine: validate, evaluate, match, explain.
    Rules(RulesArgs),
}

/// `inbox-webhooks rules [--engine …] …`
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Which build of the engine answers: the WebAssembly guest run in
    /// wasmtime (what the server runs), or the same core linked natively.
    /// Both give byte-identical answers.
    #[arg(long, value_enum, default_value_t = EngineKind::Wasm, global = true)]
    pub engine: EngineKind,
    /// The command.
    #[command(subcommand)]
    pub command: RulesCommand,
}

/// A build of the rule engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// The guest component in wasmtime.
    Wasm,
    /// The core, linked into this binary.
    Native,
}

/// `inbox-webhooks rules …`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a logic expression. With `--jsonl`, validate one
    /// `{"expression", "ids"}` object per stdin line and print one report per
    /// line; otherwise show the problems under the expression and exit 1
    /// when it is invalid.
    Check(CheckArgs),
    /// Evaluate expressions: one `{"expression", "ids", "truth"}` object per
    /// stdin line in, one `{"result": bool}` (or the check report) per line
    /// out.
    Eval(JsonlArgs),
    /// Validate a webhook definition (a JSON file) and print the report.
    Validate(ValidateArgs),
    /// Match events (one JSON object per line) against webhooks (a JSON
    /// array) and print, per event, the ids of the webhooks that fire.
    Match(MatchArgs),
    /// Explain why a webhook does or does not fire for an event.
    Explain(ExplainArgs),
    /// Print the catalogue of fields, operators and value types as JSON.
    Catalog,
}

/// Arguments of `rules check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read JSON lines from stdin and write JSON lines.
    #[arg(long, conflicts_with_all = ["ids", "expression"])]
    pub jsonl: bool,
    /// The condition ids the expression may use, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub ids: Vec<u32>,
    /// The expression to check.
    #[arg(required_unless_present = "jsonl")]
    pub expression: Option<String>,
}

/// Arguments of commands that only speak JSON lines.
#[derive(Debug, Args)]
pub struct JsonlArgs {
    /// Read JSON lines from stdin and write JSON lines (the only mode).
    #[arg(long, required = true)]
    pub jsonl: bool,
}

/// Arguments of `rules validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The webhook definition, as JSON.
    pub webhook: PathBuf,
}

/// Arguments of `rules match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// A JSON array of webhook definitions, each with its `id`.
    #[arg(long)]
    pub webhooks: PathBuf,
    /// Ingest events, one JSON object per line (`-` for stdin).
    #[arg(long)]
    pub events: PathBuf,
}

/// Arguments of `rules explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The webhook definition, as JSON.
    #[arg(long)]
    pub webhook: PathBuf,
    /// The ingest event, as JSON.
    #[arg(long)]
    pub event: PathBuf,
    /// Print the explanation as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
