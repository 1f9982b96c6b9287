//! Explanations: why a webhook does or does not fire for an event.
//!
//! The answer comes from the same [`CompiledWebhook::decide`] that matching
//! runs, watched by a probe that records every step, so an explanation can
//! never disagree with a match.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::condition::EventView;
use crate::diagnostic::Report;
use crate::model::{EventType, IngestEvent, Webhook};
use crate::webhook::{Check, CompiledWebhook, Probe};

/// Why a webhook does or does not fire for an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Explanation {
    /// The webhook explained.
    pub webhook_id: String,
    /// Whether it fires.
    pub fires: bool,
    /// Each check of SPEC §5 in order: `enabled`, `event`, `subscription`,
    /// `conditions`. All are made, even after one fails.
    pub checks: Vec<CheckOutcome>,
    /// Each condition, in definition order, with the value it saw.
    pub conditions: Vec<ConditionOutcome>,
    /// How the conditions combined.
    #[serde(rename = "match")]
    pub match_outcome: MatchOutcome,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CheckOutcome {
    /// `enabled`, `event`, `subscription` or `conditions`.
    #[cfg_attr(
        test,
        ts(type = "\"enabled\" | \"event\" | \"subscription\" | \"conditions\"")
    )]
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// What it found, for the admin.
    pub message: String,
}

/// One condition's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ConditionOutcome {
    /// The condition's id.
    pub id: u32,
    /// Its field.
    pub field: String,
    /// Its operator.
    pub operator: String,
    /// Its value, when it has one.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[cfg_attr(test, ts(type = "string | number | string[]"))]
    pub value: Value,
    /// The value it saw in the event (`null` when the field is missing),
    /// shortened: texts to [`MAX_ACTUAL_CHARS`] characters, lists to
    /// [`MAX_ACTUAL_ITEMS`] entries.
    #[cfg_attr(test, ts(type = "unknown"))]
    pub actual: Value,
    /// Present (`true`) when `actual` was shortened.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(test, ts(as = "Option<bool>", optional))]
    pub truncated: bool,
    /// Whether it holds.
    pub holds: bool,
}

/// The most characters of a text an explanation shows in `actual`.
pub const MAX_ACTUAL_CHARS: usize = 256;

/// The most entries of a list an explanation shows in `actual`.
pub const MAX_ACTUAL_ITEMS: usize = 20;

/// `value` with its texts cut to [`MAX_ACTUAL_CHARS`] characters and its
/// lists to [`MAX_ACTUAL_ITEMS`] entries, and whether anything was cut: an
/// explanation stays small whatever the event carried (it is stored with
/// every delivery).
fn shortened(value: Value) -> (Value, bool) {
    match value {
        Value::String(text) => match text.char_indices().nth(MAX_ACTUAL_CHARS) {
            Some((end, _)) => (Value::String(text[..end].to_owned()), true),
            None => (Value::String(text), false),
        },
        Value::Array(items) => {
            let mut cut = items.len() > MAX_ACTUAL_ITEMS;
            let items = items
                .into_iter()
                .take(MAX_ACTUAL_ITEMS)
                .map(|item| {
                    let (item, item_cut) = shortened(item);
                    cut |= item_cut;
                    item
                })
                .collect();
            (Value::Array(items), cut)
        }
        Value::Object(entries) => {
            let mut cut = false;
            let entries = entries
                .into_iter()
                .map(|(key, item)| {
                    let (item, item_cut) = shortened(item);
                    cut |= item_cut;
                    (key, item)
                })
                .collect();
            (Value::Object(entries), cut)
        }
        other => (other, false),
    }
}

/// How the conditions combined under the match mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MatchOutcome {
    /// `all`, `any` or `expression`.
    #[cfg_attr(test, ts(type = "MatchMode"))]
    pub mode: String,
    /// The expression, in `expression` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub expression: Option<String>,
    /// Whether the conditions pass.
    pub result: bool,
}

/// Records every step of a decision.
#[derive(Default)]
struct Recorder {
    checks: Vec<(Check, bool)>,
    conditions: Vec<Option<bool>>,
}

impl Probe for Recorder {
    const EXHAUSTIVE: bool = true;

    fn check(&mut self, check: Check, passed: bool) {
        self.checks.push((check, passed));
    }

    fn condition(&mut self, index: usize, holds: bool) {
        if let Some(slot) = self.conditions.get_mut(index) {
            slot.get_or_insert(holds);
        }
    }

    fn seen(&self, index: usize) -> bool {
        self.conditions.get(index).is_some_and(Option::is_some)
    }
}

/// Explains `webhook` against `event`; an invalid webhook gets its report.
pub(crate) fn explain(webhook: &Webhook, event: &IngestEvent) -> Result<Explanation, Report> {
    let (compiled, _) = CompiledWebhook::compile(webhook)?;
    Ok(explain_compiled(webhook, &compiled, event))
}

/// Explains an already compiled webhook; `webhook` is its source.
pub(crate) fn explain_compiled(
    webhook: &Webhook,
    compiled: &CompiledWebhook,
    event: &IngestEvent,
) -> Explanation {
    let view = EventView::new(event);
    let mut recorder = Recorder {
        checks: Vec::new(),
        conditions: vec![None; compiled.conditions.len()],
    };
    let fires = compiled.decide(&view, &mut recorder);

    let conditions: Vec<ConditionOutcome> = compiled
        .conditions
        .iter()
        .zip(&webhook.conditions)
        .zip(&recorder.conditions)
        .map(|((c, source), holds)| {
            let (actual, truncated) = shortened(c.observed(&view));
            ConditionOutcome {
                id: c.id,
                field: source.field.clone(),
                operator: source.operator.clone(),
                value: source.value.clone(),
                actual,
                truncated,
                holds: holds.unwrap_or(false),
            }
        })
        .collect();
    let conditions_pass = recorder
        .checks
        .iter()
        .find(|(c, _)| *c == Check::Conditions)
        .is_some_and(|(_, passed)| *passed);
    let checks = recorder
        .checks
        .iter()
        .map(|&(check, passed)| CheckOutcome {
            check: check_name(check).to_owned(),
            passed,
            message: describe(check, passed, compiled, &view, &conditions),
        })
        .collect();
    Explanation {
        webhook_id: webhook.id.clone(),
        fires,
        checks,
        conditions,
        match_outcome: MatchOutcome {
            mode: compiled.mode.as_str().to_owned(),
            expression: webhook
                .expression
                .clone()
                .filter(|_| compiled.mode == crate::MatchMode::Expression),
            result: conditions_pass,
        },
    }
}

fn check_name(check: Check) -> &'static str {
    match check {
        Check::Enabled => "enabled",
        Check::Event => "event",
        Check::Subscription => "subscription",
        Check::Conditions => "conditions",
    }
}

/// The admin-facing sentence for one check.
fn describe(
    check: Check,
    passed: bool,
    webhook: &CompiledWebhook,
    view: &EventView<'_>,
    conditions: &[ConditionOutcome],
) -> String {
    let ticket = &view.event.ticket;
    let name = &view.event.event;
    match (check, passed) {
        (Check::Enabled, true) => "the webhook is enabled".into(),
        (Check::Enabled, false) => "the webhook is disabled".into(),
        (Check::Event, true) => format!("the webhook listens to {name}"),
        (Check::Event, false) if view.event_type.is_none() => {
            format!("`{name}` is not an event type")
        }
        (Check::Event, false) => format!(
            "the webhook does not listen to {name}; it listens to {}",
            crate::join(
                &webhook
                    .event_types()
                    .map(EventType::as_str)
                    .collect::<Vec<_>>(),
                ", "
            )
        ),
        (Check::Subscription, true)
            if webhook.channels.is_empty() && webhook.accounts.is_empty() =>
        {
            "the webhook listens to every channel and account".into()
        }
        (Check::Subscription, true) => match &ticket.channel {
            Some(c) if webhook.channels.contains(c) => format!("channel `{c}` is subscribed"),
            _ => format!(
                "account `{}` is subscribed",
                ticket.account_id.as_deref().unwrap_or("")
            ),
        },
        (Check::Subscription, false) => format!(
            "neither channel `{}` nor account `{}` is subscribed (channels: [{}], accounts: [{}])",
            ticket.channel.as_deref().unwrap_or(""),
            ticket.account_id.as_deref().unwrap_or(""),
            listed(&webhook.channels),
            listed(&webhook.accounts)
        ),
        (Check::Conditions, _) if conditions.is_empty() => {
            "the webhook has no conditions, so every event of its types passes".into()
        }
        (Check::Conditions, passed) => {
            let held: Vec<String> = conditions
                .iter()
                .filter(|c| c.holds)
                .map(|c| c.id.to_string())
                .collect();
            let held = if held.is_empty() {
                "none".to_owned()
            } else {
                listed(&held)
            };
            let verdict = if passed { "pass" } else { "do not pass" };
            let rule = match webhook.mode {
                crate::MatchMode::All => "meet all".to_owned(),
                crate::MatchMode::Any => "meet any".to_owned(),
                crate::MatchMode::Expression => "the logic expression".to_owned(),
            };
            format!("conditions holding: {held}; under {rule} the conditions {verdict}")
        }
    }
}

/// `items` separated by commas.
fn listed(items: &[String]) -> String {
    crate::join(&items.iter().map(String::as_str).collect::<Vec<_>>(), ", ")
}
