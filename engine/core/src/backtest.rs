//! What a webhook would have done: one definition run over a list of
//! stored events, counted, with the matches explained.
//!
//! The server backtests a draft rule over a tenant's history and replays a
//! webhook over a window of it; both ask this one function, so the count a
//! panel shows while the rule is edited and the deliveries a replay creates
//! come from the same decision as live matching ([`RuleSet`]).

use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::Value;

use crate::diagnostic::Report;
use crate::event::admit;
use crate::explain::Explanation;
use crate::model::{EventType, Webhook};
use crate::ruleset::RuleSet;

/// How many matches a backtest explains when the request does not say.
pub const DEFAULT_SAMPLES: u32 = 10;

fn default_samples() -> u32 {
    DEFAULT_SAMPLES
}

/// Input of [`backtest`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    /// The definition to try; whether it is enabled aside, it is tried as
    /// if it were.
    pub webhook: Webhook,
    /// The events, as the helpdesk sent them.
    pub events: Vec<Value>,
    /// How many matches to explain, the first ones in the list
    /// ([`DEFAULT_SAMPLES`] when absent).
    #[serde(default = "default_samples")]
    pub samples: u32,
}

/// What a webhook would have done with a list of events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Backtest {
    /// How many events were looked at.
    pub scanned: u32,
    /// How many of them the webhook fires for.
    pub matched: u32,
    /// The matches by event type; types without a match are left out.
    #[cfg_attr(test, ts(type = "Partial<Record<EventType, number>>"))]
    pub by_event: ByEvent,
    /// Events the engine does not admit (never a match): events stored
    /// under rules that have since changed.
    pub refused: u32,
    /// The first matches in the list's order, each explained, at most as
    /// many as asked.
    pub samples: Vec<BacktestMatch>,
}

/// A count per event type, in the order of [`EventType::ALL`]; serialised
/// as an object of the types counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByEvent(pub [u32; EventType::ALL.len()]);

impl ByEvent {
    /// The count of the type named `event`, if it is one.
    pub fn get(&self, event: &str) -> Option<u32> {
        let at = EventType::ALL.iter().position(|e| e.as_str() == event)?;
        self.0.get(at).copied()
    }
}

impl Serialize for ByEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let counted = self.0.iter().filter(|n| **n > 0).count();
        let mut map = serializer.serialize_map(Some(counted))?;
        for (event, n) in EventType::ALL.iter().zip(self.0) {
            if n > 0 {
                map.serialize_entry(event.as_str(), &n)?;
            }
        }
        map.end()
    }
}

/// One event the webhook fires for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct BacktestMatch {
    /// Its place in the list.
    pub index: u32,
    /// The body its delivery carries.
    #[cfg_attr(
        test,
        ts(type = "{ event: EventType; ticketId: string; messageId?: string }")
    )]
    pub payload: Value,
    /// Each check and condition as the event met it.
    pub explanation: Explanation,
}

/// Runs `request.webhook` over `request.events`: each event admitted as
/// ingest admits it, matched as a rule set matches it, the first
/// `request.samples` matches explained. An invalid definition is answered
/// with its report.
///
/// # Examples
///
/// ```
/// use inbox_rules::api::{BacktestRequest, backtest};
///
/// let webhook = serde_json::from_value(serde_json::json!({
///     "name": "New tickets", "url": "https://crm.example/hook", "events": ["TicketCreated"]
/// })).unwrap();
/// let events = vec![
///     serde_json::json!({"event": "TicketCreated", "ticketId": "ebcb7b53-6636-4c6b-8023-4a61d6df694c"}),
///     serde_json::json!({"event": "TicketStatusChanged", "ticketId": "ebcb7b53-6636-4c6b-8023-4a61d6df694c"}),
/// ];
/// let answer = backtest(&BacktestRequest { webhook, events, samples: 1 }).unwrap();
/// assert_eq!((answer.scanned, answer.matched), (2, 1));
/// assert_eq!(answer.samples[0].index, 0);
/// ```
pub fn backtest(request: &BacktestRequest) -> Result<Backtest, Report> {
    let mut webhook = request.webhook.clone();
    webhook.enabled = true;
    if webhook.id.is_empty() {
        // A draft has no id yet; a rule set needs one, and the answer
        // never shows it.
        webhook.id = "draft".to_owned();
    }
    let mut rules = RuleSet::new();
    rules.insert(&webhook)?;
    let mut answer = Backtest {
        scanned: 0,
        matched: 0,
        by_event: ByEvent::default(),
        refused: 0,
        samples: Vec::new(),
    };
    for (index, event) in (0u32..).zip(&request.events) {
        answer.scanned += 1;
        let (admission, decoded) = admit(event);
        let (Some(decoded), Some(payload)) = (decoded, admission.payload) else {
            answer.refused += 1;
            continue;
        };
        if rules.matches(&decoded).is_empty() {
            continue;
        }
        answer.matched += 1;
        if let Some(n) = EventType::ALL
            .iter()
            .position(|e| e.as_str() == decoded.event)
            .and_then(|at| answer.by_event.0.get_mut(at))
        {
            *n += 1;
        }
        if answer.samples.len() < request.samples as usize
            && let Some(explanation) = rules.explain(&webhook.id, &decoded)
        {
            answer.samples.push(BacktestMatch {
                index,
                payload,
                explanation,
            });
        }
    }
    Ok(answer)
}
