//! Conditions: checked and compiled once, then evaluated against events.
//!
//! Comparison rules (the README repeats them for admins):
//!
//! * a missing field is empty: `is_empty` holds, `contains` and `is` do not,
//!   and the negative operators (`is_not`, `not_in`, `not_contains`,
//!   `has_none`) do;
//! * `id` fields compare exactly; `enum` fields compare exactly and order by
//!   the catalogue (`lt` and friends are false for a value outside it);
//! * text and tags compare case-insensitively after Unicode lowercasing
//!   (`É` equals `é`; `ß` does not equal `SS`, which would need full case
//!   folding);
//! * `matches` uses a linear-time engine (no backtracking, no look-around,
//!   no back-references), finds the pattern anywhere in the text unless it is
//!   anchored, and runs on the lowercased text with ASCII case-insensitive
//!   matching: write non-ASCII letters of a pattern in lower case. It looks
//!   at the text's first [`MAX_MATCH_CHARS`] characters only (`$` matches
//!   at their end), and a webhook's patterns may weigh
//!   [`crate::MAX_PATTERN_WEIGHT`] together ([`crate::weight`]), so that
//!   any accepted webhook matches an event in bounded time;
//! * a custom field holding a number compares numerically with `lt`, `lte`,
//!   `gt`, `gte` and with a number given to `is`/`is_not`; a string holding a
//!   number in JSON's syntax (`40`, `7.5`, `-1e3`; blanks around it are
//!   ignored) counts as that number; otherwise its text is compared. Booleans
//!   read as `true`/`false`; `null`, objects and arrays read as empty;
//! * `changed`, `changed_to` and `changed_from` look at the event's
//!   `changes` and are false when the event carries no such change.

use std::cell::OnceCell;
use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::catalog::{
    Field, MAX_CONDITION_ID, MAX_LIST_ITEMS, MAX_MATCH_CHARS, MAX_PATTERN_CHARS, MAX_REGEX_BYTES,
    MAX_VALUE_CHARS, Operator, ValueType,
};
use crate::diagnostic::{Code, Diagnostic};
use crate::fold::fold;
use crate::model::{Change, Condition, EventType, IngestEvent};

/// A condition ready to evaluate: field resolved, value checked and
/// normalised, pattern compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition {
    pub(crate) id: u32,
    field: Field,
    /// The key of a custom field.
    key: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Empty(bool),
    /// Exact equality with one of the values (lowercased for text-like kinds).
    OneOf(Vec<String>, bool),
    /// Position in an enum's order compared with a bound.
    Rank(Ordering, bool, usize),
    Number(Ordering, bool, f64),
    NumberIs(f64, bool),
    /// A substring search (lowercased needle).
    Contains(Needle, bool),
    StartsWith(String),
    EndsWith(String),
    /// A compiled pattern and its weight.
    Matches(regex_lite::Regex, u32),
    Tags(TagTest, Vec<String>),
    Changed,
    ChangedTo(String),
    ChangedFrom(String),
}

#[derive(Debug, Clone, Copy)]
enum TagTest {
    Any,
    All,
    None,
}

impl CompiledCondition {
    /// Checks `condition` (at `conditions[index]`) and compiles it, or
    /// returns every problem found.
    pub(crate) fn compile(condition: &Condition, index: usize) -> Result<Self, Vec<Diagnostic>> {
        let path = |part: &str| format!("conditions[{index}].{part}");
        let mut errors = Vec::new();
        let id = match u32::try_from(condition.id) {
            Ok(id) if (1..=MAX_CONDITION_ID).contains(&condition.id) => id,
            _ => {
                errors.push(Diagnostic::at(
                    path("id"),
                    Code::InvalidId,
                    format!(
                        "condition ids go from 1 to {MAX_CONDITION_ID}; {} is out of range",
                        condition.id
                    ),
                ));
                0
            }
        };
        let attribute = |d: Diagnostic| if id == 0 { d } else { d.for_condition(id) };

        let Some((field, key)) = Field::parse(&condition.field).filter(|(_, key)| {
            key.is_none_or(|k| !k.is_empty() && k.chars().count() <= MAX_VALUE_CHARS)
        }) else {
            errors.push(attribute(Diagnostic::at(
                path("field"),
                Code::UnknownField,
                format!("there is no field `{}`", condition.field),
            )));
            return Err(errors);
        };
        let Some((op, value_type)) = Operator::parse(&condition.operator)
            .and_then(|op| field.value_type(op).map(|v| (op, v)))
        else {
            let allowed: Vec<&str> = field.operators().iter().map(|(o, _)| o.as_str()).collect();
            errors.push(attribute(Diagnostic::at(
                path("operator"),
                Code::OperatorNotAllowed,
                format!(
                    "`{}` cannot be used with `{}`; use one of: {}",
                    condition.operator,
                    condition.field,
                    crate::join(&allowed, ", ")
                ),
            )));
            return Err(errors);
        };
        match build_test(field, op, value_type, &condition.value) {
            Ok(test) if errors.is_empty() => Ok(Self {
                id,
                field,
                key: key.unwrap_or_default().to_owned(),
                test,
            }),
            Ok(_) => Err(errors),
            Err((code, message)) => {
                errors.push(attribute(Diagnostic::at(path("value"), code, message)));
                Err(errors)
            }
        }
    }

    /// Whether the condition holds for the event.
    pub(crate) fn holds(&self, event: &EventView<'_>) -> bool {
        let change = || event.change(self.field);
        let value = || event.read(self.field, &self.key);
        let ordered = |cmp: Option<Ordering>, ordering: Ordering, or_equal: bool| {
            cmp.is_some_and(|cmp| cmp == ordering || (or_equal && cmp == Ordering::Equal))
        };
        match &self.test {
            Test::Changed => change().is_some_and(|c| c.from != c.to),
            Test::ChangedTo(v) => change().is_some_and(|c| c.to.as_deref() == Some(v.as_str())),
            Test::ChangedFrom(v) => change().is_some_and(|c| c.from.as_deref() == Some(v.as_str())),
            Test::Empty(want) => value().is_empty() == *want,
            Test::OneOf(values, want) => {
                let value = value();
                let text = value.comparable(self.field);
                values.iter().any(|v| *v == *text) == *want
            }
            Test::Rank(ordering, or_equal, bound) => ordered(
                event.rank(self.field).map(|r| r.cmp(bound)),
                *ordering,
                *or_equal,
            ),
            Test::Number(ordering, or_equal, bound) => ordered(
                value().number().and_then(|n| n.partial_cmp(bound)),
                *ordering,
                *or_equal,
            ),
            Test::NumberIs(bound, want) => (value().number() == Some(*bound)) == *want,
            Test::Contains(needle, want) => needle.found_in(&value()) == *want,
            Test::StartsWith(prefix) => value().lowercase().starts_with(prefix.as_str()),
            Test::EndsWith(suffix) => value().lowercase().ends_with(suffix.as_str()),
            Test::Matches(regex, _) => regex.is_match(head(&value().lowercase(), MAX_MATCH_CHARS)),
            Test::Tags(how, wanted) => {
                let tags = event.tags();
                let has = |t: &String| tags.contains(t);
                match how {
                    TagTest::Any => wanted.iter().any(has),
                    TagTest::All => wanted.iter().all(has),
                    TagTest::None => !wanted.iter().any(has),
                }
            }
        }
    }

    /// The weight of the condition's pattern ([`crate::weight`]); 0 for
    /// other tests.
    pub(crate) fn pattern_weight(&self) -> u32 {
        match self.test {
            Test::Matches(_, weight) => weight,
            _ => 0,
        }
    }

    /// Whether the condition looks at the event's `changes`.
    fn is_change(&self) -> bool {
        matches!(
            self.test,
            Test::Changed | Test::ChangedTo(_) | Test::ChangedFrom(_)
        )
    }

    /// The value the condition looked at, for explanations.
    pub(crate) fn observed(&self, event: &EventView<'_>) -> Value {
        if self.is_change() {
            return match event.change(self.field) {
                Some(change) => json!({ "from": change.from, "to": change.to }),
                None => Value::Null,
            };
        }
        event.read(self.field, &self.key).to_json()
    }
}

/// Checks a condition's value against the type its operator takes and turns
/// it into a [`Test`].
fn build_test(
    field: Field,
    op: Operator,
    value_type: ValueType,
    value: &Value,
) -> Result<Test, (Code, String)> {
    let invalid = |message: String| (Code::InvalidValue, message);
    let lower = fold;
    let enum_rank = |s: &str| {
        field.values().iter().position(|v| *v == s).ok_or_else(|| {
            invalid(format!(
                "`{s}` is not one of: {}",
                crate::join(field.values(), ", ")
            ))
        })
    };
    let text_like = !matches!(
        field.kind(),
        crate::catalog::Kind::Id | crate::catalog::Kind::Enum
    );
    let normalise = |s: &str| if text_like { lower(s) } else { s.to_owned() };

    Ok(match value_type {
        ValueType::None => {
            if !value.is_null() {
                return Err(invalid(format!("`{}` takes no value", op.as_str())));
            }
            match op {
                Operator::IsEmpty => Test::Empty(true),
                Operator::IsNotEmpty => Test::Empty(false),
                _ => Test::Changed,
            }
        }
        ValueType::String | ValueType::Enum | ValueType::Regex => {
            let s = expect_string(value, op)?;
            if value_type == ValueType::Enum {
                enum_rank(s)?;
            }
            match op {
                Operator::Is => Test::OneOf(vec![normalise(s)], true),
                Operator::IsNot => Test::OneOf(vec![normalise(s)], false),
                Operator::Lt => Test::Rank(Ordering::Less, false, enum_rank(s)?),
                Operator::Lte => Test::Rank(Ordering::Less, true, enum_rank(s)?),
                Operator::Gt => Test::Rank(Ordering::Greater, false, enum_rank(s)?),
                Operator::Gte => Test::Rank(Ordering::Greater, true, enum_rank(s)?),
                Operator::Contains => Test::Contains(Needle::new(&lower(s)), true),
                Operator::NotContains => Test::Contains(Needle::new(&lower(s)), false),
                Operator::StartsWith => Test::StartsWith(lower(s)),
                Operator::EndsWith => Test::EndsWith(lower(s)),
                Operator::Matches => {
                    let (regex, weight) = compile_pattern(s)?;
                    Test::Matches(regex, weight)
                }
                Operator::ChangedTo => Test::ChangedTo(s.to_owned()),
                _ => Test::ChangedFrom(s.to_owned()),
            }
        }
        ValueType::StringList | ValueType::EnumList => {
            let items = expect_list(value, op)?;
            if value_type == ValueType::EnumList {
                items.iter().try_for_each(|s| enum_rank(s).map(drop))?;
            }
            let items: Vec<String> = items.iter().map(|s| normalise(s)).collect();
            match op {
                Operator::In => Test::OneOf(items, true),
                Operator::NotIn => Test::OneOf(items, false),
                Operator::HasAny => Test::Tags(TagTest::Any, items),
                Operator::HasAll => Test::Tags(TagTest::All, items),
                _ => Test::Tags(TagTest::None, items),
            }
        }
        ValueType::Number => {
            let n = expect_number(value, op)?;
            match op {
                Operator::Lt => Test::Number(Ordering::Less, false, n),
                Operator::Lte => Test::Number(Ordering::Less, true, n),
                Operator::Gt => Test::Number(Ordering::Greater, false, n),
                _ => Test::Number(Ordering::Greater, true, n),
            }
        }
        ValueType::StringOrNumber => {
            let want = op == Operator::Is;
            match value {
                Value::Number(_) => Test::NumberIs(expect_number(value, op)?, want),
                _ => Test::OneOf(vec![lower(expect_string(value, op)?)], want),
            }
        }
    })
}

/// A substring to search for. With the `memchr` feature (on for the server
/// and the CLI) the searcher is built once per condition and a byte filter
/// ([`fast::Bytes`]) skips most searches, which pays when thousands of
/// webhooks test one event; without it (the npm package, where size
/// matters more) the standard library searches. Both answer alike.
#[derive(Debug, Clone)]
struct Needle {
    #[cfg(feature = "memchr")]
    bytes: fast::Bytes,
    #[cfg(feature = "memchr")]
    finder: Box<memchr::memmem::Finder<'static>>,
    #[cfg(not(feature = "memchr"))]
    text: String,
}

impl Needle {
    fn new(text: &str) -> Self {
        Self {
            #[cfg(feature = "memchr")]
            bytes: fast::Bytes::of(text),
            #[cfg(feature = "memchr")]
            finder: Box::new(memchr::memmem::Finder::new(text.as_bytes()).into_owned()),
            #[cfg(not(feature = "memchr"))]
            text: text.to_owned(),
        }
    }

    /// Whether the value, lowercased, contains the needle.
    fn found_in(&self, value: &Read<'_>) -> bool {
        #[cfg(feature = "memchr")]
        return value.may_contain(self.bytes)
            && self.finder.find(value.lowercase().as_bytes()).is_some();
        #[cfg(not(feature = "memchr"))]
        return value.lowercase().contains(self.text.as_str());
    }
}

/// The fast search's filter: which bytes a text holds.
#[cfg(feature = "memchr")]
mod fast {
    use super::{Forms, Read};

    /// Which ASCII bytes a text holds (any other byte counts as one more):
    /// a needle with a byte its haystack lacks is not in it, found without
    /// a search. A tenant's `contains` conditions are mostly words that an
    /// event's subject or message does not hold.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Bytes([u64; 2]);

    impl Bytes {
        pub(super) fn of(text: &str) -> Self {
            let mut set = [0u64; 2];
            for b in text.bytes().map(|b| b.min(127)) {
                set[usize::from(b >> 6)] |= 1 << (b & 63);
            }
            Self(set)
        }

        /// Whether every byte of `self` is in `other`.
        pub(super) fn within(self, other: Self) -> bool {
            self.0[0] & !other.0[0] == 0 && self.0[1] & !other.0[1] == 0
        }
    }

    impl Forms {
        fn bytes(&self, text: &str) -> Bytes {
            *self.bytes.get_or_init(|| Bytes::of(self.lower(text)))
        }
    }

    impl Read<'_> {
        /// Whether the lowercase text may contain a text made of `bytes`:
        /// `false` only when one of them is not in it. Only for a field
        /// with a cache slot, whose bytes are worked out once per event;
        /// any other may.
        pub(super) fn may_contain(&self, bytes: Bytes) -> bool {
            match self {
                Self::Text(s, Some(forms)) => bytes.within(forms.bytes(s)),
                _ => true,
            }
        }
    }
}

fn expect_string(value: &Value, op: Operator) -> Result<&str, (Code, String)> {
    let op = op.as_str();
    match value {
        Value::String(s) if s.is_empty() => Err((
            Code::InvalidValue,
            format!("`{op}` needs a non-empty text; to test for nothing use `is_empty`"),
        )),
        Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => Err((
            Code::InvalidValue,
            format!("the value is longer than {MAX_VALUE_CHARS} characters"),
        )),
        Value::String(s) => Ok(s),
        Value::Null => Err((Code::InvalidValue, format!("`{op}` needs a value"))),
        other => Err((
            Code::InvalidValue,
            format!("`{op}` needs a text value, not {}", describe(other)),
        )),
    }
}

fn expect_list(value: &Value, op: Operator) -> Result<Vec<&str>, (Code, String)> {
    let name = op.as_str();
    let Value::Array(items) = value else {
        return Err((
            Code::InvalidValue,
            format!("`{name}` needs a list of texts, not {}", describe(value)),
        ));
    };
    if items.is_empty() || items.len() > MAX_LIST_ITEMS {
        return Err((
            Code::InvalidValue,
            format!(
                "`{name}` needs from 1 to {MAX_LIST_ITEMS} items; this list has {}",
                items.len()
            ),
        ));
    }
    let texts: Vec<&str> = items
        .iter()
        .map(|item| expect_string(item, op))
        .collect::<Result<_, _>>()?;
    let repeat = crate::webhook::repeats(texts.iter().copied()).next();
    match repeat {
        Some((i, first)) => Err((
            Code::DuplicateValue,
            format!(
                "`{}` is listed twice (items {} and {})",
                texts[i],
                first + 1,
                i + 1
            ),
        )),
        None => Ok(texts),
    }
}

fn expect_number(value: &Value, op: Operator) -> Result<f64, (Code, String)> {
    match value.as_f64() {
        Some(n) if n.is_finite() => Ok(n),
        _ => Err((
            Code::InvalidValue,
            format!("`{}` needs a number, not {}", op.as_str(), describe(value)),
        )),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The first `chars` characters of `text`.
fn head(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(end, _)| &text[..end])
}

/// Compiles a `matches` pattern with the engine's limits, and weighs it
/// ([`crate::weight`]). The engine is linear-time by construction; the
/// limits bound its memory, the weight its time.
fn compile_pattern(pattern: &str) -> Result<(regex_lite::Regex, u32), (Code, String)> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err((
            Code::InvalidRegex,
            format!("the pattern is longer than {MAX_PATTERN_CHARS} characters"),
        ));
    }
    let Some(weight) = crate::weight::pattern_weight(pattern) else {
        return Err((Code::InvalidRegex, "the x flag is not supported".to_owned()));
    };
    regex_lite::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(MAX_REGEX_BYTES)
        .nest_limit(32)
        .build()
        .map(|regex| (regex, weight))
        .map_err(|e| {
            // The engine's message names the problem and where; keep its
            // first line, which carries no input beyond the pattern.
            let detail = e.to_string();
            let detail = detail
                .lines()
                .last()
                .unwrap_or("invalid pattern")
                .trim()
                .to_owned();
            (
                Code::InvalidRegex,
                format!("the pattern does not compile: {detail}"),
            )
        })
}

/// An event as conditions read it, with lowercased text computed at most
/// once per field however many conditions look at it.
#[derive(Debug)]
pub(crate) struct EventView<'a> {
    pub(crate) event: &'a IngestEvent,
    pub(crate) event_type: Option<EventType>,
    /// The cached forms of the five free-text fields (subject, message body
    /// and sender, requester email and name).
    texts: [Forms; 5],
    tags: OnceCell<Vec<String>>,
    /// Positions of the ticket's status and priority in their orders.
    ranks: [OnceCell<Option<usize>>; 2],
}

impl<'a> EventView<'a> {
    pub(crate) fn new(event: &'a IngestEvent) -> Self {
        Self {
            event,
            event_type: EventType::parse(&event.event),
            texts: Default::default(),
            tags: OnceCell::new(),
            ranks: Default::default(),
        }
    }

    fn read(&self, field: Field, key: &str) -> Read<'_> {
        let ticket = &self.event.ticket;
        let text = |s: &'a Option<String>, slot: Option<usize>| match s.as_deref() {
            Some(s) => Read::Text(s, slot.and_then(|i| self.texts.get(i))),
            None => Read::Missing,
        };
        let requester = ticket.requester.as_ref();
        let message = self.event.message.as_ref();
        match field {
            Field::Channel => text(&ticket.channel, None),
            Field::AccountId => text(&ticket.account_id, None),
            Field::TeamId => text(&ticket.team_id, None),
            Field::AssigneeId => text(&ticket.assignee_id, None),
            Field::Status => text(&ticket.status, None),
            Field::Priority => text(&ticket.priority, None),
            Field::Subject => text(&ticket.subject, Some(0)),
            Field::MessageBody => message.map_or(Read::Missing, |m| text(&m.body, Some(1))),
            Field::MessageFrom => message.map_or(Read::Missing, |m| text(&m.from, Some(2))),
            Field::RequesterEmail => requester.map_or(Read::Missing, |r| text(&r.email, Some(3))),
            Field::RequesterName => requester.map_or(Read::Missing, |r| text(&r.name, Some(4))),
            Field::Tags => Read::Tags(&ticket.tags),
            Field::Custom => match ticket.custom_fields.get(key) {
                Some(Value::String(s)) => Read::Text(s, None),
                Some(Value::Number(n)) => Read::Number(n),
                Some(Value::Bool(b)) => Read::Text(if *b { "true" } else { "false" }, None),
                _ => Read::Missing,
            },
        }
    }

    /// The position of an enum field's value in its order, computed once;
    /// `None` when missing or outside the order.
    fn rank(&self, field: Field) -> Option<usize> {
        let (slot, value) = match field {
            Field::Status => (0, &self.event.ticket.status),
            Field::Priority => (1, &self.event.ticket.priority),
            _ => return None,
        };
        *self.ranks[slot].get_or_init(|| {
            let value = value.as_deref()?;
            field.values().iter().position(|v| *v == value)
        })
    }

    /// The ticket's tags, lowercased once.
    fn tags(&self) -> &[String] {
        self.tags
            .get_or_init(|| self.event.ticket.tags.iter().map(|t| fold(t)).collect())
    }

    fn change(&self, field: Field) -> Option<&'a Change> {
        let changes = &self.event.changes;
        match field {
            Field::Status => changes.status.as_ref(),
            Field::Priority => changes.priority.as_ref(),
            Field::AssigneeId => changes.assignee_id.as_ref(),
            Field::TeamId => changes.team_id.as_ref(),
            _ => None,
        }
    }
}

/// A text field's lowercase form (and, with the fast search, the bytes in
/// it), each worked out at most once per event.
#[derive(Debug, Default)]
struct Forms {
    lower: OnceCell<String>,
    #[cfg(feature = "memchr")]
    bytes: OnceCell<fast::Bytes>,
}

impl Forms {
    fn lower(&self, text: &str) -> &str {
        self.lower.get_or_init(|| fold(text))
    }
}

/// One field's value as read from an event.
enum Read<'e> {
    Missing,
    /// Text, with the cache of its forms when it has one.
    Text(&'e str, Option<&'e Forms>),
    Number(&'e serde_json::Number),
    Tags(&'e [String]),
}

impl Read<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Self::Missing => true,
            Self::Text(s, _) => s.is_empty(),
            Self::Number(_) => false,
            Self::Tags(tags) => tags.is_empty(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => n.as_f64(),
            // JSON's number syntax, read by the JSON reader the engine
            // already carries (so no second float parser in the wasm).
            Self::Text(s, _) => s
                .trim()
                .parse::<serde_json::Number>()
                .ok()
                .and_then(|n| n.as_f64())
                .filter(|n| n.is_finite()),
            _ => None,
        }
    }

    /// The text, lowercased (from the cache when there is one).
    fn lowercase(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Text(s, Some(forms)) => forms.lower(s).into(),
            Self::Text(s, None) => fold(s).into(),
            Self::Number(n) => n.to_string().into(),
            Self::Missing | Self::Tags(_) => "".into(),
        }
    }

    /// The form `is`/`in` compare: exact for ids and enums, else lowercase.
    fn comparable(&self, field: Field) -> std::borrow::Cow<'_, str> {
        match (self, field.kind()) {
            (Self::Text(s, _), crate::catalog::Kind::Id | crate::catalog::Kind::Enum) => {
                (*s).into()
            }
            _ => self.lowercase(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Missing => Value::Null,
            Self::Text(s, _) => Value::String((*s).to_owned()),
            Self::Number(n) => Value::Number((*n).clone()),
            Self::Tags(tags) => json!(tags),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[cfg(feature = "memchr")]
    #[test]
    fn the_byte_filter_tells_a_needle_is_missing_only_when_it_is() {
        use super::fast::Bytes;
        assert!(Bytes::of("rder").within(Bytes::of("order 12")));
        assert!(!Bytes::of("order 57").within(Bytes::of("order 12")));
        // Bytes past ASCII count as one: a filter, never a verdict.
        assert!(Bytes::of("é").within(Bytes::of("ü")));
    }

    #[test]
    fn contains_finds_what_is_there_and_only_that() {
        let event: IngestEvent = serde_json::from_value(json!({
            "event": "TicketCreated", "ticketId": "t",
            "ticket": {"subject": "Refund for ORDER 12, reçu"},
        }))
        .expect("event shape");
        let view = EventView::new(&event);
        let holds = |operator: &str, value: &str| {
            let condition: Condition = serde_json::from_value(
                json!({"id": 1, "field": "subject", "operator": operator, "value": value}),
            )
            .expect("condition shape");
            let compiled = CompiledCondition::compile(&condition, 0).expect("valid");
            compiled.holds(&view)
        };
        // Twice: the second time with the subject's bytes known.
        for _ in 0..2 {
            assert!(holds("contains", "order 12"));
            assert!(holds("contains", "REÇU"));
            assert!(!holds("contains", "order 57"));
            assert!(!holds("contains", "order 21"));
            assert!(!holds("contains", "reçue"));
            assert!(holds("not_contains", "order 57"));
            assert!(!holds("not_contains", "order 1"));
        }
    }
}
