//! The catalogue: every field a condition can test, its kind, the operators
//! it allows and the value each operator takes.
//!
//! This table is the single source of truth: validation and evaluation look
//! fields and operators up here, and [`catalog`] publishes it so that a UI
//! builds its drop-downs from it instead of hard-coding them.

use serde::Serialize;

use crate::model::{EventType, MatchMode};

/// Ordered ticket statuses, lowest first.
pub const STATUSES: [&str; 6] = ["new", "open", "pending", "on_hold", "solved", "closed"];

/// Ordered ticket priorities, lowest first.
pub const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

/// The most conditions one webhook may have.
pub const MAX_CONDITIONS: usize = 100;

/// The highest condition id.
pub const MAX_CONDITION_ID: i64 = 100;

/// The longest text value (and list item) in a condition, in characters.
pub const MAX_VALUE_CHARS: usize = 1024;

/// The most entries in any list of a webhook: `events`, `channels`,
/// `accounts` and a condition's list value (each entry at most once).
pub const MAX_LIST_ITEMS: usize = 100;

/// The longest `matches` pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 512;

/// The most memory a compiled `matches` pattern may take, in bytes.
pub const MAX_REGEX_BYTES: usize = 256 * 1024;

/// The characters of a text `matches` looks at: its first 1,024 (a
/// subject, an address, the start of a message). A pattern's cost grows
/// with the text it scans, and an event's text with the sender's whim.
pub const MAX_MATCH_CHARS: usize = 1024;

/// What the `matches` patterns of one webhook may weigh together (see
/// [`crate::weight`]): matching them against any event stays within a few
/// milliseconds.
pub const MAX_PATTERN_WEIGHT: u32 = 200;

/// The longest webhook URL, in characters.
pub const MAX_URL_CHARS: usize = 2048;

/// The highest `rateLimit` a webhook may set, in deliveries a second.
pub const MAX_RATE_LIMIT: i64 = 10_000;

/// The prefix of company-defined fields: `customFields.<key>`.
pub const CUSTOM_FIELD_PREFIX: &str = "customFields.";

/// What a field holds, which decides how it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "FieldKind"))]
pub enum Kind {
    /// An identifier, compared exactly.
    Id,
    /// One of an ordered list of values.
    Enum,
    /// Free text, compared case-insensitively.
    Text,
    /// A list of strings, compared case-insensitively.
    Tags,
    /// A company-defined field holding text or a number.
    TextOrNumber,
}

/// The operand an operator takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ValueType {
    /// No value (`is_empty`, `changed`).
    None,
    /// A non-empty string.
    String,
    /// A non-empty list of non-empty strings.
    StringList,
    /// One of the field's `values`.
    Enum,
    /// A non-empty list of the field's `values`.
    EnumList,
    /// A finite number.
    Number,
    /// A non-empty string or a finite number.
    StringOrNumber,
    /// A regular expression (linear-time syntax, see the README).
    Regex,
}

/// A condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Operator {
    /// Equal to the value.
    Is,
    /// Not equal to the value.
    IsNot,
    /// Equal to one of the values.
    In,
    /// Equal to none of the values.
    NotIn,
    /// Missing or empty.
    IsEmpty,
    /// Present and not empty.
    IsNotEmpty,
    /// Less than (in the field's order).
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Contains the value.
    Contains,
    /// Does not contain the value.
    NotContains,
    /// Starts with the value.
    StartsWith,
    /// Ends with the value.
    EndsWith,
    /// Matches the regular expression somewhere.
    Matches,
    /// Has at least one of the tags.
    HasAny,
    /// Has every one of the tags.
    HasAll,
    /// Has none of the tags.
    HasNone,
    /// The event changed the field.
    Changed,
    /// The event changed the field to the value.
    ChangedTo,
    /// The event changed the field from the value.
    ChangedFrom,
}

impl Operator {
    /// Every operator.
    pub const ALL: [Self; 21] = [
        Self::Is,
        Self::IsNot,
        Self::In,
        Self::NotIn,
        Self::IsEmpty,
        Self::IsNotEmpty,
        Self::Lt,
        Self::Lte,
        Self::Gt,
        Self::Gte,
        Self::Contains,
        Self::NotContains,
        Self::StartsWith,
        Self::EndsWith,
        Self::Matches,
        Self::HasAny,
        Self::HasAll,
        Self::HasNone,
        Self::Changed,
        Self::ChangedTo,
        Self::ChangedFrom,
    ];

    /// The name as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Is => "is",
            Self::IsNot => "is_not",
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::IsEmpty => "is_empty",
            Self::IsNotEmpty => "is_not_empty",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Contains => "contains",
            Self::NotContains => "not_contains",
            Self::StartsWith => "starts_with",
            Self::EndsWith => "ends_with",
            Self::Matches => "matches",
            Self::HasAny => "has_any",
            Self::HasAll => "has_all",
            Self::HasNone => "has_none",
            Self::Changed => "changed",
            Self::ChangedTo => "changed_to",
            Self::ChangedFrom => "changed_from",
        }
    }

    /// The operator with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

/// A field conditions can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    Channel,
    AccountId,
    TeamId,
    AssigneeId,
    Status,
    Priority,
    Subject,
    MessageBody,
    MessageFrom,
    RequesterEmail,
    RequesterName,
    Tags,
    /// `customFields.<key>`; the key lives in the compiled condition.
    Custom,
}

/// The fixed fields, by name, in catalogue order.
const FIELDS: [(&str, Field); 12] = [
    ("channel", Field::Channel),
    ("accountId", Field::AccountId),
    ("teamId", Field::TeamId),
    ("assigneeId", Field::AssigneeId),
    ("status", Field::Status),
    ("priority", Field::Priority),
    ("subject", Field::Subject),
    ("message.body", Field::MessageBody),
    ("message.from", Field::MessageFrom),
    ("requester.email", Field::RequesterEmail),
    ("requester.name", Field::RequesterName),
    ("tags", Field::Tags),
];

use Operator as Op;
use ValueType as V;

const ID_OPERATORS: &[(Op, V)] = &[
    (Op::Is, V::String),
    (Op::IsNot, V::String),
    (Op::In, V::StringList),
    (Op::NotIn, V::StringList),
    (Op::IsEmpty, V::None),
    (Op::IsNotEmpty, V::None),
];

const ID_CHANGE_OPERATORS: &[(Op, V)] = &[
    (Op::Is, V::String),
    (Op::IsNot, V::String),
    (Op::In, V::StringList),
    (Op::NotIn, V::StringList),
    (Op::IsEmpty, V::None),
    (Op::IsNotEmpty, V::None),
    (Op::Changed, V::None),
    (Op::ChangedTo, V::String),
    (Op::ChangedFrom, V::String),
];

const ENUM_OPERATORS: &[(Op, V)] = &[
    (Op::Is, V::Enum),
    (Op::IsNot, V::Enum),
    (Op::In, V::EnumList),
    (Op::NotIn, V::EnumList),
    (Op::IsEmpty, V::None),
    (Op::IsNotEmpty, V::None),
    (Op::Lt, V::Enum),
    (Op::Lte, V::Enum),
    (Op::Gt, V::Enum),
    (Op::Gte, V::Enum),
    (Op::Changed, V::None),
    (Op::ChangedTo, V::Enum),
    (Op::ChangedFrom, V::Enum),
];

const TEXT_OPERATORS: &[(Op, V)] = &[
    (Op::Is, V::String),
    (Op::IsNot, V::String),
    (Op::Contains, V::String),
    (Op::NotContains, V::String),
    (Op::StartsWith, V::String),
    (Op::EndsWith, V::String),
    (Op::Matches, V::Regex),
    (Op::IsEmpty, V::None),
    (Op::IsNotEmpty, V::None),
];

const TAG_OPERATORS: &[(Op, V)] = &[
    (Op::HasAny, V::StringList),
    (Op::HasAll, V::StringList),
    (Op::HasNone, V::StringList),
    (Op::IsEmpty, V::None),
    (Op::IsNotEmpty, V::None),
];

const CUSTOM_OPERATORS: &[(Op, V)] = &[
    (Op::Is, V::StringOrNumber),
    (Op::IsNot, V::StringOrNumber),
    (Op::Contains, V::String),
    (Op::NotContains, V::String),
    (Op::StartsWith, V::String),
    (Op::EndsWith, V::String),
    (Op::Matches, V::Regex),
    (Op::IsEmpty, V::None),
    (Op::IsNotEmpty, V::None),
    (Op::Lt, V::Number),
    (Op::Lte, V::Number),
    (Op::Gt, V::Number),
    (Op::Gte, V::Number),
];

impl Field {
    /// The field named `name`, with the key of a custom field.
    pub(crate) fn parse(name: &str) -> Option<(Self, Option<&str>)> {
        if let Some(key) = name.strip_prefix(CUSTOM_FIELD_PREFIX) {
            return Some((Self::Custom, Some(key)));
        }
        FIELDS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, f)| (f, None))
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Self::Channel | Self::AccountId | Self::TeamId | Self::AssigneeId => Kind::Id,
            Self::Status | Self::Priority => Kind::Enum,
            Self::Subject
            | Self::MessageBody
            | Self::MessageFrom
            | Self::RequesterEmail
            | Self::RequesterName => Kind::Text,
            Self::Tags => Kind::Tags,
            Self::Custom => Kind::TextOrNumber,
        }
    }

    /// The allowed values of an enum field, lowest first.
    pub(crate) fn values(self) -> &'static [&'static str] {
        match self {
            Self::Status => &STATUSES,
            Self::Priority => &PRIORITIES,
            _ => &[],
        }
    }

    pub(crate) fn operators(self) -> &'static [(Operator, ValueType)] {
        match self {
            Self::Channel | Self::AccountId => ID_OPERATORS,
            Self::TeamId | Self::AssigneeId => ID_CHANGE_OPERATORS,
            Self::Status | Self::Priority => ENUM_OPERATORS,
            Self::Tags => TAG_OPERATORS,
            Self::Custom => CUSTOM_OPERATORS,
            _ => TEXT_OPERATORS,
        }
    }

    /// The value type `op` takes on this field, when `op` is allowed.
    pub(crate) fn value_type(self, op: Operator) -> Option<ValueType> {
        self.operators()
            .iter()
            .find(|(o, _)| *o == op)
            .map(|&(_, v)| v)
    }
}

/// The published catalogue.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Catalog {
    /// Every field, in display order.
    pub fields: Vec<FieldInfo>,
    /// Every event type.
    #[cfg_attr(test, ts(type = "Array<EventType>"))]
    pub events: Vec<&'static str>,
    /// Every match mode.
    #[cfg_attr(test, ts(type = "Array<MatchMode>"))]
    pub match_modes: Vec<&'static str>,
    /// The limits validation enforces.
    pub limits: Limits,
    /// Each event type, described: in the order of `events`.
    pub event_types: Vec<EventInfo>,
}

/// One event type: when the helpdesk sends it, the fields conditions read
/// on it, and examples of what comes in and what goes out.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct EventInfo {
    /// Its name.
    #[cfg_attr(test, ts(type = "EventType"))]
    pub event: &'static str,
    /// When the helpdesk sends it.
    pub description: &'static str,
    /// The fields conditions can read on it (see `fields`).
    pub fields: Vec<&'static str>,
    /// An ingest event of this type, as the helpdesk sends it.
    #[cfg_attr(test, ts(type = "IngestEvent"))]
    pub example: serde_json::Value,
    /// The body a webhook receives for `example` (SPEC §2).
    #[cfg_attr(
        test,
        ts(type = "{ event: EventType; ticketId: string; messageId?: string }")
    )]
    pub delivered: serde_json::Value,
}

/// When the helpdesk sends each event type (SPEC §2).
fn describe(event: EventType) -> &'static str {
    match event {
        EventType::TicketCreated => "a ticket is created",
        EventType::TicketFromUserReply => "the customer replied",
        EventType::TicketAgentReply => "an agent replied",
        EventType::TicketAssigneeChanged => "the assignee changed",
        EventType::TicketStatusChanged => "the status changed",
        EventType::TicketMovedToRecycleBin => "the ticket was moved to the recycle bin",
    }
}

/// A realistic ingest event of type `event`, as SPEC §2 shows one.
fn example(event: EventType) -> serde_json::Value {
    let mut example = serde_json::json!({
        "tenantId": "acme",
        "event": event.as_str(),
        "ticketId": "ebcb7b53-6636-4c6b-8023-4a61d6df694c",
        "occurredAt": "2026-11-24T10:00:00Z",
        "ticket": {
            "channel": "email", "accountId": "support@acme.example",
            "subject": "Refund for order 1234", "status": "open", "priority": "high",
            "assigneeId": "agent-7", "teamId": "billing", "tags": ["vip", "refund"],
            "requester": {"email": "ann@example.com", "name": "Ann"},
            "customFields": {"plan": "enterprise", "seats": 40}
        }
    });
    let changes = match event {
        EventType::TicketStatusChanged => {
            Some(serde_json::json!({"status": {"from": "pending", "to": "open"}}))
        }
        EventType::TicketAssigneeChanged => {
            Some(serde_json::json!({"assigneeId": {"from": "agent-3", "to": "agent-7"}}))
        }
        _ => None,
    };
    if let Some(object) = example.as_object_mut() {
        if event.is_reply() {
            object.insert(
                "messageId".into(),
                "ef0eee2d-5912-4016-bcec-3a173f83e6a1".into(),
            );
            object.insert(
                "message".into(),
                serde_json::json!({"body": "Hi, I still have not received my refund", "from": "ann@example.com"}),
            );
        }
        if let Some(changes) = changes {
            object.insert("changes".into(), changes);
        }
    }
    example
}

/// One field of the catalogue.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct FieldInfo {
    /// The name conditions use. For company-defined fields this is the
    /// pattern `customFields.<key>`, where `<key>` is the field's key.
    pub field: &'static str,
    /// How it compares.
    pub kind: Kind,
    /// The allowed values, lowest first, for `enum` fields.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[cfg_attr(test, ts(type = "Array<string>"))]
    pub values: &'static [&'static str],
    /// The operators it allows, each with the value it takes.
    pub operators: Vec<OperatorInfo>,
}

/// One operator a field allows.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct OperatorInfo {
    /// The operator's name.
    pub operator: Operator,
    /// The value it takes.
    pub value: ValueType,
}

/// The limits validation enforces, so a UI can enforce them as well.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Limits {
    /// [`MAX_CONDITIONS`].
    pub max_conditions: usize,
    /// [`MAX_CONDITION_ID`].
    pub max_condition_id: i64,
    /// [`crate::MAX_EXPRESSION_CHARS`].
    pub max_expression_chars: usize,
    /// [`crate::MAX_EXPRESSION_DEPTH`].
    pub max_expression_depth: usize,
    /// [`MAX_VALUE_CHARS`].
    pub max_value_chars: usize,
    /// [`MAX_LIST_ITEMS`].
    pub max_list_items: usize,
    /// [`MAX_PATTERN_CHARS`].
    pub max_pattern_chars: usize,
    /// [`MAX_PATTERN_WEIGHT`].
    pub max_pattern_weight: u32,
    /// [`MAX_MATCH_CHARS`].
    pub max_match_chars: usize,
    /// [`MAX_URL_CHARS`].
    pub max_url_chars: usize,
    /// [`MAX_RATE_LIMIT`].
    pub max_rate_limit: i64,
}

/// The catalogue of fields, operators, value types, events and limits.
///
/// # Examples
///
/// ```
/// let catalog = inbox_rules::catalog();
/// let status = catalog.fields.iter().find(|f| f.field == "status").unwrap();
/// assert_eq!(status.values, ["new", "open", "pending", "on_hold", "solved", "closed"]);
/// ```
pub fn catalog() -> Catalog {
    let info = |field: &'static str, f: Field| FieldInfo {
        field,
        kind: f.kind(),
        values: f.values(),
        operators: f
            .operators()
            .iter()
            .map(|&(operator, value)| OperatorInfo { operator, value })
            .collect(),
    };
    let mut fields: Vec<FieldInfo> = FIELDS.iter().map(|&(name, f)| info(name, f)).collect();
    fields.push(info("customFields.<key>", Field::Custom));
    let event_types = EventType::ALL
        .iter()
        .map(|&event| {
            let example = example(event);
            EventInfo {
                event: event.as_str(),
                description: describe(event),
                // A message's fields are there on replies alone.
                fields: fields
                    .iter()
                    .map(|f| f.field)
                    .filter(|f| event.is_reply() || !f.starts_with("message."))
                    .collect(),
                delivered: crate::admit_event(&example)
                    .payload
                    .unwrap_or(serde_json::Value::Null),
                example,
            }
        })
        .collect();
    Catalog {
        event_types,
        fields,
        events: EventType::ALL.iter().map(|e| e.as_str()).collect(),
        match_modes: [MatchMode::All, MatchMode::Any, MatchMode::Expression]
            .iter()
            .map(|m| m.as_str())
            .collect(),
        limits: Limits {
            max_conditions: MAX_CONDITIONS,
            max_condition_id: MAX_CONDITION_ID,
            max_expression_chars: crate::MAX_EXPRESSION_CHARS,
            max_expression_depth: crate::MAX_EXPRESSION_DEPTH,
            max_value_chars: MAX_VALUE_CHARS,
            max_list_items: MAX_LIST_ITEMS,
            max_pattern_chars: MAX_PATTERN_CHARS,
            max_pattern_weight: MAX_PATTERN_WEIGHT,
            max_match_chars: MAX_MATCH_CHARS,
            max_url_chars: MAX_URL_CHARS,
            max_rate_limit: MAX_RATE_LIMIT,
        },
    }
}

/// [`catalog`] as the JSON the `catalog` operation answers: written once
/// into `catalog.json` and checked against it by a test
/// (`UPDATE_CATALOG=1 cargo test -p inbox-rules --lib catalog` rewrites
/// it), so the browser's wasm carries the text rather than the code that
/// builds and serialises it (about 1.9 KB gzipped).
pub(crate) const CATALOG_JSON: &str = include_str!("catalog.json");

#[cfg(test)]
mod json_tests {
    #[test]
    fn each_event_type_is_described_with_examples_the_engine_admits() {
        let catalog = super::catalog();
        let names: Vec<&str> = catalog.event_types.iter().map(|e| e.event).collect();
        assert_eq!(names, catalog.events);
        for info in &catalog.event_types {
            let admitted = crate::admit_event(&info.example);
            assert!(admitted.valid, "{}: {:?}", info.event, admitted.errors);
            let keys: Vec<&str> = info
                .delivered
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let reply = info.event.ends_with("Reply");
            let expected: &[&str] = match reply {
                true => &["event", "ticketId", "messageId"],
                false => &["event", "ticketId"],
            };
            assert_eq!(keys, expected, "{}", info.event);
            assert_eq!(
                info.fields.contains(&"message.body"),
                reply,
                "{}",
                info.event
            );
            assert!(info.fields.contains(&"customFields.<key>"));
        }
    }

    #[test]
    fn catalog_json_is_the_catalogue_serialised() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/catalog.json");
        let json = crate::api::encode(&super::catalog());
        if std::env::var_os("UPDATE_CATALOG").is_some() {
            std::fs::write(path, &json).expect("src/catalog.json is writable");
        }
        let checked_in = std::fs::read_to_string(path).expect("src/catalog.json is readable");
        assert!(
            checked_in == json,
            "src/catalog.json differs from the catalogue; run UPDATE_CATALOG=1 cargo test -p inbox-rules --lib catalog"
        );
    }
}
