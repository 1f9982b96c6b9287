//! Typed reading of JSON values: `T` from a [`serde_json::Value`] already
//! parsed, the way every operation takes its input.
//!
//! `serde_json` can do this itself (`T::deserialize(&value)`, through the
//! types' derived `Deserialize`, which the server still uses); this reader
//! exists for the npm package's size. Serde's derived readers are generic
//! over the deserializer and come with visitors, field enums and
//! `Unexpected`'s float formatting, which made them the largest part of the
//! browser's wasm; the readers here are plain functions over a `Value`, one
//! [`FromJson`] impl a type. They say the same sentences as `serde_json`
//! ("invalid type: integer `7`, expected a string", "missing field `url`"),
//! which the tests below check against `serde_json` type by type, and they
//! keep serde's order: the entries of an object in order, the first bad
//! value's error, then the first missing field in declaration order. A
//! struct is read only from an object (never from an array, which
//! `serde_json` accepts).

use std::fmt;

use serde::de::Unexpected;
use serde_json::{Map, Number, Value};

use crate::api::{
    BacktestRequest, CheckRequest, EvalRequest, ExplainRequest, IngestRequest, MatchRequest, Truth,
};
use crate::model::{Change, Changes, Condition, IngestEvent, Message, Requester, Ticket, Webhook};

/// Reads `T` from `value`.
pub fn from_value<T: FromJson>(value: &Value) -> Result<T, Error> {
    T::from_json(value)
}

/// A type read from a JSON value.
pub trait FromJson: Sized {
    /// Reads one from `value`, or says why it cannot.
    fn from_json(value: &Value) -> Result<Self, Error>;
}

/// Why a value is not of the shape asked for: one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `value` is not the kind of JSON value `expected` names.
fn invalid_type(value: &Value, expected: &str) -> Error {
    Error(format!(
        "invalid type: {}, expected {expected}",
        Described(unexpected(value))
    ))
}

/// A number out of the range of the integer type `expected` names.
fn invalid_value(found: Unexpected<'_>, expected: &str) -> Error {
    Error(format!(
        "invalid value: {}, expected {expected}",
        Described(found)
    ))
}

fn missing(key: &str) -> Error {
    Error(format!("missing field `{key}`"))
}

fn duplicate(key: &str) -> Error {
    Error(format!("duplicate field `{key}`"))
}

/// `text` on one line, showing what was sent whatever was sent: line
/// breaks, tabs and backslashes escaped as Rust writes them (`\n`,
/// `\\`), other control characters, line separators and bidirectional
/// overrides as `\u{202e}`.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if crate::webhook::hidden(c) || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// A key a request does not have, in serde's words, the key on one line
/// ([`one_line`]).
fn unknown(key: &str, keys: &[&str]) -> Error {
    let key = one_line(key);
    let expected = match keys {
        [] => return Error(format!("unknown field `{key}`, there are no fields")),
        [one] => format!("`{one}`"),
        [one, two] => format!("`{one}` or `{two}`"),
        _ => format!("one of `{}`", crate::join(keys, "`, `")),
    };
    Error(format!("unknown field `{key}`, expected {expected}"))
}

/// The object a struct is read from; `what` names the struct for the error
/// ("struct Webhook").
fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, Error> {
    value.as_object().ok_or_else(|| invalid_type(value, what))
}

/// What was found, in `serde_json`'s words; floats printed as `serde_json`
/// prints them, never through Rust's float formatting.
struct Described<'a>(Unexpected<'a>);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Unexpected::Unit => f.write_str("null"),
            Unexpected::Bool(b) => write!(f, "boolean `{b}`"),
            Unexpected::Unsigned(n) => write!(f, "integer `{n}`"),
            Unexpected::Signed(n) => write!(f, "integer `{n}`"),
            Unexpected::Float(x) => write!(
                f,
                "floating point `{}`",
                Number::from_f64(x).map_or_else(|| "NaN".to_owned(), |n| n.to_string())
            ),
            Unexpected::Char(c) => write!(f, "character `{c}`"),
            Unexpected::Str(s) => write!(f, "string {s:?}"),
            Unexpected::Bytes(_) => f.write_str("byte array"),
            Unexpected::Option => f.write_str("Option value"),
            Unexpected::NewtypeStruct => f.write_str("newtype struct"),
            Unexpected::Seq => f.write_str("sequence"),
            Unexpected::Map => f.write_str("map"),
            Unexpected::Enum => f.write_str("enum"),
            Unexpected::UnitVariant => f.write_str("unit variant"),
            Unexpected::NewtypeVariant => f.write_str("newtype variant"),
            Unexpected::TupleVariant => f.write_str("tuple variant"),
            Unexpected::StructVariant => f.write_str("struct variant"),
            Unexpected::Other(other) => f.write_str(other),
        }
    }
}

/// What `value` is, for an error about it.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, Some(f)) => Unexpected::Float(f),
            (None, None, None) => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl FromJson for Value {
    fn from_json(value: &Value) -> Result<Self, Error> {
        Ok(value.clone())
    }
}

impl FromJson for String {
    fn from_json(value: &Value) -> Result<Self, Error> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(invalid_type(other, "a string")),
        }
    }
}

impl FromJson for bool {
    fn from_json(value: &Value) -> Result<Self, Error> {
        value
            .as_bool()
            .ok_or_else(|| invalid_type(value, "a boolean"))
    }
}

impl FromJson for i64 {
    fn from_json(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            Value::Number(n) if n.is_u64() => Err(invalid_value(
                Unexpected::Unsigned(n.as_u64().unwrap_or_default()),
                "i64",
            )),
            other => Err(invalid_type(other, "i64")),
        }
    }
}

impl FromJson for u32 {
    fn from_json(value: &Value) -> Result<Self, Error> {
        let found = match value {
            Value::Number(n) if n.is_u64() => {
                let n = n.as_u64().unwrap_or_default();
                return u32::try_from(n).map_err(|_| invalid_value(Unexpected::Unsigned(n), "u32"));
            }
            Value::Number(n) if n.is_i64() => Unexpected::Signed(n.as_i64().unwrap_or_default()),
            other => return Err(invalid_type(other, "u32")),
        };
        Err(invalid_value(found, "u32"))
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Null => Ok(None),
            other => T::from_json(other).map(Some),
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Array(items) => items.iter().map(T::from_json).collect(),
            other => Err(invalid_type(other, "a sequence")),
        }
    }
}

impl FromJson for Map<String, Value> {
    fn from_json(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Object(entries) => Ok(entries.clone()),
            other => Err(invalid_type(other, "a map")),
        }
    }
}

/// Each condition's truth: `{"1": true}`, keys read as numbers.
impl FromJson for Truth {
    fn from_json(value: &Value) -> Result<Self, Error> {
        let Value::Object(entries) = value else {
            return Err(invalid_type(value, "a map"));
        };
        entries
            .iter()
            .map(|(key, value)| {
                let id = key.parse().map_err(|_| {
                    Error("invalid value: expected key to be a number in quotes".to_owned())
                })?;
                Ok((id, bool::from_json(value)?))
            })
            .collect::<Result<_, _>>()
            .map(Truth)
    }
}

/// A struct read from an object's entries as serde's derive reads it: each
/// entry in order (a key and its aliases fill one field), then each field
/// not found gets its fallback (`return Err(missing(…))` for a required
/// one). `deny` refuses keys the struct does not have, listing each
/// field's names sorted, as serde does (write aliases that sort first).
macro_rules! from_object {
    ($value:expr, $what:literal, deny: $deny:literal, $ty:ident {
        $($field:ident: $key:literal $(| $alias:literal)* => $fallback:expr),* $(,)?
    }) => {{
        let entries = object($value, $what)?;
        $(let mut $field = None;)*
        for (key, value) in entries {
            match key.as_str() {
                $($key $(| $alias)* => {
                    // Keys are unique: only a field with an alias can be
                    // given twice.
                    $(
                        let _ = $alias;
                        if $field.is_some() {
                            return Err(duplicate($key));
                        }
                    )*
                    $field = Some(FromJson::from_json(value)?);
                })*
                other => {
                    if $deny {
                        return Err(unknown(other, &[$($($alias,)* $key),*]));
                    }
                }
            }
        }
        Ok($ty {
            $($field: match $field {
                Some(found) => found,
                None => $fallback,
            },)*
        })
    }};
}

impl FromJson for Condition {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct Condition", deny: false, Condition {
            id: "id" => return Err(missing("id")),
            field: "field" => return Err(missing("field")),
            operator: "operator" => return Err(missing("operator")),
            value: "value" => Value::Null,
        })
    }
}

impl FromJson for Webhook {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct Webhook", deny: false, Webhook {
            id: "id" => String::new(),
            name: "name" => String::new(),
            enabled: "enabled" => true,
            url: "url" => String::new(),
            events: "events" => Vec::new(),
            channels: "channels" => Vec::new(),
            accounts: "accounts" => Vec::new(),
            conditions: "conditions" => Vec::new(),
            match_mode: "match" => crate::MatchMode::All.as_str().to_owned(),
            expression: "expression" => None,
            rate_limit: "rateLimit" => None,
        })
    }
}

impl FromJson for IngestEvent {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct IngestEvent", deny: false, IngestEvent {
            tenant_id: "tenantId" => String::new(),
            event: "event" => return Err(missing("event")),
            ticket_id: "ticketId" => String::new(),
            message_id: "messageId" => None,
            occurred_at: "occurredAt" => None,
            ticket: "ticket" => Ticket::default(),
            message: "message" => None,
            changes: "changes" => Changes::default(),
        })
    }
}

impl FromJson for Ticket {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct Ticket", deny: false, Ticket {
            channel: "channel" => None,
            account_id: "accountId" => None,
            subject: "subject" => None,
            status: "status" => None,
            priority: "priority" => None,
            assignee_id: "assigneeId" => None,
            team_id: "teamId" => None,
            tags: "tags" => Vec::new(),
            requester: "requester" => None,
            custom_fields: "customFields" => Map::new(),
        })
    }
}

impl FromJson for Requester {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct Requester", deny: false, Requester {
            email: "email" => None,
            name: "name" => None,
        })
    }
}

impl FromJson for Message {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct Message", deny: false, Message {
            body: "body" => None,
            from: "from" => None,
        })
    }
}

impl FromJson for Changes {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct Changes", deny: false, Changes {
            status: "status" => None,
            priority: "priority" => None,
            assignee_id: "assigneeId" => None,
            team_id: "teamId" => None,
        })
    }
}

impl FromJson for Change {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct Change", deny: false, Change {
            from: "from" => None,
            to: "to" => None,
        })
    }
}

impl FromJson for CheckRequest {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct CheckRequest", deny: true, CheckRequest {
            expression: "expression" => return Err(missing("expression")),
            ids: "ids" => Vec::new(),
        })
    }
}

impl FromJson for EvalRequest {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct EvalRequest", deny: true, EvalRequest {
            expression: "expression" => return Err(missing("expression")),
            ids: "ids" => None,
            truth: "truth" => Truth::default(),
        })
    }
}

impl FromJson for MatchRequest {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct MatchRequest", deny: true, MatchRequest {
            webhooks: "webhooks" => return Err(missing("webhooks")),
            event: "event" => return Err(missing("event")),
        })
    }
}

impl FromJson for IngestRequest {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct IngestRequest", deny: true, IngestRequest {
            webhooks: "webhooks" => return Err(missing("webhooks")),
            events: "events" => return Err(missing("events")),
        })
    }
}

impl FromJson for BacktestRequest {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct BacktestRequest", deny: true, BacktestRequest {
            webhook: "webhook" => return Err(missing("webhook")),
            events: "events" => return Err(missing("events")),
            samples: "samples" => crate::api::DEFAULT_SAMPLES,
        })
    }
}

impl<T: FromJson> FromJson for ExplainRequest<T> {
    fn from_json(value: &Value) -> Result<Self, Error> {
        from_object!(value, "struct ExplainRequest", deny: true, ExplainRequest {
            webhook: "webhook" | "condition" => return Err(missing("webhook")),
            event: "event" => return Err(missing("event")),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize as _;
    use serde_json::json;

    use super::*;

    /// Reads `value` both ways: this reader and `serde_json`'s.
    fn both<T: FromJson + serde::de::DeserializeOwned + fmt::Debug + PartialEq>(
        value: &Value,
    ) -> (Result<T, String>, Result<T, String>) {
        (
            from_value::<T>(value).map_err(|e| e.to_string()),
            T::deserialize(value).map_err(|e| e.to_string()),
        )
    }

    #[test]
    fn answers_and_messages_are_serde_jsons() {
        let values = [
            json!("text"),
            json!(7),
            json!(-7),
            json!(1.5),
            json!(1e300),
            json!(true),
            json!(null),
            json!([1, 2]),
            json!({"a": 1}),
            json!(4_294_967_296_u64),
        ];
        for value in &values {
            let (ours, theirs) = both::<String>(value);
            assert_eq!(ours, theirs, "String from {value}");
            let (ours, theirs) = both::<u32>(value);
            assert_eq!(ours, theirs, "u32 from {value}");
            let (ours, theirs) = both::<i64>(value);
            assert_eq!(ours, theirs, "i64 from {value}");
            let (ours, theirs) = both::<bool>(value);
            assert_eq!(ours, theirs, "bool from {value}");
            let (ours, theirs) = both::<Option<Vec<u32>>>(value);
            assert_eq!(ours, theirs, "Option<Vec<u32>> from {value}");
            let (ours, theirs) = both::<Value>(value);
            assert_eq!(ours, theirs, "Value from {value}");
        }
    }

    #[test]
    fn truth_reads_its_keys_as_serde_json_reads_a_map_keyed_by_number() {
        use std::collections::BTreeMap;
        let messages = |value: &Value| {
            let ours = from_value::<Truth>(value)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let theirs = BTreeMap::<u32, bool>::deserialize(value)
                .map(|_| ())
                .map_err(|e| e.to_string());
            (ours, theirs)
        };
        for value in [
            json!({"1": true}),
            json!({"x": true}),
            json!({"1": 1}),
            json!([true]),
            json!(null),
        ] {
            let (ours, theirs) = messages(&value);
            assert_eq!(ours, theirs, "{value}");
        }
        // serde_json reads `"-1"` as an integer out of range and names a line
        // and column of text that a value does not have; this says why once.
        assert_eq!(
            from_value::<Truth>(&json!({"-1": true})).map_err(|e| e.to_string()),
            Err("invalid value: expected key to be a number in quotes".to_owned())
        );
        let truth = from_value::<Truth>(&json!({"3": true, "1": false})).expect("a truth map");
        assert_eq!(truth.ids(), [1, 3]);
        assert!(!truth.of(1));
        assert!(truth.of(3));
        assert!(!truth.of(2));
        let twice = from_value::<Truth>(&json!({"3": true, "1": false, "01": true}));
        assert_eq!(twice.map(|t| t.given_twice()), Ok(Some(1)));
    }

    #[test]
    fn webhooks_read_as_with_serde_json() {
        let webhook = json!({
            "id": "wh_1", "name": "n", "url": "https://a.example/h", "events": ["TicketCreated"],
            "conditions": [{"id": 1, "field": "subject", "operator": "contains", "value": "x"}],
            "match": "all",
        });
        let (ours, theirs) = both::<Webhook>(&webhook);
        assert_eq!(ours, theirs);
        assert!(ours.is_ok());
        for broken in [
            json!({"events": "TicketCreated"}),
            json!({"match": "most"}),
            json!({"conditions": [{"id": "one"}]}),
            json!({"enabled": 1}),
        ] {
            let (ours, theirs) = both::<Webhook>(&broken);
            assert_eq!(ours, theirs, "{broken}");
        }
    }

    #[test]
    fn an_unknown_key_is_shown_on_one_line() {
        let message = from_value::<CheckRequest>(&json!({"c\ndition\u{202e}": 1}))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            message,
            Err("unknown field `c\\ndition\\u{202e}`, expected `expression` or `ids`".to_owned())
        );
    }

    #[test]
    fn an_unknown_operation_is_shown_on_one_line() {
        let error = crate::api::run("check\n", &json!({})).map_err(|e| e.to_string());
        assert!(
            error
                .as_ref()
                .is_err_and(|e| e.starts_with("unknown operation `check\\n`;")),
            "{error:?}"
        );
    }

    #[test]
    fn events_read_as_with_serde_json() {
        let event = json!({
            "tenantId": "t", "event": "TicketCreated", "ticketId": "1", "messageId": null,
            "ticket": {"channel": "email", "tags": ["a"], "requester": {"email": "a@b.example"},
                       "customFields": {"plan": "pro"}},
            "message": {"body": "hi"}, "changes": {"status": {"from": "open", "to": null}},
        });
        let (ours, theirs) = both::<IngestEvent>(&event);
        assert_eq!(ours, theirs);
        assert!(ours.is_ok());
        for broken in [
            json!({}),
            json!({"ticketId": 7, "event": "TicketCreated"}),
            json!({"event": "TicketCreated", "ticket": {"tags": "vip"}}),
            json!({"event": "TicketCreated", "ticket": {"requester": {"name": false}}}),
            json!({"event": "TicketCreated", "ticket": {"customFields": []}}),
            json!({"event": "TicketCreated", "changes": {"status": {"from": 1}}}),
            json!({"event": "TicketCreated", "message": "hi"}),
            json!({"event": 1, "ticketId": 2}),
            json!("TicketCreated"),
        ] {
            let (ours, theirs) = both::<IngestEvent>(&broken);
            assert_eq!(ours, theirs, "{broken}");
            assert!(ours.is_err(), "{broken}");
        }
    }

    #[test]
    fn requests_read_as_with_serde_json() {
        use crate::api::{
            BacktestRequest, CheckRequest, EvalRequest, ExplainRequest, IngestRequest, MatchRequest,
        };
        let event = json!({"event": "TicketCreated", "ticketId": "1"});
        let webhook =
            json!({"id": "wh_1", "url": "https://a.example/h", "events": ["TicketCreated"]});
        let condition = json!({"id": 1, "field": "subject", "operator": "is_empty"});
        /// The request `T` read from `value` both ways, compared as text
        /// (the request types do not implement `PartialEq`).
        fn same<T: FromJson + serde::de::DeserializeOwned + fmt::Debug>(value: &Value, op: &str) {
            let ours = format!("{:?}", from_value::<T>(value).map_err(|e| e.to_string()));
            let theirs = format!("{:?}", T::deserialize(value).map_err(|e| e.to_string()));
            assert_eq!(ours, theirs, "{op} {value}");
        }
        let compare = |value: Value| {
            same::<CheckRequest>(&value, "check");
            same::<EvalRequest>(&value, "eval");
            same::<MatchRequest>(&value, "match");
            same::<IngestRequest>(&value, "ingest");
            same::<ExplainRequest<Webhook>>(&value, "explain");
            same::<ExplainRequest<Condition>>(&value, "condition");
            same::<BacktestRequest>(&value, "backtest");
        };
        for value in [
            json!({"expression": "1 or 2", "ids": [1, 2]}),
            json!({"expression": "1", "truth": {"1": true}, "ids": null}),
            json!({"expression": "1", "truth": {"one": true}}),
            json!({"expression": "1", "idz": [1]}),
            json!({"ids": [1, -1]}),
            json!({"webhooks": [webhook], "event": event}),
            json!({"webhooks": [webhook], "events": [event, 7]}),
            json!({"webhooks": {}, "event": event}),
            json!({"webhook": webhook, "event": event}),
            json!({"condition": condition, "event": event}),
            json!({"condition": condition, "webhook": webhook, "event": event}),
            json!({"webhook": webhook}),
            json!({"webhook": webhook, "events": [event, 7]}),
            json!({"webhook": webhook, "events": [], "samples": 3}),
            json!({"webhook": webhook, "events": [], "samples": -1}),
            json!({"webhook": webhook, "events": {}}),
            json!({"event": event, "extra": 1}),
            json!({}),
            json!(null),
            json!("request"),
        ] {
            compare(value);
        }
    }
}
