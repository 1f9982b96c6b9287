//! `inbox-webhooks rules …`: the rule engine on the command line.
//!
//! Every answer comes from `inbox_rules::api`, so the JSON printed here is
//! the JSON every other surface prints. Commands read and write through
//! `BufRead`/`Write` so tests can drive them without a process.
//!
//! Exit status: 0 when every input was read and valid; 1 when a definition
//! or expression shown in human form is invalid (or a webhook given to
//! `match` was refused); 2 when an input line or file could not be read as
//! the JSON it should be. A bad line in a JSON-lines stream gets one
//! `{"error": "invalid_input", "line": n, "message": …}` line in place of its
//! answer, and the run goes on.

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, Result};
use inbox_rules::api::Op;
use inbox_rules::api::{decode, encode};
use inbox_rules::{Diagnostic, Explanation, Report, Webhook};
use serde::Serialize;
use serde_json::{Value, json};
use unicode_width::UnicodeWidthChar;

use crate::cli::{
    CheckArgs, EngineKind, ExplainArgs, MatchArgs, RulesArgs, RulesCommand, ValidateArgs,
};
use crate::rules::{Budget, InsertError, Runtime, Session, Taken, TenantRules};

/// How a command ended, as a process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesExit {
    /// Everything read, everything valid.
    Ok,
    /// Read fine, but something is invalid.
    Invalid,
    /// Some input could not be read (or the engine failed on it).
    BadInput,
}

impl RulesExit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Invalid => 1,
            Self::BadInput => 2,
        }
    }

    fn worst(self, other: Self) -> Self {
        if other.code() > self.code() {
            other
        } else {
            self
        }
    }
}

/// The engine a command talks to. Both kinds take and give the same JSON
/// text; the native one calls `inbox_rules::api` directly, the wasm one
/// the guest's exports, which call the same functions.
enum Engine {
    Native,
    Wasm(Box<Session>),
}

/// An answer, or why the input could not be answered.
type Answer = std::result::Result<String, String>;

impl Engine {
    fn open(kind: EngineKind) -> Result<Self> {
        Ok(match kind {
            EngineKind::Native => Self::Native,
            EngineKind::Wasm => Self::Wasm(Box::new(Session::new(runtime()?))),
        })
    }

    /// Runs the JSON operation `op` on `input` (JSON text).
    fn call(&mut self, op: Op, input: &str) -> Answer {
        match self {
            Self::Native => {
                let input: Value = decode("input", input)?;
                inbox_rules::api::run_op(op, &input).map_err(|e| e.to_string())
            }
            Self::Wasm(session) => session.call(op, input).map_err(|e| e.to_string()),
        }
    }
}

fn runtime() -> Result<std::sync::Arc<Runtime>> {
    Runtime::new(Budget::default(), Runtime::default_cache_dir())
        .map_err(|e| anyhow::anyhow!("starting the rule engine: {e:#}"))
}

/// Runs a `rules` subcommand.
pub fn run(args: &RulesArgs, stdin: &mut dyn BufRead, out: &mut dyn Write) -> Result<RulesExit> {
    if let RulesCommand::Match(matching) = &args.command {
        return match_events(args.engine, matching, stdin, out);
    }
    let mut engine = Engine::open(args.engine)?;
    match &args.command {
        RulesCommand::Check(check) if check.jsonl => {
            jsonl(stdin, out, |line| engine.call(Op::Check, line))
        }
        RulesCommand::Check(check) => check_human(&mut engine, check, out),
        RulesCommand::Eval(_) => jsonl(stdin, out, |line| engine.call(Op::Eval, line)),
        RulesCommand::Validate(validate) => validate_file(&mut engine, validate, out),
        RulesCommand::Explain(explain) => explain_files(&mut engine, explain, out),
        RulesCommand::Catalog | RulesCommand::Match(_) => {
            let catalog = engine
                .call(Op::Catalog, "null")
                .map_err(anyhow::Error::msg)?;
            print_json(out, &parse_answer::<Value>(&catalog)?)?;
            Ok(RulesExit::Ok)
        }
    }
}

/// Answers one JSON line at a time with `answer`; a line it cannot answer
/// gets an error line in its place.
fn jsonl(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    mut answer: impl FnMut(&str) -> Answer,
) -> Result<RulesExit> {
    let mut outcome = RulesExit::Ok;
    for (number, line) in input.lines().enumerate() {
        let line = line.context("reading standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        match answer(&line) {
            Ok(json) => out.write_all(json.as_bytes())?,
            Err(message) => {
                outcome = RulesExit::BadInput;
                let error =
                    json!({"error": "invalid_input", "line": number + 1, "message": message});
                serde_json::to_writer(&mut *out, &error)?;
            }
        }
        out.write_all(b"\n")?;
    }
    Ok(outcome)
}

fn parse_answer<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).context("reading the engine's answer")
}

fn check_human(engine: &mut Engine, args: &CheckArgs, out: &mut dyn Write) -> Result<RulesExit> {
    let expression = args.expression.as_deref().unwrap_or_default();
    let request = json!({"expression": expression, "ids": args.ids}).to_string();
    let answer = engine
        .call(Op::Check, &request)
        .map_err(anyhow::Error::msg)?;
    let report: Report = parse_answer(&answer)?;
    out.write_all(render_report(expression, &report).as_bytes())?;
    Ok(if report.valid {
        RulesExit::Ok
    } else {
        RulesExit::Invalid
    })
}

/// The report as rustc would show it: each problem, then the expression
/// with a caret line under the span.
pub fn render_report(expression: &str, report: &Report) -> String {
    let mut text = String::new();
    for (level, diagnostic) in report
        .errors
        .iter()
        .map(|d| ("error", d))
        .chain(report.warnings.iter().map(|d| ("warning", d)))
    {
        let _ = writeln!(text, "{level}[{}]: {}", diagnostic.code, diagnostic.message);
        if level == "error" {
            let _ = writeln!(text, "  |");
            let _ = writeln!(text, "  | {expression}");
            let _ = writeln!(text, "  | {}", carets(expression, diagnostic));
        }
    }
    let verdict = match report.errors.len() {
        0 => "valid".to_owned(),
        1 => "invalid: 1 error".to_owned(),
        n => format!("invalid: {n} errors"),
    };
    let _ = writeln!(text, "{verdict}");
    text
}

/// Spaces up to the span, then one `^` per display column of the span (at
/// least one). Tabs are copied so the carets line up under them.
fn carets(expression: &str, diagnostic: &Diagnostic) -> String {
    let start = diagnostic.start.unwrap_or(0) as usize;
    let end = diagnostic.end.unwrap_or(0) as usize;
    let mut line = String::new();
    let mut marked = 0;
    let mut at = 0;
    for c in expression.chars() {
        let width = c.width().unwrap_or(0);
        if at >= end && at >= start {
            break;
        }
        if at < start {
            if c == '\t' {
                line.push('\t');
            } else {
                line.extend(std::iter::repeat_n(' ', width));
            }
        } else {
            marked += width.max(1);
        }
        at += c.len_utf16();
    }
    line.extend(std::iter::repeat_n('^', marked.max(1)));
    line
}

fn validate_file(
    engine: &mut Engine,
    args: &ValidateArgs,
    out: &mut dyn Write,
) -> Result<RulesExit> {
    let webhook: Value = match read_json(&args.webhook)? {
        Ok(webhook) => webhook,
        Err(message) => return bad_file(out, &message),
    };
    match engine.call(Op::Validate, &webhook.to_string()) {
        Ok(answer) => {
            let report: Report = parse_answer(&answer)?;
            print_json(out, &report)?;
            Ok(if report.valid {
                RulesExit::Ok
            } else {
                RulesExit::Invalid
            })
        }
        Err(message) => bad_file(out, &message),
    }
}

/// A rule set of either engine.
enum Rules {
    Native(Box<inbox_rules::RuleSet>),
    Wasm(Box<TenantRules>),
}

impl Rules {
    /// Adds a webhook (JSON); `Err` with the report (JSON) or a message.
    fn insert(&mut self, webhook: &str) -> Answer {
        match self {
            Self::Native(set) => {
                let webhook: Webhook = decode("webhook", webhook)?;
                set.insert(&webhook)
                    .map(|w| encode(&w))
                    .map_err(|report| encode(&report))
            }
            Self::Wasm(set) => set.insert(webhook).map_err(|refused| match refused {
                InsertError::Invalid(report) => report,
                InsertError::Engine(e) => e.to_string(),
            }),
        }
    }

    /// The ids of the webhooks that fire for an event (JSON), taken in as
    /// the server takes it in: an event the server would refuse is
    /// answered with its first problem.
    fn matches(&mut self, event: &str) -> std::result::Result<Vec<String>, String> {
        let intake = match self {
            Self::Native(set) => {
                let event: Value = decode("event", event)?;
                encode(&set.ingest(&[event]))
            }
            // No bound: one event fires each webhook at most once.
            Self::Wasm(set) => match set
                .ingest(&format!("[{event}]"), u32::MAX)
                .map_err(|e| e.to_string())?
            {
                Taken::Intake(intake) => intake,
                Taken::TooMany(fired) => {
                    return Err(format!("the event fires {fired} webhooks, past any bound"));
                }
            },
        };
        let intake: Value = decode("intake", &intake)?;
        if let Some(problem) = intake["events"][0]["errors"].get(0) {
            let at = problem["path"].as_str().unwrap_or_default();
            let message = problem["message"].as_str().unwrap_or_default();
            return Err(format!("invalid event: `{at}`: {message}"));
        }
        let fired = intake["matched"][0]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(fired
            .iter()
            .filter_map(|f| f["webhookId"].as_str().map(str::to_owned))
            .collect())
    }
}

fn match_events(
    kind: EngineKind,
    args: &MatchArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<RulesExit> {
    let webhooks: Vec<Value> = match read_json(&args.webhooks)? {
        Ok(webhooks) => webhooks,
        Err(message) => return bad_file(out, &message),
    };
    let mut rules = match kind {
        EngineKind::Native => Rules::Native(Box::default()),
        EngineKind::Wasm => Rules::Wasm(Box::new(TenantRules::new(runtime()?))),
    };
    let mut outcome = RulesExit::Ok;
    for webhook in &webhooks {
        if let Err(why) = rules.insert(&webhook.to_string()) {
            outcome = RulesExit::Invalid;
            let report: Value = serde_json::from_str(&why).unwrap_or(Value::String(why));
            let line =
                json!({"error": "invalid_webhook", "id": webhook.get("id"), "report": report});
            eprintln!("{line}");
        }
    }
    let mut file;
    let events: &mut dyn BufRead = if args.events.as_os_str() == "-" {
        stdin
    } else {
        let opened = std::fs::File::open(&args.events)
            .with_context(|| format!("opening {}", args.events.display()))?;
        file = std::io::BufReader::new(opened);
        &mut file
    };
    let answered = jsonl(events, out, |line| {
        rules.matches(line).map(|ids| encode(&ids))
    })?;
    Ok(outcome.worst(answered))
}

fn explain_files(
    engine: &mut Engine,
    args: &ExplainArgs,
    out: &mut dyn Write,
) -> Result<RulesExit> {
    let webhook: Value = match read_json(&args.webhook)? {
        Ok(webhook) => webhook,
        Err(message) => return bad_file(out, &message),
    };
    let event: Value = match read_json(&args.event)? {
        Ok(event) => event,
        Err(message) => return bad_file(out, &message),
    };
    let request = json!({"webhook": webhook, "event": event}).to_string();
    let answer = match engine.call(Op::Explain, &request) {
        Ok(answer) => answer,
        Err(message) => return bad_file(out, &message),
    };
    let answer: Value = parse_answer(&answer)?;
    if answer.get("fires").is_none() {
        print_json(out, &answer)?;
        return Ok(RulesExit::Invalid);
    }
    if args.json {
        print_json(out, &answer)?;
    } else {
        let explanation: Explanation = serde_json::from_value(answer)?;
        out.write_all(render_explanation(&explanation).as_bytes())?;
    }
    Ok(RulesExit::Ok)
}

/// An explanation as text: the verdict, each check, each condition.
pub fn render_explanation(explanation: &Explanation) -> String {
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let mut text = String::new();
    let verdict = if explanation.fires {
        "fires"
    } else {
        "does not fire"
    };
    let _ = writeln!(text, "webhook {} {verdict}", explanation.webhook_id);
    for check in &explanation.checks {
        let _ = writeln!(
            text,
            "  {} {:<13} {}",
            mark(check.passed),
            check.check,
            check.message
        );
    }
    if !explanation.conditions.is_empty() {
        let outcome = &explanation.match_outcome;
        let how = match &outcome.expression {
            Some(expression) => format!("expression `{expression}`"),
            None => format!("match {}", outcome.mode),
        };
        let _ = writeln!(text, "conditions ({how} → {}):", outcome.result);
        for c in &explanation.conditions {
            let value = if c.value.is_null() {
                String::new()
            } else {
                format!(" {}", c.value)
            };
            let _ = writeln!(
                text,
                "  {} {:>3}  {} {}{value}    (saw {})",
                mark(c.holds),
                c.id,
                c.field,
                c.operator,
                c.actual
            );
        }
    }
    text
}

/// Reads a JSON file: `Err` for a missing file, `Ok(Err)` for bad JSON.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Result<T, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())))
}

fn bad_file(out: &mut dyn Write, message: &str) -> Result<RulesExit> {
    serde_json::to_writer(
        &mut *out,
        &json!({"error": "invalid_input", "message": message}),
    )?;
    out.write_all(b"\n")?;
    Ok(RulesExit::BadInput)
}

fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests;
