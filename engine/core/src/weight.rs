//! What a `matches` pattern costs to run, worked out from its text.
//!
//! The regex engine is linear in the text, but the factor is the number of
//! states of the pattern's automaton: each character of the text may step
//! every state at once. `.{0,400}!n` has some 400 states and takes about 40
//! times as long per character as `refund`. A pattern's *weight* is an
//! upper estimate of its states, worked out from the pattern itself (the
//! same on every platform, where the compiled size is not): each literal
//! character, class, escape, anchor and `|` weighs 1, a group its contents
//! plus 1, `*`, `+` and `?` add 1 to what they repeat, and `{n,m}` repeats
//! it `max(n, m)` times plus 1. Each pattern also weighs [`SCAN_WEIGHT`]
//! for the scan itself.
//!
//! Measured natively (`cargo bench -p inbox-rules --bench engine --
//! pattern`; BENCHMARKS.md), one unit of weight costs some 10 to 40 ns per
//! character scanned, dense bounded repetitions the most; with the text
//! limited to
//! [`crate::MAX_MATCH_CHARS`] and a webhook's patterns to
//! [`crate::MAX_PATTERN_WEIGHT`], its patterns take at most a few
//! milliseconds per event.

/// What scanning a text costs beyond the pattern's states, in units of
/// weight.
pub const SCAN_WEIGHT: u32 = 4;

/// The weight of a pattern that compiles (see the module's text), scan
/// included; `None` for a pattern that turns on verbose mode (the `x`
/// flag), whose blanks and `#` comments this reading does not follow. For
/// text that does not compile the figure means nothing, but it is still a
/// number: this never fails.
pub fn pattern_weight(pattern: &str) -> Option<u32> {
    // Every bit of syntax is ASCII; a character outside ASCII is a
    // literal, weighed at its first byte (continuation bytes weigh 0).
    let bytes = pattern.as_bytes();
    // One frame per open group: the weight of its finished part, and of
    // its last item, which a quantifier may still repeat.
    let mut frames = vec![Frame::default()];
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        let top = frames.len() - 1;
        match b {
            b'\\' => {
                i = after_escape(bytes, i);
                frames[top].push(1);
            }
            b'[' => {
                i = after_class(bytes, i);
                frames[top].push(1);
            }
            b'(' => match group_start(bytes, i)? {
                GroupStart::Flags(next) => i = next,
                GroupStart::Group(next) => {
                    i = next;
                    frames.push(Frame::default());
                }
            },
            b')' if frames.len() > 1 => {
                let inner: u32 = frames.pop().as_ref().map_or(0, Frame::total);
                frames[top - 1].push(inner.saturating_add(1));
            }
            b'|' => {
                let frame = &mut frames[top];
                frame.done = frame.total().saturating_add(1);
                frame.last = 0;
            }
            b'*' | b'+' | b'?' => {
                frames[top].last = frames[top].last.saturating_add(1);
                i = after_lazy(bytes, i);
            }
            b'{' => match counted(bytes, i) {
                Some((times, next)) => {
                    let frame = &mut frames[top];
                    frame.last = frame.last.saturating_mul(times.max(1)).saturating_add(1);
                    i = after_lazy(bytes, next);
                }
                None => frames[top].push(1),
            },
            0x80..=0xBF => {}
            _ => frames[top].push(1),
        }
    }
    let states = frames
        .iter()
        .rev()
        .fold(0u32, |inner, frame| frame.total().saturating_add(inner));
    Some(states.saturating_add(SCAN_WEIGHT))
}

#[derive(Debug, Default, Clone, Copy)]
struct Frame {
    done: u32,
    last: u32,
}

impl Frame {
    fn push(&mut self, weight: u32) {
        self.done = self.total();
        self.last = weight;
    }

    fn total(&self) -> u32 {
        self.done.saturating_add(self.last)
    }
}

enum GroupStart {
    /// `(?i)`: flags for the rest of the group, no group of its own.
    Flags(usize),
    /// `(`, `(?:`, `(?i:`, `(?P<name>`, `(?<name>`: the group's contents
    /// start at the index.
    Group(usize),
}

/// Reads what follows a `(` at `i`; `None` when it turns on verbose mode.
fn group_start(bytes: &[u8], i: usize) -> Option<GroupStart> {
    if bytes.get(i) != Some(&b'?') {
        return Some(GroupStart::Group(i));
    }
    let mut j = i + 1;
    if bytes.get(j) == Some(&b'P') && bytes.get(j + 1) == Some(&b'<') {
        j += 1;
    }
    if bytes.get(j) == Some(&b'<') {
        return Some(GroupStart::Group(after(bytes, j, b'>')));
    }
    let mut on = true;
    while let Some(&flag) = bytes
        .get(j)
        .filter(|b| b.is_ascii_alphabetic() || **b == b'-')
    {
        match flag {
            b'-' => on = false,
            b'x' if on => return None,
            _ => {}
        }
        j += 1;
    }
    Some(match bytes.get(j) {
        Some(b')') => GroupStart::Flags(j + 1),
        Some(b':') => GroupStart::Group(j + 1),
        _ => GroupStart::Group(j),
    })
}

/// The index after the first `end` at or after `i` (the end of the text
/// when there is none).
fn after(bytes: &[u8], i: usize, end: u8) -> usize {
    bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == end))
        .map_or(bytes.len(), |k| i + k + 1)
}

/// The index after the escape whose `\` is just before `i`.
fn after_escape(bytes: &[u8], i: usize) -> usize {
    let Some(&b) = bytes.get(i) else { return i };
    let i = i + 1;
    let braced = bytes.get(i) == Some(&b'{');
    let skip = match b {
        b'x' | b'u' | b'U' | b'p' | b'P' if braced => return after(bytes, i, b'}'),
        b'x' => 2,
        b'u' => 4,
        b'U' => 8,
        b'p' | b'P' => 1,
        _ => 0,
    };
    (i + skip).min(bytes.len())
}

/// The index after the class whose `[` is just before `i`; classes nest.
fn after_class(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    if bytes.get(i) == Some(&b'^') {
        i += 1;
    }
    // A `]` first in a class is a literal.
    if bytes.get(i) == Some(&b']') {
        i += 1;
    }
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'\\' => i = after_escape(bytes, i),
            b'[' => {
                depth += 1;
                if bytes.get(i) == Some(&b'^') {
                    i += 1;
                }
            }
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    i
}

/// `{n}`, `{n,}` or `{n,m}` (blanks around the numbers allowed) whose `{`
/// is just before `i`: the most times it repeats (`n + 1` for `{n,}`) and
/// the index after the `}`.
fn counted(bytes: &[u8], mut i: usize) -> Option<(u32, usize)> {
    // Blanks (outside ASCII too: any byte past it, which in a pattern that
    // compiles can only be a blank here).
    let blanks = |i: &mut usize| {
        while bytes
            .get(*i)
            .is_some_and(|b| b.is_ascii_whitespace() || *b >= 0x80)
        {
            *i += 1;
        }
    };
    let number = |i: &mut usize| -> Option<u32> {
        blanks(i);
        let start = *i;
        let mut n = 0u32;
        while let Some(digit) = bytes.get(*i).filter(|b| b.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add(u32::from(digit - b'0'));
            *i += 1;
        }
        blanks(i);
        (*i > start).then_some(n)
    };
    let low = number(&mut i)?;
    let times = match bytes.get(i) {
        Some(b',') => {
            i += 1;
            blanks(&mut i);
            match bytes.get(i) {
                Some(b'}') => low.saturating_add(1),
                _ => number(&mut i)?.max(low),
            }
        }
        _ => low,
    };
    (bytes.get(i) == Some(&b'}')).then_some((times, i + 1))
}

/// Skips the `?` that makes a quantifier lazy.
fn after_lazy(bytes: &[u8], i: usize) -> usize {
    if bytes.get(i) == Some(&b'?') {
        i + 1
    } else {
        i
    }
}

/// What a webhook's `matches` patterns weigh together, as validation adds
/// them up: a valid webhook weighs at most [`crate::MAX_PATTERN_WEIGHT`].
/// The server keeps this figure with each stored webhook to bound what a
/// tenant's webhooks weigh together. Patterns that do not compile count 0
/// (such a webhook is not valid).
pub fn webhook_weight(webhook: &crate::Webhook) -> u32 {
    webhook
        .conditions
        .iter()
        .filter(|c| crate::Operator::parse(&c.operator) == Some(crate::Operator::Matches))
        .filter_map(|c| c.value.as_str())
        .filter_map(pattern_weight)
        .fold(0, u32::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(pattern: &str) -> u32 {
        pattern_weight(pattern).expect("not verbose") - SCAN_WEIGHT
    }

    #[test]
    fn literals_classes_and_escapes_weigh_one_each() {
        assert_eq!(states("refund"), 6);
        assert_eq!(states(r"order #\d\d"), 9);
        assert_eq!(states(r"[a-z\]]x"), 2);
        assert_eq!(states(r"[[:alpha:][^x]]"), 1);
        assert_eq!(states(r"[]a]"), 1);
        assert_eq!(states(r"\x41\u{1F600}\pL\p{Greek}"), 4);
        assert_eq!(states(r"^a$"), 3);
    }

    #[test]
    fn characters_outside_ascii_weigh_one_each() {
        assert_eq!(states("日本"), 2);
        assert_eq!(states("é{3}"), 4);
    }

    #[test]
    fn verbose_mode_is_not_weighed() {
        assert_eq!(pattern_weight("(?x)a{400}"), None);
        assert_eq!(pattern_weight("a(?ix:b)"), None);
        assert_eq!(pattern_weight("(?i-x)a"), Some(1 + SCAN_WEIGHT));
        assert_eq!(pattern_weight(r"\(?x)"), Some(4 + SCAN_WEIGHT));
    }

    #[test]
    fn groups_and_alternation_add_their_parts() {
        assert_eq!(states("refund|cancel"), 13);
        assert_eq!(states("(re|fw):"), 7);
        assert_eq!(states("(?:ab)(?P<n>c)(?<m>d)"), 2 + 1 + 1 + 1 + 1 + 1);
        assert_eq!(states("(?i)ab(?-i:c)"), 2 + 2);
    }

    #[test]
    fn repetition_multiplies_what_it_repeats() {
        assert_eq!(states(".*"), 2);
        assert_eq!(states("a+?b??"), 4);
        assert_eq!(states(".{0,400}!n"), 403);
        assert_eq!(states("x{3}"), 4);
        assert_eq!(states("x{3,}"), 5);
        assert_eq!(states("(ab){10}"), 31);
        assert_eq!(
            states("((a{10}){10}){10}"),
            ((11 + 1) * 10 + 1 + 1) * 10 + 1
        );
        // Saturates instead of overflowing.
        assert_eq!(
            pattern_weight("(((a{4000000000}){4000000000}))"),
            Some(u32::MAX)
        );
        // Blanks inside the braces, which the regex engine allows.
        assert_eq!(states("a{ 400 }"), 401);
        assert_eq!(states("a{2, 400 }"), 401);
        assert_eq!(states("a{\u{3000}400}"), 401);
    }

    #[test]
    fn any_text_has_a_weight() {
        for text in [
            "", "(", ")", "\\", "[", "{", "a{", "a{1,", "(?", "(?P<", "\\x{", "[[", "a{x}",
        ] {
            assert!(pattern_weight(text) >= Some(SCAN_WEIGHT), "{text}");
        }
    }

    /// Every pattern that compiles is weighed at least at its compiled
    /// states' share: the estimate never undercounts what the regex engine
    /// builds by more than a constant (its bytes per state), over patterns
    /// of every construct.
    #[test]
    fn the_weight_grows_with_the_compiled_size() {
        let patterns = [
            "refund",
            "refund|chargeback|cancel",
            r"\b(refund|chargeback|cancel)\b",
            r"order #\d{6}",
            ".{0,400}!n",
            ".{0,40}!n",
            r"(a|b|c|d|e|f|g|h)+z",
            r"[a-z]+@[a-z]+\.[a-z]{2,}",
            r"(\w+\s*){1,10}!",
            r"[^\n]{0,100}urgent",
            r"((a{10}){10}){10}",
            r"(?:x{2,5}y?){20}",
        ];
        for pattern in patterns {
            let weight = u64::from(states(pattern));
            let compiled = compiled_bytes(pattern) as u64;
            assert!(
                compiled <= 400 + 160 * weight,
                "{pattern}: {compiled} bytes compiled for a weight of {weight}"
            );
        }
    }

    /// The smallest size limit the pattern compiles under.
    fn compiled_bytes(pattern: &str) -> usize {
        let builds = |limit| {
            regex_lite::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(limit)
                .build()
                .is_ok()
        };
        let (mut low, mut high) = (1, 1 << 24);
        while low < high {
            let mid = usize::midpoint(low, high);
            if builds(mid) {
                high = mid
            } else {
                low = mid + 1
            }
        }
        low
    }

    #[test]
    fn a_webhook_weighs_its_matches_patterns_and_nothing_else() {
        let webhook: crate::Webhook = serde_json::from_value(serde_json::json!({
            "name": "w", "url": "https://example.com/hook", "events": ["TicketCreated"],
            "conditions": [
                {"id": 1, "field": "subject", "operator": "matches", "value": "refund"},
                {"id": 2, "field": "subject", "operator": "contains", "value": "refund"},
                {"id": 3, "field": "message.body", "operator": "matches", "value": "[^\\n]{0,9}!"}
            ]
        }))
        .expect("a webhook");
        let both = states("refund") + states("[^\\n]{0,9}!") + 2 * SCAN_WEIGHT;
        assert_eq!(webhook_weight(&webhook), both);
        assert_eq!(both, 10 + 15);
    }
}
