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
    /// Run the server: the API (and the control panel) on `--bind`.
    Serve(ServeArgs),
    /// Create and list tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Create, list and revoke a tenant's API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Work with the rule engine: validate, evaluate, match, explain.
    Rules(RulesArgs),
}

/// Where the configuration and the database are; every command that opens
/// the database takes these. Each flag overrides its `INBOX_*` variable,
/// which overrides the configuration file.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// A TOML configuration file (or `INBOX_CONFIG`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the server keeps its files (`INBOX_DATA_DIR`; `./data`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The database (`INBOX_DATABASE_URL`; a SQLite file in the data dir).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// `inbox-webhooks serve`
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The address to listen on (`INBOX_BIND`; `127.0.0.1:8080`).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Configuration and database.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `inbox-webhooks tenant …`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its admin API key and ingest key, once.
    Create(TenantCreateArgs),
    /// List the tenants.
    List(ListArgs),
}

/// Arguments of `tenant create`.
#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    /// What the tenant is called, e.g. "Acme Support".
    pub name: String,
    /// Its id (the ingest events' `tenantId`): lower-case letters, digits
    /// and dashes. By default made from the name: "Acme Support" → `acme-support`.
    #[arg(long)]
    pub id: Option<String>,
    /// Print `{"tenantId", "apiKey", "ingestKey"}` instead of text.
    #[arg(long)]
    pub json: bool,
    /// Configuration and database.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Arguments of list commands.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Configuration and database.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `inbox-webhooks key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new key for a tenant and print it, once.
    Create(KeyCreateArgs),
    /// List a tenant's keys (never the keys themselves).
    List(KeyListArgs),
    /// Revoke a key: it stops working at once.
    Revoke(KeyRevokeArgs),
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// The admin API.
    Admin,
    /// Only event ingestion.
    Ingest,
}

/// Arguments of `key create`.
#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// The tenant's id.
    pub tenant: String,
    /// What the key may do.
    #[arg(long, value_enum, default_value_t = KindArg::Admin)]
    pub kind: KindArg,
    /// Print `{"keyId", "key", "kind", "tenantId"}` instead of text.
    #[arg(long)]
    pub json: bool,
    /// Configuration and database.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Arguments of `key list`.
#[derive(Debug, Args)]
pub struct KeyListArgs {
    /// The tenant's id.
    pub tenant: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Configuration and database.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Arguments of `key revoke`.
#[derive(Debug, Args)]
pub struct KeyRevokeArgs {
    /// The key's id, `key_…`, as `key list` shows it.
    pub key_id: String,
    /// Configuration and database.
    #[command(flatten)]
    pub store: StoreArgs,
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
