//! The Inbox Tickets webhook rule engine.
//!
//! One crate decides validity and matching for every surface: natively in
//! the server's tests and CLI, inside wasmtime in the server, and in the
//! browser through wasm-bindgen. It does no I/O and keeps no global state,
//! so the same input gives the same answer everywhere.
//!
//! The façade:
//!
//! * [`validate_expression`], [`parse_expression`], [`evaluate`]: logic
//!   expressions such as `(1 or 2 or 3) and (4 and 5)`;
//! * [`validate_webhook`], [`explain`], [`catalog`]: webhook definitions;
//! * [`admit_event`]: whether an ingest event may be accepted, and the body
//!   its deliveries carry;
//! * [`RuleSet`]: compiled webhooks that match events;
//! * [`api`]: all of the above in their JSON shapes, for the shells.
//!
//! # Examples
//!
//! ```
//! let report = inbox_rules::validate_expression("(1 or 2）and 3", &[1, 2, 3]);
//! assert_eq!(report.errors[0].code.as_str(), "fullwidth_character");
//! assert_eq!((report.errors[0].start, report.errors[0].end), (Some(7), Some(8)));
//! ```
#![forbid(unsafe_code)]

pub mod api;
mod backtest;
mod catalog;
mod condition;
mod diagnostic;
mod event;
mod explain;
mod expression;
mod fold;
mod model;
mod plan;
pub mod read;
mod ruleset;
mod webhook;
pub mod weight;
pub use webhook::hidden;

#[cfg(test)]
mod typescript;

use std::collections::BTreeMap;

pub use catalog::{
    CUSTOM_FIELD_PREFIX, Catalog, FieldInfo, Kind, Limits, MAX_CONDITION_ID, MAX_CONDITIONS,
    MAX_LIST_ITEMS, MAX_MATCH_CHARS, MAX_PATTERN_CHARS, MAX_PATTERN_WEIGHT, MAX_RATE_LIMIT,
    MAX_REGEX_BYTES, MAX_URL_CHARS, MAX_VALUE_CHARS, Operator, OperatorInfo, PRIORITIES, STATUSES,
    ValueType, catalog,
};
pub use diagnostic::{Code, Diagnostic, Invalid, Report};
pub use event::{Admission, admit_event};
pub use explain::{
    CheckOutcome, ConditionOutcome, Explanation, MAX_ACTUAL_CHARS, MAX_ACTUAL_ITEMS, MatchOutcome,
};
pub use expression::{Expr, MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH};
pub use model::{
    Change, Changes, Condition, EventType, IngestEvent, MatchMode, Message, Requester, Ticket,
    Webhook,
};
pub use ruleset::{Fired, Intake, Rejected, RuleSet};

/// Validates a logic expression against the webhook's condition ids and
/// reports every problem found (see SPEC §3 for the codes and spans).
///
/// # Examples
///
/// ```
/// let report = inbox_rules::validate_expression("1 or 4", &[1, 2, 3]);
/// assert!(!report.valid);
/// assert_eq!(report.errors[0].code.as_str(), "unknown_condition");
/// assert_eq!((report.errors[0].start, report.errors[0].end), (Some(5), Some(6)));
/// assert_eq!(report.warnings.len(), 2); // conditions 2 and 3 are unused
/// ```
pub fn validate_expression(expression: &str, ids: &[u32]) -> Report {
    if let Some(problem) = id_problem(ids) {
        return Report::new(vec![problem], Vec::new());
    }
    expression::validate(expression, ids)
}

/// What is wrong with the condition ids an expression is checked against:
/// more than a webhook may have. (An id such as `0` is no error here: the
/// expression's use of it is, as `unknown_condition`.)
fn id_problem(ids: &[u32]) -> Option<Diagnostic> {
    (ids.len() > MAX_CONDITIONS).then(|| {
        Diagnostic::at(
            "ids",
            Code::TooManyItems,
            format!(
                "a webhook has at most {MAX_CONDITIONS} conditions, so at most {MAX_CONDITIONS} ids; {} were given",
                ids.len()
            ),
        )
    })
}

/// Parses a valid logic expression into an [`Expr`] to evaluate many times.
pub fn parse_expression(expression: &str, ids: &[u32]) -> Result<Expr, Report> {
    if let Some(problem) = id_problem(ids) {
        return Err(Report::new(vec![problem], Vec::new()));
    }
    expression::parse(expression, ids)
}

/// Evaluates a logic expression given whether each condition holds (a
/// condition missing from `truth` does not). The expression may use the ids
/// that are keys of `truth`.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// let truth = BTreeMap::from([(1, true), (2, false), (3, false)]);
/// // `and` binds tighter than `or`: 1 or (2 and 3)
/// assert_eq!(inbox_rules::evaluate("1 or 2 and 3", &truth), Ok(true));
/// assert_eq!(inbox_rules::evaluate("(1 or 2) and 3", &truth), Ok(false));
/// ```
pub fn evaluate(expression: &str, truth: &BTreeMap<u32, bool>) -> Result<bool, Invalid> {
    let ids: Vec<u32> = truth.keys().copied().collect();
    let expr = parse_expression(expression, &ids).map_err(Invalid)?;
    Ok(expr.eval(&mut |id| truth.get(&id).copied().unwrap_or(false)))
}

/// Validates a whole webhook: name, URL, events, subscription, conditions,
/// match mode and expression. Diagnostics carry a `path` such as
/// `conditions[2].value`, and expression diagnostics their spans.
///
/// # Examples
///
/// ```
/// let webhook: inbox_rules::Webhook = serde_json::from_str(r#"{
///     "name": "Refunds", "url": "https://crm.example/hook", "events": ["TicketCreated"],
///     "conditions": [{"id": 1, "field": "subjekt", "operator": "is", "value": "x"}]
/// }"#).unwrap();
/// let report = inbox_rules::validate_webhook(&webhook);
/// assert_eq!(report.errors[0].code.as_str(), "unknown_field");
/// assert_eq!(report.errors[0].path.as_deref(), Some("conditions[0].field"));
/// ```
pub fn validate_webhook(webhook: &Webhook) -> Report {
    match webhook::CompiledWebhook::compile(webhook) {
        Ok((_, warnings)) => Report::new(Vec::new(), warnings),
        Err(report) => report,
    }
}

/// Validates a webhook as sent, in JSON: a key it does not have (a typo
/// such as `channel` for `channels`, in the webhook or a condition) is an
/// `unknown_key` error at its path, then [`validate_webhook`] reports the
/// rest. When the JSON does not have a webhook's shape (`operater` for
/// `operator` leaves a condition without its operator), the unknown keys
/// are the report, which names the cause; `Err` when there are none.
///
/// # Examples
///
/// ```
/// let report = inbox_rules::validate_webhook_json(&serde_json::json!({
///     "name": "Refunds", "url": "https://crm.example/hook",
///     "events": ["TicketCreated"], "channel": ["email"]
/// })).unwrap();
/// assert_eq!(report.errors[0].code.as_str(), "unknown_key");
/// assert_eq!(report.errors[0].path.as_deref(), Some("channel"));
/// ```
pub fn validate_webhook_json(sent: &serde_json::Value) -> Result<Report, read::Error> {
    let unknown = model::unknown_keys(sent);
    let webhook = match read::from_value::<Webhook>(sent) {
        Ok(webhook) => webhook,
        Err(_) if !unknown.is_empty() => return Ok(Report::new(unknown, Vec::new())),
        Err(error) => return Err(error),
    };
    let mut report = validate_webhook(&webhook);
    report.errors.splice(0..0, unknown);
    Ok(Report::new(report.errors, report.warnings))
}

/// Whether `webhook` fires for `event`.
pub fn matches(webhook: &Webhook, event: &IngestEvent) -> Result<bool, Invalid> {
    let (compiled, _) = webhook::CompiledWebhook::compile(webhook).map_err(Invalid)?;
    Ok(compiled.decide(&condition::EventView::new(event), &mut webhook::Quick))
}

/// Explains why `webhook` does or does not fire for `event`: each check in
/// order, each condition with the value it saw, and the match mode's result.
pub fn explain(webhook: &Webhook, event: &IngestEvent) -> Result<Explanation, Invalid> {
    explain::explain(webhook, event).map_err(Invalid)
}

/// `items` with `separator` between them: `[T]::join` for `&str` only, one
/// function in the wasm where the standard one is a copy per item type.
pub(crate) fn join(items: &[&str], separator: &str) -> String {
    let mut joined = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            joined.push_str(separator);
        }
        joined.push_str(item);
    }
    joined
}
