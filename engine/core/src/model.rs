//! The data the engine reads: webhooks, their conditions, and ingest events,
//! in the JSON shapes of the contract (camelCase keys).
//!
//! Webhooks are deserialised leniently (event types and the match mode are
//! plain strings) so that a wrong value becomes a diagnostic with a path,
//! `events[1]` or `match`, instead of a bare deserialisation error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The ticket events the helpdesk emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum EventType {
    /// A ticket was created.
    TicketCreated,
    /// The customer replied.
    TicketFromUserReply,
    /// An agent replied.
    TicketAgentReply,
    /// The assignee changed.
    TicketAssigneeChanged,
    /// The status changed.
    TicketStatusChanged,
    /// The ticket was moved to the recycle bin.
    TicketMovedToRecycleBin,
}

impl EventType {
    /// Every event type, in the contract's order.
    pub const ALL: [Self; 6] = [
        Self::TicketCreated,
        Self::TicketFromUserReply,
        Self::TicketAgentReply,
        Self::TicketAssigneeChanged,
        Self::TicketStatusChanged,
        Self::TicketMovedToRecycleBin,
    ];

    /// The name as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TicketCreated => "TicketCreated",
            Self::TicketFromUserReply => "TicketFromUserReply",
            Self::TicketAgentReply => "TicketAgentReply",
            Self::TicketAssigneeChanged => "TicketAssigneeChanged",
            Self::TicketStatusChanged => "TicketStatusChanged",
            Self::TicketMovedToRecycleBin => "TicketMovedToRecycleBin",
        }
    }

    /// The event type with this exact name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The diagnostic for a name that is no event type, at `path`.
    pub(crate) fn unknown(path: impl Into<String>, name: &str) -> crate::Diagnostic {
        crate::Diagnostic::at(
            path,
            crate::Code::UnknownEvent,
            format!(
                "there is no event `{name}`; events are: {}",
                crate::join(&Self::ALL.map(Self::as_str), ", ")
            ),
        )
    }

    /// Position in [`Self::ALL`], for per-type tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// How a webhook's conditions combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum MatchMode {
    /// Every condition holds ("meet all").
    All,
    /// At least one condition holds ("meet any").
    Any,
    /// The logic expression holds.
    Expression,
}

impl MatchMode {
    /// The name as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Any => "any",
            Self::Expression => "expression",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        [Self::All, Self::Any, Self::Expression]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// One numbered condition: `{"id": 1, "field": "subject", "operator":
/// "contains", "value": "refund"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Condition {
    /// The number the expression refers to, 1..=100, distinct in a webhook.
    pub id: i64,
    /// A field of the catalogue, e.g. `subject` or `customFields.plan`.
    pub field: String,
    /// An operator the field allows, e.g. `contains`.
    #[cfg_attr(test, ts(type = "Operator | string"))]
    pub operator: String,
    /// The operand; its type depends on the operator (see the catalogue).
    /// Absent for operators without one, such as `is_empty`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[cfg_attr(test, ts(type = "string | number | string[] | null"))]
    pub value: Value,
}

/// A webhook as the admin defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Webhook {
    /// Stable identifier, e.g. `wh_…`; assigned by the server.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Option<String>", optional))]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub id: String,
    /// What the admin calls it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub name: String,
    /// A disabled webhook never fires.
    #[serde(default = "enabled_by_default")]
    #[cfg_attr(test, ts(as = "Option<bool>", optional))]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub enabled: bool,
    /// Where deliveries are POSTed: an absolute http:// or https:// URL.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub url: String,
    /// Event types it wants, by name.
    #[serde(default)]
    #[cfg_attr(test, ts(type = "Array<EventType | string>"))]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<EventType>))]
    pub events: Vec<String>,
    /// Channels it listens to; with `accounts`, both empty means every one.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Option<Vec<String>>", optional))]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub channels: Vec<String>,
    /// Channel accounts it listens to.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Option<Vec<String>>", optional))]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub accounts: Vec<String>,
    /// Numbered conditions; none means every event of its types fires.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Option<Vec<Condition>>", optional))]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub conditions: Vec<Condition>,
    /// `all`, `any` or `expression`.
    #[serde(rename = "match", default = "all_by_default")]
    #[cfg_attr(test, ts(optional, type = "MatchMode | string"))]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = MatchMode))]
    pub match_mode: String,
    /// The logic expression, used when `match` is `expression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub expression: Option<String>,
    /// At most this many deliveries a second start to its URL, 1 to
    /// [`crate::MAX_RATE_LIMIT`]; none: as fast as the receiver answers. A
    /// delivery over it waits its turn; it never fails for it.
    #[serde(rename = "rateLimit", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    #[cfg_attr(
        feature = "openapi",
        schema(nullable = false, minimum = 1, maximum = 10000)
    )]
    pub rate_limit: Option<i64>,
}

impl Webhook {
    /// The keys of a webhook in JSON, in the order it serialises them.
    pub const KEYS: [&'static str; 11] = [
        "id",
        "name",
        "enabled",
        "url",
        "events",
        "channels",
        "accounts",
        "conditions",
        "match",
        "expression",
        "rateLimit",
    ];
}

impl Condition {
    /// The keys of a condition in JSON, in the order it serialises them.
    pub const KEYS: [&'static str; 4] = ["id", "field", "operator", "value"];
}

/// Each key of a webhook as sent (JSON) that a webhook does not have, and
/// each such key of its conditions, as an `unknown_key` error at its path:
/// the typed webhook ignores them, so a typo such as `channel` for
/// `channels` would otherwise change nothing, silently.
pub(crate) fn unknown_keys(sent: &Value) -> Vec<crate::Diagnostic> {
    let mut found = Vec::new();
    let Some(webhook) = sent.as_object() else {
        return found;
    };
    unknown_in(webhook, "a webhook", &Webhook::KEYS, "", None, &mut found);
    if let Some(Value::Array(conditions)) = webhook.get("conditions") {
        for (i, condition) in conditions.iter().enumerate() {
            if let Some(condition) = condition.as_object() {
                let id = condition.get("id").and_then(Value::as_u64);
                let id = id.and_then(|id| u32::try_from(id).ok());
                let prefix = format!("conditions[{i}].");
                unknown_in(
                    condition,
                    "a condition",
                    &Condition::KEYS,
                    &prefix,
                    id,
                    &mut found,
                );
            }
        }
    }
    found
}

/// Adds to `found` the keys of `object` (`what`, at `prefix`) not in `keys`.
fn unknown_in(
    object: &serde_json::Map<String, Value>,
    what: &str,
    keys: &[&str],
    prefix: &str,
    condition_id: Option<u32>,
    found: &mut Vec<crate::Diagnostic>,
) {
    for key in object.keys().filter(|key| !keys.contains(&key.as_str())) {
        let message = format!(
            "{what} has no key `{key}`; its keys are: {}",
            crate::join(keys, ", ")
        );
        let mut diagnostic =
            crate::Diagnostic::at(format!("{prefix}{key}"), crate::Code::UnknownKey, message);
        diagnostic.condition_id = condition_id;
        found.push(diagnostic);
    }
}

fn enabled_by_default() -> bool {
    true
}

fn all_by_default() -> String {
    MatchMode::All.as_str().to_owned()
}

/// The event the helpdesk sends to be matched (the "ingest event").
/// Unknown keys are ignored, so the helpdesk can send more than the engine
/// reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct IngestEvent {
    /// The company the event belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[cfg_attr(test, ts(as = "Option<String>", optional))]
    pub tenant_id: String,
    /// The event type's name, e.g. `TicketCreated`.
    #[cfg_attr(test, ts(type = "EventType | string"))]
    pub event: String,
    /// The ticket's UUID.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Option<String>", optional))]
    pub ticket_id: String,
    /// The message's UUID, for replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub message_id: Option<String>,
    /// When it happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub occurred_at: Option<String>,
    /// The ticket as it is after the event.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Option<Ticket>", optional))]
    pub ticket: Ticket,
    /// The message, for replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub message: Option<Message>,
    /// What the event changed.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Option<Changes>", optional))]
    pub changes: Changes,
}

/// The ticket fields conditions can test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Ticket {
    /// `email`, `whatsapp`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The channel account, e.g. `support@acme.example`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The ticket's subject line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// One of the ordered statuses (see the catalogue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// One of the ordered priorities (see the catalogue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The agent it is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<String>,
    /// The team it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The customer who opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<Requester>,
    /// Company-defined fields: text or numbers.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[cfg_attr(test, ts(type = "Record<string, string | number | boolean | null>"))]
    pub custom_fields: serde_json::Map<String, Value>,
}

/// The customer behind a ticket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Requester {
    /// Their e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Their display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The message of a reply event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Message {
    /// Its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Who sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// What an event changed, field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Changes {
    /// A status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Change>,
    /// A priority change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Change>,
    /// An assignee change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<Change>,
    /// A team change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Change>,
}

/// One field's change; `None` stands for "was empty" or "became empty".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(optional_fields = nullable))]
pub struct Change {
    /// The value before.
    #[serde(default)]
    pub from: Option<String>,
    /// The value after.
    #[serde(default)]
    pub to: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key lists are the serialised shapes' keys, in order.
    #[test]
    fn the_key_lists_are_the_serialised_keys() {
        let condition = Condition {
            id: 1,
            field: "subject".into(),
            operator: "contains".into(),
            value: Value::from("refund"),
        };
        let webhook = Webhook {
            id: "wh_1".into(),
            name: "n".into(),
            enabled: true,
            url: "https://crm.example/h".into(),
            events: vec![],
            channels: vec![],
            accounts: vec![],
            conditions: vec![condition.clone()],
            match_mode: "all".into(),
            expression: Some("1".into()),
            rate_limit: Some(10),
        };
        let keys = |value: Value| -> Vec<String> {
            value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(
            keys(serde_json::to_value(&webhook).unwrap_or_default()),
            Webhook::KEYS
        );
        assert_eq!(
            keys(serde_json::to_value(&condition).unwrap_or_default()),
            Condition::KEYS
        );
    }
}
