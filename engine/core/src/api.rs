//! The engine's operations in their JSON shapes, one function each.
//!
//! Every surface (CLI, wasmtime guest, npm package, HTTP API) and every
//! fixture runner goes through these functions, so the same JSON in gives
//! the same JSON out everywhere. [`run`] dispatches by operation name, which
//! is what the surface-neutral fixture corpus (`tests/fixtures/*.jsonl`)
//! names in each case's `op`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::Report;
use crate::explain::{ConditionOutcome, Explanation};
use crate::model::{Condition, EventType, IngestEvent, Webhook};
use crate::ruleset::{Rejected, RuleSet};

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
    pub truth: BTreeMap<u32, bool>,
}

/// Output of [`eval`]: the result, or the report of an invalid expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
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
pub struct MatchResponse {
    /// The ids of the webhooks that fire, sorted.
    pub matched: Vec<String>,
    /// Webhooks refused as invalid (they never fire).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
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
            keys = request.truth.keys().copied().collect();
            &keys
        }
    };
    match crate::parse_expression(&request.expression, ids) {
        Ok(expr) => EvalResponse::Value {
            result: expr.eval(&mut |id| request.truth.get(&id).copied().unwrap_or(false)),
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
    };
    match crate::explain(&webhook, &request.event) {
        Ok(mut explanation) => match explanation.conditions.pop() {
            Some(outcome) => Explained::Answer(outcome),
            None => Explained::Invalid(Report::default()),
        },
        Err(crate::Invalid(report)) => Explained::Invalid(report),
    }
}

/// Why [`run`] could not run an operation: the caller's mistake, never a
/// rule problem (those are answered as reports).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No such operation.
    #[error("unknown operation `{0}`; use one of: {OPERATIONS}")]
    UnknownOperation(String),
    /// The input does not have the operation's shape.
    #[error("invalid input for `{op}`: {source}")]
    Input {
        /// The operation.
        op: String,
        /// What serde found wrong.
        source: serde_json::Error,
    },
}

/// The operation names [`run`] takes.
pub const OPERATIONS: &str =
    "check, eval, validate, match, explain, condition, event, events, catalog";

/// Runs the operation `op` on a JSON input and returns its answer as JSON
/// text, serialised once, straight from the answer's type ([`encode`]).
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
    fn parse<T: serde::de::DeserializeOwned>(op: &str, input: &Value) -> Result<T, RunError> {
        T::deserialize(input).map_err(|source| RunError::Input {
            op: op.to_owned(),
            source,
        })
    }
    let output = match op {
        "check" => encode(&check(&parse(op, input)?)),
        "eval" => encode(&eval(&parse(op, input)?)),
        "validate" => encode(&crate::validate_webhook(&parse(op, input)?)),
        "match" => encode(&match_event(&parse(op, input)?)),
        "explain" => encode(&explain(&parse(op, input)?)),
        "condition" => encode(&test_condition(&parse(op, input)?)),
        "event" => encode(&crate::admit_event(input)),
        "events" => match input {
            Value::Array(events) => {
                encode(&events.iter().map(crate::admit_event).collect::<Vec<_>>())
            }
            _ => {
                return Err(RunError::Input {
                    op: op.to_owned(),
                    source: serde::de::Error::custom("expected an array of events"),
                });
            }
        },
        "catalog" => encode(&crate::catalog()),
        _ => return Err(RunError::UnknownOperation(op.to_owned())),
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
