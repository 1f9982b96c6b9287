//! Diagnostics: the one shape every problem the engine finds is reported in.
//!
//! A [`Report`] is what every validation returns. It serialises to the JSON
//! the contract names, `{"valid", "errors", "warnings"}`, each diagnostic as
//! `{"code", "message", "path"?, "conditionId"?, "start"?, "end"?}`, and every
//! surface (CLI, wasmtime guest, npm package, HTTP API) hands it on unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of problem a [`Diagnostic`] reports. Stable: clients key their
/// translations and UI behaviour on these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "DiagnosticCode"))]
pub enum Code {
    /// A logic expression was required but nothing was written.
    EmptyExpression,
    /// A full-width character where a half-width one belongs.
    FullwidthCharacter,
    /// `and`/`or` without a blank on both sides.
    MissingSpace,
    /// An unclosed `(` or an unexpected `)`.
    UnbalancedParentheses,
    /// A number that is not one of the webhook's condition ids.
    UnknownCondition,
    /// Any other problem with the shape of an expression.
    SyntaxError,
    /// An expression longer than [`crate::MAX_EXPRESSION_CHARS`].
    TooLong,
    /// Parentheses nested deeper than [`crate::MAX_EXPRESSION_DEPTH`].
    TooDeep,
    /// Warning: a condition the expression never mentions.
    UnusedCondition,
    /// A condition field the catalogue does not know.
    UnknownField,
    /// An operator the condition's field does not support.
    OperatorNotAllowed,
    /// A value of the wrong type or outside its limits.
    InvalidValue,
    /// A `matches` pattern that does not compile.
    InvalidRegex,
    /// `matches` patterns that together weigh more than
    /// [`crate::MAX_PATTERN_WEIGHT`] ([`crate::weight`]).
    TooCostly,
    /// Two conditions with the same id.
    DuplicateId,
    /// A condition id outside 1..=100.
    InvalidId,
    /// More conditions than [`crate::MAX_CONDITIONS`].
    TooManyConditions,
    /// A target URL that is not an absolute http(s) URL within the limits.
    InvalidUrl,
    /// An event type that does not exist.
    UnknownEvent,
    /// A field an ingest event of its type needs is absent.
    MissingField,
    /// A key the webhook (or its condition) does not have, such as a typo.
    UnknownKey,
    /// An entry listed twice in one list (`events`, `channels`, `accounts`,
    /// a condition's list value).
    DuplicateValue,
    /// A list with more entries than [`crate::MAX_LIST_ITEMS`], or more
    /// condition ids than [`crate::MAX_CONDITIONS`].
    TooManyItems,
}

impl Code {
    /// The code as it appears in JSON, e.g. `"missing_space"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyExpression => "empty_expression",
            Self::FullwidthCharacter => "fullwidth_character",
            Self::MissingSpace => "missing_space",
            Self::UnbalancedParentheses => "unbalanced_parentheses",
            Self::UnknownCondition => "unknown_condition",
            Self::SyntaxError => "syntax_error",
            Self::TooLong => "too_long",
            Self::TooDeep => "too_deep",
            Self::UnusedCondition => "unused_condition",
            Self::UnknownField => "unknown_field",
            Self::OperatorNotAllowed => "operator_not_allowed",
            Self::InvalidValue => "invalid_value",
            Self::InvalidRegex => "invalid_regex",
            Self::TooCostly => "too_costly",
            Self::DuplicateId => "duplicate_id",
            Self::InvalidId => "invalid_id",
            Self::TooManyConditions => "too_many_conditions",
            Self::InvalidUrl => "invalid_url",
            Self::UnknownEvent => "unknown_event",
            Self::MissingField => "missing_field",
            Self::UnknownKey => "unknown_key",
            Self::DuplicateValue => "duplicate_value",
            Self::TooManyItems => "too_many_items",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem (or warning), with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(optional_fields))]
pub struct Diagnostic {
    /// What kind of problem this is.
    pub code: Code,
    /// A sentence for the admin, in their words (never a grammar rule name).
    pub message: String,
    /// Where in a webhook the problem is, e.g. `conditions[2].value`; absent
    /// when validating a bare expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub path: Option<String>,
    /// The id of the condition the problem belongs to, when there is one, so
    /// a UI can mark that condition in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub condition_id: Option<u32>,
    /// Start of the span to underline, in UTF-16 code units (JavaScript string
    /// indices) of the expression. Present on every expression diagnostic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub start: Option<u32>,
    /// End (exclusive) of the span to underline, as `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub end: Option<u32>,
    /// The text that fixes the problem in place of `start..end`, when the
    /// engine knows it: the half-width twin of a full-width character.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub replacement: Option<String>,
}

impl Diagnostic {
    /// A diagnostic about a span of an expression.
    pub fn spanned(code: Code, message: impl Into<String>, start: u32, end: u32) -> Self {
        Self {
            code,
            message: message.into(),
            path: None,
            condition_id: None,
            start: Some(start),
            end: Some(end),
            replacement: None,
        }
    }

    /// A diagnostic about a part of a webhook, named by its path.
    pub fn at(path: impl Into<String>, code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            path: Some(path.into()),
            condition_id: None,
            start: None,
            end: None,
            replacement: None,
        }
    }

    /// The same diagnostic, with the text that fixes it.
    pub fn replaced_by(mut self, replacement: impl Into<String>) -> Self {
        self.replacement = Some(replacement.into());
        self
    }

    /// The same diagnostic, attributed to a condition.
    pub fn for_condition(mut self, id: u32) -> Self {
        self.condition_id = Some(id);
        self
    }
}

/// The answer of every validation: whether the input is valid, every error
/// found and every warning. Warnings never make the input invalid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Report {
    /// `true` exactly when `errors` is empty.
    pub valid: bool,
    /// Every problem found, in the order the contract gives.
    pub errors: Vec<Diagnostic>,
    /// Advice that does not make the input invalid.
    pub warnings: Vec<Diagnostic>,
}

impl Report {
    /// A report from its errors and warnings; `valid` follows from `errors`.
    pub fn new(errors: Vec<Diagnostic>, warnings: Vec<Diagnostic>) -> Self {
        Self {
            valid: errors.is_empty(),
            errors,
            warnings,
        }
    }
}

/// An input the engine refused, with the report that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summary(.0))]
pub struct Invalid(pub Report);

fn summary(report: &Report) -> String {
    let mut errors = report.errors.iter();
    let Some(first) = errors.next() else {
        return "invalid input".to_owned();
    };
    let where_ = first
        .path
        .as_deref()
        .map(|p| format!("{p}: "))
        .unwrap_or_default();
    match errors.len() {
        0 => format!("{where_}{} ({})", first.message, first.code),
        more => format!(
            "{where_}{} ({}), and {more} more problem{}",
            first.message,
            first.code,
            if more == 1 { "" } else { "s" }
        ),
    }
}
