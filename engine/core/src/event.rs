//! Ingest events as the helpdesk sends them (SPEC §2): whether one may be
//! accepted, and the body a delivery of it carries.
//!
//! The check reads raw JSON rather than an [`IngestEvent`] so that each
//! problem gets a path (`ticketId`, `ticket.tags`), as webhook problems do.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{EventType, IngestEvent};

/// The answer of [`admit_event`]: a report (`valid`, `errors`, `warnings`,
/// as every validation answers) and, for a valid event, the payload every
/// delivery of it carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Admission {
    /// `true` exactly when `errors` is empty.
    pub valid: bool,
    /// Every problem found, each with its `path`.
    pub errors: Vec<Diagnostic>,
    /// Always empty today; kept for the shape every report has.
    pub warnings: Vec<Diagnostic>,
    /// The delivered body (SPEC §2): exactly `event`, `ticketId` and, for
    /// replies, `messageId`, in this order. Absent when invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        test,
        ts(type = "{ event: EventType; ticketId: string; messageId?: string }")
    )]
    pub payload: Option<Value>,
}

impl EventType {
    /// Whether events of this type are about a message (and carry its id).
    pub fn is_reply(self) -> bool {
        matches!(self, Self::TicketFromUserReply | Self::TicketAgentReply)
    }
}

/// Checks an ingest event: an object with a known `event`, a UUID
/// `ticketId`, a UUID `messageId` for replies, an RFC 3339 `occurredAt` when
/// present, and the rest of the shape the engine reads. A valid event gets
/// its delivery payload.
///
/// # Examples
///
/// ```
/// let event = serde_json::json!({
///     "event": "TicketAgentReply",
///     "ticketId": "ebcb7b53-6636-4c6b-8023-4a61d6df694c",
/// });
/// let admission = inbox_rules::admit_event(&event);
/// assert_eq!(admission.errors[0].path.as_deref(), Some("messageId"));
/// assert_eq!(admission.errors[0].code.as_str(), "missing_field");
/// ```
pub fn admit_event(event: &Value) -> Admission {
    admit(event).0
}

/// [`admit_event`], and the event in the engine's shape when it is valid:
/// what a rule set matches, decoded from the same value once.
pub(crate) fn admit(event: &Value) -> (Admission, Option<IngestEvent>) {
    let Value::Object(fields) = event else {
        let not_an_object = Diagnostic::at("", Code::InvalidValue, "an event is a JSON object");
        return (refused(vec![not_an_object]), None);
    };
    let mut errors = Vec::new();
    let kind = match fields.get("event") {
        None => {
            errors.push(missing("event"));
            None
        }
        Some(Value::String(name)) => {
            let kind = EventType::parse(name);
            if kind.is_none() {
                errors.push(EventType::unknown("event", name));
            }
            kind
        }
        Some(_) => {
            errors.push(not_a("event", "a string"));
            None
        }
    };
    uuid_field(fields, "ticketId", true, &mut errors);
    uuid_field(
        fields,
        "messageId",
        kind.is_some_and(EventType::is_reply),
        &mut errors,
    );
    match fields.get("occurredAt") {
        None | Some(Value::Null) => {}
        Some(Value::String(at)) if is_rfc3339(at) => {}
        Some(_) => errors.push(Diagnostic::at(
            "occurredAt",
            Code::InvalidValue,
            "`occurredAt` is a date and time in RFC 3339, e.g. `2026-11-24T10:00:00Z`",
        )),
    }
    // The rest of the shape (`tenantId`, `ticket`, …): what the engine
    // reads must have its types.
    if !errors.is_empty() {
        return (refused(errors), None);
    }
    let decoded = match crate::read::from_value::<IngestEvent>(event) {
        Ok(decoded) => decoded,
        Err(error) => {
            let wrong_shape = Diagnostic::at(
                "",
                Code::InvalidValue,
                format!("the event does not have the shape of an ingest event: {error}"),
            );
            return (refused(vec![wrong_shape]), None);
        }
    };
    let mut payload = Map::with_capacity(3);
    for key in ["event", "ticketId"] {
        payload.insert(key.to_owned(), fields[key].clone());
    }
    if kind.is_some_and(EventType::is_reply) {
        payload.insert("messageId".to_owned(), fields["messageId"].clone());
    }
    let admission = Admission {
        valid: true,
        errors: Vec::new(),
        warnings: Vec::new(),
        payload: Some(Value::Object(payload)),
    };
    (admission, Some(decoded))
}

fn refused(errors: Vec<Diagnostic>) -> Admission {
    Admission {
        valid: false,
        errors,
        warnings: Vec::new(),
        payload: None,
    }
}

fn missing(path: &str) -> Diagnostic {
    Diagnostic::at(
        path,
        Code::MissingField,
        format!("this event needs `{path}`"),
    )
}

fn not_a(path: &str, what: &str) -> Diagnostic {
    Diagnostic::at(path, Code::InvalidValue, format!("`{path}` must be {what}"))
}

/// Checks that `key` holds a UUID, when present or `required`.
fn uuid_field(
    fields: &Map<String, Value>,
    key: &str,
    required: bool,
    errors: &mut Vec<Diagnostic>,
) {
    match fields.get(key) {
        None | Some(Value::Null) if required => errors.push(missing(key)),
        None | Some(Value::Null) => {}
        Some(Value::String(id)) if is_uuid(id) => {}
        Some(_) => errors.push(Diagnostic::at(
            key,
            Code::InvalidValue,
            format!("`{key}` must be a UUID, e.g. `ebcb7b53-6636-4c6b-8023-4a61d6df694c`"),
        )),
    }
}

/// Whether `bytes` from `at` on fit `template`: `d` a digit, `x` a
/// hexadecimal digit (either case), `T` a date-time separator (`T`, `t` or a
/// space, as RFC 3339 allows), anything else itself.
fn fits(bytes: &[u8], at: usize, template: &[u8]) -> bool {
    template
        .iter()
        .enumerate()
        .all(|(i, t)| match (t, bytes.get(at + i)) {
            (b'd', Some(c)) => c.is_ascii_digit(),
            (b'x', Some(c)) => c.is_ascii_hexdigit(),
            (b'T', Some(c)) => matches!(c, b'T' | b't' | b' '),
            (t, c) => c == Some(t),
        })
}

/// `8-4-4-4-12` hexadecimal digits, either case.
fn is_uuid(text: &str) -> bool {
    text.len() == 36 && fits(text.as_bytes(), 0, b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, fields within their ranges.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    if !fits(b, 0, b"dddd-dd-ddTdd:dd:dd") {
        return false;
    }
    let two = |at: usize| u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0');
    let mut end = 19;
    if b.get(end) == Some(&b'.') {
        end += 1;
        let digits = b[end..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        end += digits;
    }
    let zone = match b.get(end) {
        Some(b'Z' | b'z') => b.len() == end + 1,
        Some(b'+' | b'-') => {
            b.len() == end + 6
                && fits(b, end + 1, b"dd:dd")
                && two(end + 1) <= 23
                && two(end + 4) <= 59
        }
        _ => false,
    };
    zone && (1..=12).contains(&two(5))
        && (1..=31).contains(&two(8))
        && two(11) <= 23
        && two(14) <= 59
        && two(17) <= 60
}

#[cfg(test)]
mod tests {
    use super::{is_rfc3339, is_uuid};

    #[test]
    fn uuids() {
        assert!(is_uuid("ebcb7b53-6636-4c6b-8023-4a61d6df694c"));
        assert!(is_uuid("EBCB7B53-6636-4C6B-8023-4A61D6DF694C"));
        for bad in [
            "",
            "ebcb7b5366364c6b80234a61d6df694c",
            "ebcb7b53-6636-4c6b-8023-4a61d6df694",
            "gbcb7b53-6636-4c6b-8023-4a61d6df694c",
            "ebcb7b53-6636-4c6b-8023_4a61d6df694c",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        for good in [
            "2026-11-24T10:00:00Z",
            "2026-11-24t10:00:00z",
            "2026-11-24 10:00:00.123456+05:30",
            "2026-12-31T23:59:60-00:00",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T10:00:00",
            "2026-13-24T10:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T10:00:00.Z",
            "2026-11-24T10:00:00+5:30",
            "2026-11-24T10:00:00+05:60",
            "２026-11-24T10:00:00Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
