//! The engine's operations in their JSON shapes, one function each.
//!
//! Every surface (CLI, wasmtime guest, npm package, HTTP API) and every
//! fixture runner goes through these functions, so the same JSON in gives
//! the same JSON out everywhere. [`run`] dispatches by operation name, which
//! is what the surface-neutral fixture corpus (`tests/fixtures/*.jsonl`)
//! names in each case's `op`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::MAX_CONDITIONS;
use crate::diagnostic::Report;
use crate::explain::{ConditionOutcome, Explanation};
use crate::model::{Condition, EventType, IngestEvent, Webhook};
use crate::ruleset::{Intake, Rejected, RuleSet};

pub use crate::backtest::{Backtest, BacktestMatch, BacktestRequest, DEFAULT_SAMPLES, backtest};

/// Input of [`check`]: an expression and the webhook's condition ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The logic expression.
    pub expression: String,
    /// The condition ids it may use.
    #[serde(default)]
    pub ids: Vec<u32>,
}

/// Input of [`eval`]: an expression, its ids and each condition's truth.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRequest {
    /// The logic expression.
    pub expression: String,
    /// The condition ids it may use; defaults to the keys of `truth`.
    #[serde(default)]
    pub ids: Option<Vec<u32>>,
    /// Whether each condition holds; a condition left out does not.
    #[serde(default)]
    pub truth: Truth,
}

/// Whether each condition holds, keyed by id: `{"1": true, "2": false}`,
/// each condition once: [`eval`] refuses `"1"` and `"01"` together rather
/// than take one, since JavaScript puts keys that look like array indices
/// first and which came last would depend on the surface. A list
/// rather than a map: there are at most [`MAX_CONDITIONS`] ids to evaluate
/// with, and the browser's wasm carries no B-tree for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_json::Map<String, Value>")]
pub struct Truth(pub Vec<(u32, bool)>);

impl Truth {
    /// Whether condition `id` holds: its value given, else false.
    pub fn of(&self, id: u32) -> bool {
        self.0
            .iter()
            .find(|(given, _)| *given == id)
            .is_some_and(|(_, holds)| *holds)
    }

    /// The smallest id given more than once, when there are at most
    /// [`MAX_CONDITIONS`] entries (past that the ids are refused anyway).
    pub fn given_twice(&self) -> Option<u32> {
        if self.0.len() > MAX_CONDITIONS {
            return None;
        }
        self.ids()
            .into_iter()
            .find(|id| self.0.iter().filter(|(given, _)| given == id).count() > 1)
    }

    /// The ids given, ascending, each once; past [`MAX_CONDITIONS`]
    /// entries, every id as given (too many to evaluate with: the refusal
    /// counts them).
    pub fn ids(&self) -> Vec<u32> {
        if self.0.len() > MAX_CONDITIONS {
            return self.0.iter().map(|(id, _)| *id).collect();
        }
        let mut ids = Vec::with_capacity(self.0.len());
        for (id, _) in &self.0 {
            if let Err(at) = ids.binary_search(id) {
                ids.insert(at, *id);
            }
        }
        ids
    }
}

impl TryFrom<serde_json::Map<String, Value>> for Truth {
    type Error = crate::read::Error;

    fn try_from(entries: serde_json::Map<String, Value>) -> Result<Self, Self::Error> {
        crate::read::from_value(&Value::Object(entries))
    }
}

/// Output of [`eval`]: the result, or the report of an invalid expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "EvalResult"))]
pub enum EvalResponse {
    /// The expression is valid; this is its value.
    Value {
        /// Whether the expression holds.
        result: bool,
    },
    /// The expression is invalid.
    Invalid(Report),
}

/// Input of [`match_event`]: webhooks and one event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// The webhooks to match against.
    pub webhooks: Vec<Webhook>,
    /// The event.
    pub event: IngestEvent,
}

/// Output of [`match_event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MatchResponse {
    /// The ids of the webhooks that fire, sorted.
    pub matched: Vec<String>,
    /// Webhooks refused as invalid (they never fire).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(test, ts(as = "Option<Vec<Rejected>>", optional))]
    pub rejected: Vec<Rejected>,
}

/// Input of the `ingest` operation: webhooks, and a batch of events as the
/// helpdesk sends them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// The webhooks to match against (an invalid one never fires).
    pub webhooks: Vec<Webhook>,
    /// The events, each checked as [`crate::admit_event`] checks it.
    pub events: Vec<Value>,
}

/// Input of [`explain`] and [`test_condition`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest<T> {
    /// The webhook (or the condition) to explain.
    #[serde(alias = "condition")]
    pub webhook: T,
    /// The event.
    pub event: IngestEvent,
}

/// Output of [`explain`] and [`test_condition`]: the answer or the report
/// of an invalid definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Explained<T> {
    /// The definition is valid.
    Answer(T),
    /// The definition is invalid.
    Invalid(Report),
}

/// Validates an expression.
pub fn check(request: &CheckRequest) -> Report {
    crate::validate_expression(&request.expression, &request.ids)
}

/// Evaluates an expression.
pub fn eval(request: &EvalRequest) -> EvalResponse {
    let keys: Vec<u32>;
    let ids = match &request.ids {
        Some(ids) => ids.as_slice(),
        None => {
            keys = request.truth.ids();
            &keys
        }
    };
    if let Some(id) = request.truth.given_twice() {
        let message = format!("condition {id} is given more than once in `truth`");
        let twice = crate::Diagnostic::at("truth", crate::Code::DuplicateId, message);
        return EvalResponse::Invalid(Report::new(vec![twice.for_condition(id)], Vec::new()));
    }
    match crate::parse_expression(&request.expression, ids) {
        Ok(expr) => EvalResponse::Value {
            result: expr.eval(&mut |id| request.truth.of(id)),
        },
        Err(report) => EvalResponse::Invalid(report),
    }
}

/// Matches one event against webhooks.
pub fn match_event(request: &MatchRequest) -> MatchResponse {
    let (rules, rejected) = RuleSet::from_webhooks(&request.webhooks);
    MatchResponse {
        matched: rules
            .matches(&request.event)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        rejected,
    }
}

/// What a rule set of these webhooks makes of a batch of events
/// ([`RuleSet::ingest`]).
pub fn ingest(request: &IngestRequest) -> Intake {
    let (rules, _rejected) = RuleSet::from_webhooks(&request.webhooks);
    rules.ingest(&request.events)
}

/// Explains a webhook against an event.
pub fn explain(request: &ExplainRequest<Webhook>) -> Explained<Explanation> {
    match crate::explain(&request.webhook, &request.event) {
        Ok(explanation) => Explained::Answer(explanation),
        Err(crate::Invalid(report)) => Explained::Invalid(report),
    }
}

/// Tests one condition against an event: whether it holds and what it saw.
/// This is the condition step of [`explain`], for one condition alone.
pub fn test_condition(request: &ExplainRequest<Condition>) -> Explained<ConditionOutcome> {
    let webhook = Webhook {
        id: "condition-test".to_owned(),
        name: "condition test".to_owned(),
        enabled: true,
        url: "https://condition.test/".to_owned(),
        events: EventType::ALL
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        channels: Vec::new(),
        accounts: Vec::new(),
        conditions: vec![request.webhook.clone()],
        match_mode: "all".to_owned(),
        expression: None,
        rate_limit: None,
    };
    match crate::explain(&webhook, &request.event) {
        Ok(mut explanation) => match explanation.conditions.pop() {
            Some(outcome) => Explained::Answer(outcome),
            None => Explained::Invalid(Report::default()),
        },
        Err(crate::Invalid(report)) => Explained::Invalid(report),
    }
}

/// An operation of the JSON API: what each case of the fixture corpus
/// names in its `op`, and what every surface runs through [`run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Validates an expression ([`CheckRequest`] → [`Report`]).
    Check,
    /// Evaluates an expression ([`EvalRequest`] → [`EvalResponse`]).
    Eval,
    /// Validates a webhook as sent ([`crate::validate_webhook_json`]).
    Validate,
    /// Matches one event ([`MatchRequest`] → [`MatchResponse`]).
    Match,
    /// Checks, matches and explains a batch ([`IngestRequest`] → [`Intake`]).
    Ingest,
    /// Explains a webhook against an event.
    Explain,
    /// Tests one condition against an event.
    Condition,
    /// Checks one ingest event ([`crate::Admission`]).
    Event,
    /// Checks each ingest event of an array.
    Events,
    /// The catalogue (its input is ignored).
    Catalog,
    /// Runs one webhook over a list of events ([`BacktestRequest`] →
    /// [`Backtest`], or the [`Report`] of an invalid webhook).
    Backtest,
}

impl Op {
    /// Every operation, in the order the docs list them.
    pub const ALL: [Op; 11] = [
        Op::Check,
        Op::Eval,
        Op::Validate,
        Op::Match,
        Op::Ingest,
        Op::Explain,
        Op::Condition,
        Op::Event,
        Op::Events,
        Op::Catalog,
        Op::Backtest,
    ];

    /// The name the fixture corpus and the shells use.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Check => "check",
            Op::Eval => "eval",
            Op::Validate => "validate",
            Op::Match => "match",
            Op::Ingest => "ingest",
            Op::Explain => "explain",
            Op::Condition => "condition",
            Op::Event => "event",
            Op::Events => "events",
            Op::Catalog => "catalog",
            Op::Backtest => "backtest",
        }
    }
}

impl std::str::FromStr for Op {
    type Err = RunError;

    fn from_str(name: &str) -> Result<Self, RunError> {
        Op::ALL
            .into_iter()
            .find(|op| op.as_str() == name)
            .ok_or_else(|| RunError::UnknownOperation(crate::read::one_line(name)))
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`run`] could not run an operation: the caller's mistake, never a
/// rule problem (those are answered as reports).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No such operation (its name as sent, escaped to one line).
    #[error("unknown operation `{0}`; use one of: {names}", names = crate::join(&Op::ALL.map(Op::as_str), ", "))]
    UnknownOperation(String),
    /// The input does not have the operation's shape.
    #[error("invalid input for `{op}`: {source}")]
    Input {
        /// The operation.
        op: Op,
        /// What was found wrong.
        source: crate::read::Error,
    },
}

/// Runs the operation named `op` on a JSON input and returns its answer as
/// JSON text, serialised once, straight from the answer's type ([`encode`]).
///
/// # Examples
///
/// ```
/// let out = inbox_rules::api::run("eval", &serde_json::json!({
///     "expression": "1 or 2 and 3", "truth": {"1": false, "2": true, "3": true}
/// })).unwrap();
/// assert_eq!(out, r#"{"result":true}"#);
/// ```
pub fn run(op: &str, input: &Value) -> Result<String, RunError> {
    run_op(op.parse()?, input)
}

/// [`run`] for an operation already named.
pub fn run_op(op: Op, input: &Value) -> Result<String, RunError> {
    fn parse<T: crate::read::FromJson>(op: Op, input: &Value) -> Result<T, RunError> {
        crate::read::from_value(input).map_err(|source| RunError::Input { op, source })
    }
    let output = match op {
        Op::Check => encode(&check(&parse(op, input)?)),
        Op::Eval => encode(&eval(&parse(op, input)?)),
        Op::Validate => encode(
            &crate::validate_webhook_json(input)
                .map_err(|source| RunError::Input { op, source })?,
        ),
        Op::Match => encode(&match_event(&parse(op, input)?)),
        Op::Ingest => encode(&ingest(&parse(op, input)?)),
        Op::Explain => encode(&explain(&parse(op, input)?)),
        Op::Condition => encode(&test_condition(&parse(op, input)?)),
        Op::Event => encode(&crate::admit_event(input)),
        Op::Events => {
            let events: Vec<Value> = parse(op, input)?;
            encode(&events.iter().map(crate::admit_event).collect::<Vec<_>>())
        }
        Op::Catalog => crate::catalog::CATALOG_JSON.to_owned(),
        Op::Backtest => match backtest(&parse(op, input)?) {
            Ok(answer) => encode(&answer),
            Err(report) => encode(&report),
        },
    };
    Ok(output)
}

/// Reads JSON text as `T`, or says in one line why it is not a `what`.
/// Every surface uses this, so a malformed argument gets the same message
/// everywhere.
///
/// # Examples
///
/// ```
/// let err = inbox_rules::api::decode::<inbox_rules::IngestEvent>("event", "{}").unwrap_err();
/// assert!(err.starts_with("invalid event: missing field `event`"), "{err}");
/// ```
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| format!("invalid {what}: {e}"))
}

/// Serialises an answer: the one serialisation every surface prints.
pub fn encode(answer: &impl Serialize) -> String {
    serde_json::to_string(answer).unwrap_or_else(|_| "null".to_owned())
}
