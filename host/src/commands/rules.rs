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
use inbox_rules::api::{self, CheckRequest, EvalRequest};
use inbox_rules::{Diagnostic, Explanation, IngestEvent, Report, RuleSet, Webhook};
use serde::Serialize;
use serde_json::json;
use unicode_width::UnicodeWidthChar;

use crate::cli::{CheckArgs, ExplainArgs, MatchArgs, RulesCommand, ValidateArgs};

/// How a command ended, as a process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything read, everything valid.
    Ok,
    /// Read fine, but something is invalid.
    Invalid,
    /// Some input could not be read.
    BadInput,
}

impl Outcome {
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

/// Runs a `rules` subcommand.
pub fn run(
    command: &RulesCommand,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        RulesCommand::Check(args) if args.jsonl => {
            jsonl(stdin, out, |request: CheckRequest| api::check(&request))
        }
        RulesCommand::Check(args) => check_human(args, out),
        RulesCommand::Eval(_) => jsonl(stdin, out, |request: EvalRequest| api::eval(&request)),
        RulesCommand::Validate(args) => validate(args, out),
        RulesCommand::Match(args) => match_events(args, stdin, out),
        RulesCommand::Explain(args) => explain(args, out),
        RulesCommand::Catalog => {
            print_json(out, &inbox_rules::catalog())?;
            Ok(Outcome::Ok)
        }
    }
}

/// Answers one JSON line at a time with `answer`.
fn jsonl<Q, A>(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    answer: impl Fn(Q) -> A,
) -> Result<Outcome>
where
    Q: serde::de::DeserializeOwned,
    A: Serialize,
{
    let mut outcome = Outcome::Ok;
    for (number, line) in input.lines().enumerate() {
        let line = line.context("reading standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Q>(&line) {
            Ok(request) => serde_json::to_writer(&mut *out, &answer(request))?,
            Err(error) => {
                outcome = Outcome::BadInput;
                serde_json::to_writer(&mut *out, &bad_line(number + 1, &error))?;
            }
        }
        out.write_all(b"\n")?;
    }
    Ok(outcome)
}

fn bad_line(line: usize, error: &serde_json::Error) -> serde_json::Value {
    json!({"error": "invalid_input", "line": line, "message": error.to_string()})
}

fn check_human(args: &CheckArgs, out: &mut dyn Write) -> Result<Outcome> {
    let expression = args.expression.as_deref().unwrap_or_default();
    let report = inbox_rules::validate_expression(expression, &args.ids);
    out.write_all(render_report(expression, &report).as_bytes())?;
    Ok(if report.valid {
        Outcome::Ok
    } else {
        Outcome::Invalid
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

fn validate(args: &ValidateArgs, out: &mut dyn Write) -> Result<Outcome> {
    let webhook: Webhook = match read_json(&args.webhook)? {
        Ok(webhook) => webhook,
        Err(message) => return bad_file(out, &message),
    };
    let report = inbox_rules::validate_webhook(&webhook);
    print_json(out, &report)?;
    Ok(if report.valid {
        Outcome::Ok
    } else {
        Outcome::Invalid
    })
}

fn match_events(args: &MatchArgs, stdin: &mut dyn BufRead, out: &mut dyn Write) -> Result<Outcome> {
    let webhooks: Vec<Webhook> = match read_json(&args.webhooks)? {
        Ok(webhooks) => webhooks,
        Err(message) => return bad_file(out, &message),
    };
    let (rules, rejected) = RuleSet::from_webhooks(&webhooks);
    let mut outcome = Outcome::Ok;
    for refused in &rejected {
        outcome = Outcome::Invalid;
        let line = json!({"error": "invalid_webhook", "id": refused.id, "report": refused.report});
        eprintln!("{line}");
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
    let answered = jsonl(events, out, |event: IngestEvent| rules.matches(&event))?;
    Ok(outcome.worst(answered))
}

fn explain(args: &ExplainArgs, out: &mut dyn Write) -> Result<Outcome> {
    let webhook: Webhook = match read_json(&args.webhook)? {
        Ok(webhook) => webhook,
        Err(message) => return bad_file(out, &message),
    };
    let event: IngestEvent = match read_json(&args.event)? {
        Ok(event) => event,
        Err(message) => return bad_file(out, &message),
    };
    match inbox_rules::explain(&webhook, &event) {
        Ok(explanation) if args.json => print_json(out, &explanation)?,
        Ok(explanation) => out.write_all(render_explanation(&explanation).as_bytes())?,
        Err(invalid) => {
            print_json(out, &invalid.0)?;
            return Ok(Outcome::Invalid);
        }
    }
    Ok(Outcome::Ok)
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

fn bad_file(out: &mut dyn Write, message: &str) -> Result<Outcome> {
    serde_json::to_writer(
        &mut *out,
        &json!({"error": "invalid_input", "message": message}),
    )?;
    out.write_all(b"\n")?;
    Ok(Outcome::BadInput)
}

fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests;
