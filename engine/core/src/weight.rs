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
/// included. For text that does not compile the figure means nothing, but
/// it is still a number: this never fails.
pub fn pattern_weight(pattern: &str) -> u32 {
    let chars: Vec<char> = pattern.chars().collect();
    // One frame per open group: the weight of its finished part, and of
    // its last item, which a quantifier may still repeat.
    let mut frames = vec![Frame::default()];
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        let top = frames.len() - 1;
        match c {
            '\\' => {
                i = after_escape(&chars, i);
                frames[top].push(1);
            }
            '[' => {
                i = after_class(&chars, i);
                frames[top].push(1);
            }
            '(' => match group_start(&chars, i) {
                GroupStart::Flags(next) => i = next,
                GroupStart::Group(next) => {
                    i = next;
                    frames.push(Frame::default());
                }
            },
            ')' if frames.len() > 1 => {
                let inner: u32 = frames.pop().as_ref().map_or(0, Frame::total);
                frames[top - 1].push(inner.saturating_add(1));
            }
            '|' => {
                let frame = &mut frames[top];
                frame.done = frame.total().saturating_add(1);
                frame.last = 0;
            }
            '*' | '+' | '?' => {
                frames[top].last = frames[top].last.saturating_add(1);
                i = after_lazy(&chars, i);
            }
            '{' => match counted(&chars, i) {
                Some((times, next)) => {
                    let frame = &mut frames[top];
                    frame.last = frame.last.saturating_mul(times.max(1)).saturating_add(1);
                    i = after_lazy(&chars, next);
                }
                None => frames[top].push(1),
            },
            _ => frames[top].push(1),
        }
    }
    let states = frames
        .into_iter()
        .rev()
        .fold(0u32, |inner, frame| frame.total().saturating_add(inner));
    states.saturating_add(SCAN_WEIGHT)
}

#[derive(Debug, Default)]
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

/// Reads what follows a `(` at `i`.
fn group_start(chars: &[char], i: usize) -> GroupStart {
    if chars.get(i) != Some(&'?') {
        return GroupStart::Group(i);
    }
    let mut j = i + 1;
    if chars.get(j) == Some(&'P') && chars.get(j + 1) == Some(&'<') {
        j += 1;
    }
    if chars.get(j) == Some(&'<') {
        let close = chars[j..].iter().position(|&c| c == '>');
        return GroupStart::Group(close.map_or(chars.len(), |k| j + k + 1));
    }
    while chars
        .get(j)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == '-')
    {
        j += 1;
    }
    match chars.get(j) {
        Some(')') => GroupStart::Flags(j + 1),
        Some(':') => GroupStart::Group(j + 1),
        _ => GroupStart::Group(j),
    }
}

/// The index after the escape whose `\` is just before `i`.
fn after_escape(chars: &[char], i: usize) -> usize {
    let Some(&c) = chars.get(i) else { return i };
    let i = i + 1;
    let braced = |i: usize| {
        chars[i..]
            .iter()
            .position(|&c| c == '}')
            .map_or(chars.len(), |k| i + k + 1)
    };
    match c {
        'x' | 'u' | 'U' | 'p' | 'P' if chars.get(i) == Some(&'{') => braced(i),
        'b' if chars.get(i) == Some(&'{')
            && chars.get(i + 1).is_some_and(char::is_ascii_lowercase) =>
        {
            braced(i)
        }
        'x' => (i + 2).min(chars.len()),
        'u' => (i + 4).min(chars.len()),
        'U' => (i + 8).min(chars.len()),
        'p' | 'P' => (i + 1).min(chars.len()),
        _ => i,
    }
}

/// The index after the class whose `[` is just before `i`; classes nest.
fn after_class(chars: &[char], mut i: usize) -> usize {
    let mut depth = 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    // A `]` first in a class is a literal.
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '\\' => i = after_escape(chars, i),
            '[' => {
                depth += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
            }
            ']' => {
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

/// `{n}`, `{n,}` or `{n,m}` whose `{` is just before `i`: the most times it
/// repeats (`n + 1` for `{n,}`) and the index after the `}`.
fn counted(chars: &[char], i: usize) -> Option<(u32, usize)> {
    let close = i + chars[i..].iter().position(|&c| c == '}')?;
    let inside: String = chars[i..close].iter().collect();
    let (low, high) = match inside.split_once(',') {
        None => (inside.as_str(), Some(inside.as_str())),
        Some((low, high)) => (low, Some(high).filter(|h| !h.trim().is_empty())),
    };
    let number = |s: &str| s.trim().parse::<u32>().ok();
    let low = number(low)?;
    let times = match high {
        Some(high) => number(high)?.max(low),
        None => low.saturating_add(1),
    };
    Some((times, close + 1))
}

/// Skips the `?` that makes a quantifier lazy.
fn after_lazy(chars: &[char], i: usize) -> usize {
    if chars.get(i) == Some(&'?') { i + 1 } else { i }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(pattern: &str) -> u32 {
        pattern_weight(pattern) - SCAN_WEIGHT
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
        assert_eq!(pattern_weight("(((a{4000000000}){4000000000}))"), u32::MAX);
    }

    #[test]
    fn any_text_has_a_weight() {
        for text in [
            "", "(", ")", "\\", "[", "{", "a{", "a{1,", "(?", "(?P<", "\\x{", "[[", "a{x}",
        ] {
            assert!(pattern_weight(text) >= SCAN_WEIGHT, "{text}");
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
}
