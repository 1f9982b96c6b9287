//! Logic expressions: `(1 or 2 or 3) and (4 and 5)`.
//!
//! [`validate`] finds every problem in an expression and reports each as a
//! [`Diagnostic`] with a UTF-16 span; [`parse`] turns a valid one into an
//! [`Expr`] that evaluates without further parsing.
//!
//! Validation runs in stages, so that it can report every problem rather
//! than the first one a parser trips over:
//!
//! 1. limits: `too_long` (checked before anything else touches the input),
//!    then `empty_expression`;
//! 2. `fullwidth_character`: each full-width character is reported and
//!    replaced by its half-width twin, and the later stages see the result,
//!    so they report what would remain after the fix;
//! 3. on the tokens of the `tokens` grammar rule: `missing_space`,
//!    `unbalanced_parentheses`, `too_deep`, `unknown_condition`, and a
//!    `syntax_error` for each unknown word or symbol;
//! 4. when spacing and parentheses are sound, the `expression` grammar rule
//!    parses the input; its failure becomes one `syntax_error` at the
//!    offending token (after one syntax error the parser cannot know what
//!    was meant, so it stops there).
//!
//! Full-width diagnostics come first; the rest follow in the order of their
//! spans. Warnings (`unused_condition`) never make an expression invalid.

use pest::Parser as _;
use pest::iterators::Pair;

use crate::diagnostic::{Code, Diagnostic, Report};

mod text;

use text::{Utf16Index, halfwidth};

/// The longest expression accepted, in characters (Unicode scalar values).
pub const MAX_EXPRESSION_CHARS: usize = 4096;

/// The deepest nesting of parentheses accepted.
pub const MAX_EXPRESSION_DEPTH: usize = 32;

#[derive(pest_derive::Parser)]
#[grammar = "expression/expression.pest"]
struct Grammar;

/// A parsed logic expression. `And` and `Or` hold two or more operands, in
/// the order written; evaluation goes left to right and stops as soon as the
/// answer is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// The condition with this id holds.
    Condition(u32),
    /// Every operand holds.
    And(Vec<Expr>),
    /// At least one operand holds.
    Or(Vec<Expr>),
}

impl Expr {
    /// Evaluates the expression, asking `holds` about each condition it
    /// needs, left to right, skipping those whose answer cannot matter.
    pub fn eval(&self, holds: &mut impl FnMut(u32) -> bool) -> bool {
        // Operands that are conditions are asked here rather than through a
        // call each: most expressions are flat lists of conditions, and a
        // call per leaf was most of the time spent evaluating them (the
        // more so in wasmtime, which checks its deadline at each call).
        let mut operand = |e: &Self| match e {
            Self::Condition(id) => holds(*id),
            group => group.eval(holds),
        };
        match self {
            Self::Condition(id) => holds(*id),
            Self::And(operands) => operands.iter().all(&mut operand),
            Self::Or(operands) => operands.iter().any(&mut operand),
        }
    }

    /// Every condition id the expression mentions, in order of appearance.
    pub fn condition_ids(&self) -> Vec<u32> {
        fn walk(expr: &Expr, out: &mut Vec<u32>) {
            match expr {
                Expr::Condition(id) => out.push(*id),
                Expr::And(operands) | Expr::Or(operands) => {
                    operands.iter().for_each(|e| walk(e, out))
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

/// Validates `expression` against the webhook's condition ids.
pub(crate) fn validate(expression: &str, ids: &[u32]) -> Report {
    // Validation needs no tree: the fast path only checks the parse, and
    // notes the ids it meets in a bit set (condition ids are at most 100),
    // so a valid expression costs no allocation beyond the parser's.
    let mentioned = structural_parse(expression).and_then(|root| {
        let mut mentioned = Mentioned::default();
        for pair in root.into_inner().flatten() {
            match pair.as_rule() {
                Rule::and_op | Rule::or_op if !spaced(&pair, expression.as_bytes()) => return None,
                Rule::number => mentioned.insert(known_id(&pair, ids)?),
                _ => {}
            }
        }
        Some(mentioned)
    });
    match mentioned {
        Some(m) if ids.iter().all(|&id| id == 0 || m.contains(id)) => {
            Report::new(Vec::new(), Vec::new())
        }
        Some(m) => Report::new(Vec::new(), unused_conditions(&m.to_vec(), ids)),
        None => diagnose(expression, ids).0,
    }
}

/// The condition ids an expression mentions: a bit set for ids below 128,
/// a list for the rest.
#[derive(Debug, Default)]
struct Mentioned {
    small: u128,
    large: Vec<u32>,
}

impl Mentioned {
    fn insert(&mut self, id: u32) {
        match 1u128.checked_shl(id) {
            Some(bit) => self.small |= bit,
            None => self.large.push(id),
        }
    }

    fn contains(&self, id: u32) -> bool {
        match 1u128.checked_shl(id) {
            Some(bit) => self.small & bit != 0,
            None => self.large.contains(&id),
        }
    }

    fn to_vec(&self) -> Vec<u32> {
        (0..128)
            .filter(|&id| self.contains(id))
            .chain(self.large.iter().copied())
            .collect()
    }
}

/// Parses a valid expression. Returns the validation report as the error
/// when the expression is not valid.
pub(crate) fn parse(expression: &str, ids: &[u32]) -> Result<Expr, Report> {
    match analyse(expression, ids) {
        (report, Some(expr)) if report.valid => Ok(expr),
        (report, _) => Err(report),
    }
}

/// Validates and, when valid, parses: one pass for both answers.
///
/// Valid input, the common case while an admin types and whenever the
/// server matches, takes a fast path of one structural parse; anything else
/// gets the full diagnosis. Both give the same answer (a property test holds
/// them to it); the fast path only skips work.
pub(crate) fn analyse(expression: &str, ids: &[u32]) -> (Report, Option<Expr>) {
    match parse_valid(expression, ids) {
        Some(expr) => {
            let warnings = unused_conditions(&expr.condition_ids(), ids);
            (Report::new(Vec::new(), warnings), Some(expr))
        }
        None => diagnose(expression, ids),
    }
}

/// The fast path: the expression if it is valid, `None` to say "diagnose".
fn parse_valid(expression: &str, ids: &[u32]) -> Option<Expr> {
    let root = structural_parse(expression)?;
    build(root.into_inner().next()?, expression.as_bytes(), ids)
}

/// The `expression` rule's parse of input that may be valid, or `None`.
///
/// Every valid expression is ASCII (digits, letters of `and`/`or`,
/// parentheses, blanks), so non-ASCII input, full-width characters
/// included, is refused at once. The nesting depth is checked before
/// parsing so that the parser's recursion stays bounded.
fn structural_parse(expression: &str) -> Option<Pair<'_, Rule>> {
    if !expression.is_ascii() || expression.len() > MAX_EXPRESSION_CHARS {
        return None;
    }
    let mut depth = 0usize;
    for &b in expression.as_bytes() {
        match b {
            b'(' if depth == MAX_EXPRESSION_DEPTH => return None,
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Grammar::parse(Rule::expression, expression).ok()?.next()
}

/// Whether an operator has a blank right before and right after it.
fn spaced(operator: &Pair<'_, Rule>, input: &[u8]) -> bool {
    let blank = |at: Option<&u8>| matches!(at, Some(b' ' | b'\t'));
    let span = operator.as_span();
    let before = span.start().checked_sub(1).and_then(|i| input.get(i));
    blank(before) && blank(input.get(span.end()))
}

/// The condition id a `number` names, if it is one of `ids`.
fn known_id(number: &Pair<'_, Rule>, ids: &[u32]) -> Option<u32> {
    let id: u32 = number.as_str().parse().ok()?;
    (id != 0 && ids.contains(&id)).then_some(id)
}

/// The full diagnosis: every problem that can be found (see the module
/// docs for the stages), and the expression when there is none.
fn diagnose(expression: &str, ids: &[u32]) -> (Report, Option<Expr>) {
    let chars = expression.chars().count();
    if chars > MAX_EXPRESSION_CHARS {
        let end = to_u32(expression.encode_utf16().count());
        let message = format!(
            "the expression is {chars} characters long; the limit is {MAX_EXPRESSION_CHARS}"
        );
        return (
            only(Diagnostic::spanned(Code::TooLong, message, 0, end)),
            None,
        );
    }

    let (normalized, mut errors) = report_fullwidth(expression);
    if normalized.trim_matches([' ', '\t']).is_empty() {
        errors.push(Diagnostic::spanned(
            Code::EmptyExpression,
            "the expression is empty: write condition numbers joined by `and` or `or`, e.g. `1 and 2`",
            0,
            0,
        ));
        return (Report::new(errors, Vec::new()), None);
    }

    let index = Utf16Index::new(&normalized);
    let tokens = tokenize(&normalized);
    let mut lexical = Vec::new();
    let structure_sound = check_spacing(&tokens, &index, &mut lexical)
        & check_parentheses(&tokens, &index, &mut lexical);
    check_words_and_numbers(&tokens, ids, &index, &mut lexical);

    let mut expr = None;
    if structure_sound {
        match Grammar::parse(Rule::expression, &normalized) {
            Ok(mut pairs) => {
                let root = pairs.next().and_then(|p| p.into_inner().next());
                expr = root.and_then(|root| build(root, normalized.as_bytes(), ids));
            }
            Err(error) => {
                let diagnostic = syntax_error(&error, &tokens, &normalized, &index);
                if !lexical
                    .iter()
                    .any(|d| d.code == Code::SyntaxError && d.start == diagnostic.start)
                {
                    lexical.push(diagnostic);
                }
            }
        }
    }

    errors.extend(in_order(lexical));
    let mentioned: Vec<u32> = tokens
        .iter()
        .filter(|t| t.kind == Kind::Number)
        .filter_map(|t| t.text.parse().ok())
        .collect();
    let warnings = unused_conditions(&mentioned, ids);
    let report = Report::new(errors, warnings);
    let expr = if report.valid { expr } else { None };
    (report, expr)
}

fn only(diagnostic: Diagnostic) -> Report {
    Report::new(vec![diagnostic], Vec::new())
}

/// Reports every full-width character and returns the input with each one
/// replaced by its half-width twin. Both are one UTF-16 unit wide, so spans
/// in the replaced text are spans in the original.
fn report_fullwidth(expression: &str) -> (String, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut normalized = String::with_capacity(expression.len());
    let mut at = 0u32;
    for c in expression.chars() {
        let width = to_u32(c.len_utf16());
        match halfwidth(c) {
            Some(ascii) => {
                let shown = match ascii {
                    ' ' => "a half-width space".to_owned(),
                    _ => format!("the half-width `{ascii}`"),
                };
                let message = format!(
                    "full-width `{c}` (U+{:04X}): use {shown} instead",
                    u32::from(c)
                );
                errors.push(
                    Diagnostic::spanned(Code::FullwidthCharacter, message, at, at + width)
                        .replaced_by(ascii),
                );
                normalized.push(ascii);
            }
            None => normalized.push(c),
        }
        at += width;
    }
    (normalized, errors)
}

/// A token of the `tokens` grammar rule, with its byte span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blanks,
    Open,
    Close,
    Number,
    Operator,
    Word,
    Symbol,
}

fn tokenize(input: &str) -> Vec<Token<'_>> {
    // `tokens` accepts every input, so failure would be a grammar bug; an
    // empty token list then makes the structural parse report it.
    let Ok(mut pairs) = Grammar::parse(Rule::tokens, input) else {
        return Vec::new();
    };
    let Some(root) = pairs.next() else {
        return Vec::new();
    };
    root.into_inner()
        .filter_map(|pair| {
            let text = pair.as_str();
            let kind = match pair.as_rule() {
                Rule::blanks => Kind::Blanks,
                Rule::open => Kind::Open,
                Rule::close => Kind::Close,
                Rule::number => Kind::Number,
                Rule::word if is_operator(text) => Kind::Operator,
                Rule::word => Kind::Word,
                Rule::symbol => Kind::Symbol,
                _ => return None,
            };
            let span = pair.as_span();
            Some(Token {
                kind,
                text,
                start: span.start(),
                end: span.end(),
            })
        })
        .collect()
}

fn is_operator(word: &str) -> bool {
    word.eq_ignore_ascii_case("and") || word.eq_ignore_ascii_case("or")
}

/// `missing_space` for each operator without a blank right before or after
/// it. An operator at either end is a missing operand, left to the parser.
/// Returns whether spacing is sound.
fn check_spacing(tokens: &[Token<'_>], index: &Utf16Index, out: &mut Vec<Diagnostic>) -> bool {
    let before = out.len();
    for (i, token) in tokens.iter().enumerate() {
        if token.kind != Kind::Operator {
            continue;
        }
        let prev = i.checked_sub(1).and_then(|p| tokens.get(p));
        let next = tokens.get(i + 1);
        let cramped = |t: Option<&Token<'_>>| t.is_some_and(|t| t.kind != Kind::Blanks);
        if cramped(prev) || cramped(next) {
            let op = token.text.to_ascii_lowercase();
            let (start, end) = index.span(token.start, token.end);
            let message = format!("`{}` needs a space before and after it", op);
            out.push(Diagnostic::spanned(Code::MissingSpace, message, start, end));
        }
    }
    out.len() == before
}

/// `unbalanced_parentheses` for each `)` without a partner and for the
/// outermost `(` left open; `too_deep` for the first `(` past the limit.
/// Returns whether the parentheses are sound.
fn check_parentheses(tokens: &[Token<'_>], index: &Utf16Index, out: &mut Vec<Diagnostic>) -> bool {
    let before = out.len();
    let mut open: Vec<&Token<'_>> = Vec::new();
    let mut reported_depth = false;
    for token in tokens {
        match token.kind {
            Kind::Open => {
                open.push(token);
                if open.len() > MAX_EXPRESSION_DEPTH && !reported_depth {
                    reported_depth = true;
                    let (start, end) = index.span(token.start, token.end);
                    let message = format!(
                        "parentheses are nested more than {MAX_EXPRESSION_DEPTH} levels deep"
                    );
                    out.push(Diagnostic::spanned(Code::TooDeep, message, start, end));
                }
            }
            Kind::Close if open.pop().is_none() => {
                let (start, end) = index.span(token.start, token.end);
                out.push(Diagnostic::spanned(
                    Code::UnbalancedParentheses,
                    "this `)` has no matching `(`",
                    start,
                    end,
                ));
            }
            _ => {}
        }
    }
    if let Some(outermost) = open.first() {
        let (start, end) = index.span(outermost.start, outermost.end);
        let message = match open.len() {
            1 => "this `(` is never closed".to_owned(),
            n => format!("this `(` is never closed ({n} parentheses are left open)"),
        };
        out.push(Diagnostic::spanned(
            Code::UnbalancedParentheses,
            message,
            start,
            end,
        ));
    }
    out.len() == before
}

/// `unknown_condition` for each number that is not a condition id, and
/// `syntax_error` for each word that is not an operator and each symbol.
fn check_words_and_numbers(
    tokens: &[Token<'_>],
    ids: &[u32],
    index: &Utf16Index,
    out: &mut Vec<Diagnostic>,
) {
    for token in tokens {
        let (start, end) = index.span(token.start, token.end);
        let message = match token.kind {
            Kind::Number => match token.text.parse::<u32>() {
                Ok(id) if id != 0 && ids.contains(&id) => continue,
                Ok(0) => "there is no condition 0: conditions are numbered from 1".to_owned(),
                Ok(id) => format!("there is no condition {id}"),
                Err(_) => format!("there is no condition {}", quote(token.text)),
            },
            Kind::Word => format!(
                "unknown word {}: only condition numbers, `and`, `or` and parentheses are allowed",
                quote(token.text)
            ),
            Kind::Symbol => format!(
                "unexpected {}: only condition numbers, `and`, `or` and parentheses are allowed",
                quote(token.text)
            ),
            _ => continue,
        };
        let code = if token.kind == Kind::Number {
            Code::UnknownCondition
        } else {
            Code::SyntaxError
        };
        out.push(Diagnostic::spanned(code, message, start, end));
    }
}

/// The `syntax_error` for a failed structural parse: the token where the
/// parser stopped (or the end), and what it expected there, in the user's
/// words.
fn syntax_error(
    error: &pest::error::Error<Rule>,
    tokens: &[Token<'_>],
    input: &str,
    index: &Utf16Index,
) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};

    let at = match error.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    let expected = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => describe_expected(positives),
        ErrorVariant::CustomError { .. } => String::new(),
    };
    let token = tokens
        .iter()
        .find(|t| t.kind != Kind::Blanks && t.start <= at && at < t.end)
        .or_else(|| {
            tokens
                .iter()
                .find(|t| t.kind != Kind::Blanks && t.start >= at)
        });
    let (found, start, end) = match token {
        Some(t) => (format!("unexpected {}", quote(t.text)), t.start, t.end),
        None => (
            "the expression ends too early".to_owned(),
            input.len(),
            input.len(),
        ),
    };
    let empty_group = token.is_some_and(|t| t.kind == Kind::Close)
        && input[..start].trim_end_matches([' ', '\t']).ends_with('(');
    let message = if empty_group {
        "empty parentheses: write a condition number or an expression inside".to_owned()
    } else if expected.is_empty() {
        found
    } else {
        format!("{found}: expected {expected}")
    };
    let (start, end) = index.span(start, end);
    Diagnostic::spanned(Code::SyntaxError, message, start, end)
}

/// Names grammar rules in the admin's words: "a condition number or `(`".
/// The names come in one fixed order, whatever order pest tried them in.
fn describe_expected(rules: &[Rule]) -> String {
    const ORDER: [&str; 6] = [
        "a condition number",
        "`(`",
        "`)`",
        "`and`",
        "`or`",
        "the end of the expression",
    ];
    let mut wanted = [false; ORDER.len()];
    for rule in rules {
        let names: &[usize] = match rule {
            Rule::number => &[0],
            Rule::open | Rule::group => &[1],
            Rule::disjunction | Rule::conjunction => &[0, 1],
            Rule::close => &[2],
            Rule::and_op => &[3],
            Rule::or_op => &[4],
            Rule::EOI => &[5],
            _ => &[],
        };
        names.iter().for_each(|&i| wanted[i] = true);
    }
    let names: Vec<&str> = ORDER
        .iter()
        .zip(wanted)
        .filter(|(_, w)| *w)
        .map(|(n, _)| *n)
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", crate::join(init, ", ")),
    }
}

/// Diagnostics in order of span, then code. A heap sort (`BinaryHeap`)
/// rather than `sort_by_key`: the same order (no two diagnostics share a
/// span and a code) with a fraction of the code in the browser's wasm, and
/// O(n log n) whatever the input.
fn in_order(diagnostics: Vec<Diagnostic>) -> impl Iterator<Item = Diagnostic> {
    struct ByPlace(Diagnostic);
    impl ByPlace {
        fn key(&self) -> (Option<u32>, Option<u32>, Code) {
            (self.0.start, self.0.end, self.0.code)
        }
    }
    impl PartialEq for ByPlace {
        fn eq(&self, other: &Self) -> bool {
            self.key() == other.key()
        }
    }
    impl Eq for ByPlace {}
    impl PartialOrd for ByPlace {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for ByPlace {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.key().cmp(&other.key())
        }
    }
    let heap: std::collections::BinaryHeap<ByPlace> =
        diagnostics.into_iter().map(ByPlace).collect();
    heap.into_sorted_vec().into_iter().map(|d| d.0)
}

/// `unused_condition` for each id the expression never mentions, once each,
/// in the order of `ids`.
///
/// Ids and mentions are searched from the front, with no set to build: a
/// caller passes at most
/// [`MAX_CONDITIONS`](crate::catalog::MAX_CONDITIONS) ids, and an expression of at
/// most [`MAX_EXPRESSION_CHARS`] mentions at most half as many numbers, so
/// a search is bounded, and no sort joins the browser's wasm.
fn unused_conditions(mentioned: &[u32], ids: &[u32]) -> Vec<Diagnostic> {
    (0..ids.len())
        .filter(|&at| {
            let id = ids[at];
            id != 0 && !mentioned.contains(&id) && !ids[..at].contains(&id)
        })
        .map(|at| {
            let message = format!("condition {} is not used in the expression", ids[at]);
            Diagnostic::spanned(Code::UnusedCondition, message, 0, 0)
        })
        .collect()
}

/// Builds the tree of a `disjunction`, `conjunction`, `group` or `number`,
/// checking on the way what the structural grammar leaves to others: a
/// blank on each side of every operator, and every number a condition id.
/// `None` when a check fails.
fn build(pair: Pair<'_, Rule>, input: &[u8], ids: &[u32]) -> Option<Expr> {
    let rule = pair.as_rule();
    if rule == Rule::number {
        return known_id(&pair, ids).map(Expr::Condition);
    }
    let mut operands = Vec::new();
    for inner in pair.into_inner() {
        match inner.as_rule() {
            Rule::and_op | Rule::or_op if !spaced(&inner, input) => return None,
            Rule::and_op | Rule::or_op | Rule::open | Rule::close => {}
            _ => operands.push(build(inner, input, ids)?),
        }
    }
    match (rule, operands.len()) {
        (_, 1) => operands.pop(),
        (Rule::disjunction, _) => Some(Expr::Or(operands)),
        _ => Some(Expr::And(operands)),
    }
}

/// A token's text for a message: in backticks, cut after
/// [`QUOTE_CHARS`] characters, with invisible characters (controls, line
/// breaks, zero-width and other non-space blanks) named by code point.
fn quote(text: &str) -> String {
    let mut quoted = String::from("`");
    for (i, c) in text.chars().enumerate() {
        if i == QUOTE_CHARS {
            quoted.push('…');
            break;
        }
        let invisible = c.is_control()
            || (c.is_whitespace() && c != ' ')
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}');
        if invisible {
            quoted.push_str(&format!("U+{:04X}", u32::from(c)));
        } else {
            quoted.push(c);
        }
    }
    quoted.push('`');
    quoted
}

/// How many characters of a token a message quotes.
const QUOTE_CHARS: usize = 24;

/// Lengths here are bounded by [`MAX_EXPRESSION_CHARS`], so they fit.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
