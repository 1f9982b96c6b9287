//! Ingest events as the helpdesk sends them (SPEC §2): whether one may be
//! accepted, and the body a delivery of it carries.
//!
//! The check reads raw JSON rather than an [`IngestEvent`] so that each
//! problem gets a path (`ticketId`, `ticket.tags`), as webhook problems do.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic, Report};
use crate::model::{EventType, IngestEvent};

/// The answer of [`admit_event`]: the report and, for a valid event, the
/// payload every delivery of it carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Admission {
    /// The report: `valid`, `errors`, `warnings`.
    #[serde(flatten)]
    pub report: Report,
    /// The delivered body (SPEC §2): exactly `event`, `ticketId` and, for
    /// replies, `messageId`, in this order. Absent when invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
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
/// assert_eq!(admission.report.errors[0].path.as_deref(), Some("messageId"));
/// assert_eq!(admission.report.errors[0].code.as_str(), "missing_field");
/// ```
pub fn admit_event(event: &Value) -> Admission {
    let Value::Object(fields) = event else {
        return refused(vec![Diagnostic::at(
            "",
            Code::InvalidValue,
            "an event is a JSON object",
        )]);
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
                errors.push(Diagnostic::at(
                    "event",
                    Code::UnknownEvent,
                    format!(
                        "there is no event `{name}`; events are: {}",
                        EventType::ALL.map(EventType::as_str).join(", ")
                    ),
                ));
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
    if let Some(tenant) = fields.get("tenantId")
        && !tenant.is_string()
    {
        errors.push(not_a("tenantId", "a string"));
    }
    // The rest of the shape: what the engine reads must have its types.
    if errors.is_empty()
        && let Err(error) = serde_json::from_value::<IngestEvent>(event.clone())
    {
        errors.push(Diagnostic::at(
            "",
            Code::InvalidValue,
            format!("the event does not have the shape of an ingest event: {error}"),
        ));
    }
    if !errors.is_empty() {
        return refused(errors);
    }
    let mut payload = Map::with_capacity(3);
    for key in ["event", "ticketId"] {
        payload.insert(key.to_owned(), fields[key].clone());
    }
    if kind.is_some_and(EventType::is_reply) {
        payload.insert("messageId".to_owned(), fields["messageId"].clone());
    }
    Admission {
        report: Report::new(Vec::new(), Vec::new()),
        payload: Some(Value::Object(payload)),
    }
}

fn refused(errors: Vec<Diagnostic>) -> Admission {
    Admission {
        report: Report::new(errors, Vec::new()),
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

/// `8-4-4-4-12` hexadecimal digits, either case.
fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with `t`/`z` and a space for
/// `T` allowed as RFC 3339 allows; fields within their ranges.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let (Some(_year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    let separators = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    let ranges = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    let mut rest = &b[19..];
    if let Some((b'.', fraction)) = rest.split_first() {
        let n = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    let zone = match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
                && (*h1 - b'0') * 10 + (*h2 - b'0') <= 23
                && (*m1 - b'0') * 10 + (*m2 - b'0') <= 59
        }
        _ => false,
    };
    separators && ranges && zone
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
