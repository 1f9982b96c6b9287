//! The expression validator on any text.
//!
//! Invariants: the fast path (`validate_expression`) and the full analysis
//! (`parse_expression`) agree on validity, and on the errors when invalid;
//! every span lies inside the text on UTF-16 boundaries, `start <= end`; a
//! valid expression evaluates without panicking, parsed or from its text
//! alike.
#![no_main]

use std::collections::BTreeMap;

use inbox_rules::{Report, parse_expression, validate_expression};
use libfuzzer_sys::fuzz_target;

const IDS: [u32; 5] = [1, 2, 3, 4, 5];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fast = validate_expression(text, &IDS);
    check_spans(text, &fast);
    match parse_expression(text, &IDS) {
        Ok(expr) => {
            assert!(
                fast.valid,
                "the full analysis accepts what the fast path refuses: {text:?}"
            );
            assert!(fast.errors.is_empty());
            let truth: BTreeMap<u32, bool> = IDS.iter().map(|&id| (id, id % 2 == 1)).collect();
            let value = expr.eval(&mut |id| truth[&id]);
            assert_eq!(inbox_rules::evaluate(text, &truth), Ok(value), "{text:?}");
        }
        Err(full) => {
            assert!(
                !fast.valid,
                "the fast path accepts what the full analysis refuses: {text:?}"
            );
            assert_eq!(fast.errors, full.errors, "{text:?}");
            check_spans(text, &full);
        }
    }
});

/// Spans are UTF-16 offsets into `text`, on character boundaries.
fn check_spans(text: &str, report: &Report) {
    let mut boundaries = vec![0u32];
    let mut at = 0u32;
    for c in text.chars() {
        at += c.len_utf16() as u32;
        boundaries.push(at);
    }
    for d in report.errors.iter().chain(&report.warnings) {
        if let (Some(start), Some(end)) = (d.start, d.end) {
            assert!(start <= end, "{d:?} in {text:?}");
            assert!(
                boundaries.binary_search(&start).is_ok(),
                "{d:?} starts inside a character of {text:?}"
            );
            assert!(
                boundaries.binary_search(&end).is_ok(),
                "{d:?} ends inside a character of {text:?}"
            );
        }
    }
}
