//! Text helpers for expressions: full-width characters and UTF-16 spans.

/// The half-width twin of a full-width character the contract names: `（`,
/// `）`, the ideographic space U+3000, full-width digits and Latin letters.
pub(super) fn halfwidth(c: char) -> Option<char> {
    match c {
        '\u{3000}' => Some(' '),
        '（' => Some('('),
        '）' => Some(')'),
        '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => {
            // The full-width forms block mirrors ASCII at a fixed offset.
            char::from_u32(u32::from(c) - 0xFEE0)
        }
        _ => None,
    }
}

/// Maps byte offsets of a string to UTF-16 code unit offsets, the indices a
/// JavaScript string uses, in O(1) each.
#[derive(Debug)]
pub(super) struct Utf16Index {
    /// `units[b]` is the UTF-16 offset of byte `b`, for every char boundary
    /// `b` and for the end of the string.
    units: Vec<u32>,
}

impl Utf16Index {
    pub(super) fn new(s: &str) -> Self {
        let mut units = vec![0; s.len() + 1];
        let mut at = 0u32;
        for (b, c) in s.char_indices() {
            units[b] = at;
            at += u32::try_from(c.len_utf16()).unwrap_or(2);
        }
        units[s.len()] = at;
        Self { units }
    }

    /// The UTF-16 span of the byte span `start..end`.
    pub(super) fn span(&self, start: usize, end: usize) -> (u32, u32) {
        let at = |b: usize| self.units.get(b).copied().unwrap_or(0);
        (at(start), at(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halfwidth_covers_the_named_characters_and_nothing_else() {
        assert_eq!(halfwidth('（'), Some('('));
        assert_eq!(halfwidth('）'), Some(')'));
        assert_eq!(halfwidth('\u{3000}'), Some(' '));
        assert_eq!(halfwidth('０'), Some('0'));
        assert_eq!(halfwidth('９'), Some('9'));
        assert_eq!(halfwidth('Ａ'), Some('A'));
        assert_eq!(halfwidth('ｚ'), Some('z'));
        assert_eq!(halfwidth('＆'), None);
        assert_eq!(halfwidth('('), None);
        assert_eq!(halfwidth('或'), None);
    }

    #[test]
    fn utf16_spans_count_surrogate_pairs_as_two() {
        let s = "😀é1";
        let index = Utf16Index::new(s);
        assert_eq!(index.span(0, 4), (0, 2));
        assert_eq!(index.span(4, 6), (2, 3));
        assert_eq!(index.span(6, 7), (3, 4));
    }
}
