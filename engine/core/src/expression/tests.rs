//! Hand-written expectations for the expression validator: codes and spans
//! worked out by hand, independent of the fixture corpus (which the runner
//! compares byte for byte, messages included).

use super::*;

/// `(code, start, end)` of each error, in report order.
fn errors(expression: &str, ids: &[u32]) -> Vec<(&'static str, u32, u32)> {
    validate(expression, ids)
        .errors
        .iter()
        .map(|d| {
            (
                d.code.as_str(),
                d.start.unwrap_or(u32::MAX),
                d.end.unwrap_or(u32::MAX),
            )
        })
        .collect()
}

const IDS: &[u32] = &[1, 2, 3, 4, 5];

/// An expression and the `(code, start, end)` of each error it must get.
type Case = (&'static str, &'static [(&'static str, u32, u32)]);

#[test]
fn valid_expressions_have_no_errors() {
    for e in [
        "1",
        "(1 or 2 or 3) and (4 and 5)",
        "1 AND 2 Or 3 aNd 4 OR 5",
        "  1 and 2  ",
        "\t1\tand\t2\t",
        "( 1 or 2 )",
        "((((1))))",
        "1   or    2",
    ] {
        assert_eq!(errors(e, IDS), vec![], "{e:?}");
    }
}

#[test]
fn each_code_has_its_span() {
    let cases: &[Case] = &[
        ("", &[("empty_expression", 0, 0)]),
        (" \t ", &[("empty_expression", 0, 0)]),
        (
            "(1 or 2）and 3",
            &[("fullwidth_character", 7, 8), ("missing_space", 8, 11)],
        ),
        ("（1 or 2) and 3", &[("fullwidth_character", 0, 1)]),
        ("1\u{3000}or 2", &[("fullwidth_character", 1, 2)]),
        (
            "１ or ２",
            &[("fullwidth_character", 0, 1), ("fullwidth_character", 5, 6)],
        ),
        (
            "1 ＯＲ 2",
            &[("fullwidth_character", 2, 3), ("fullwidth_character", 3, 4)],
        ),
        ("1or 2", &[("missing_space", 1, 3)]),
        ("1 or2", &[("missing_space", 2, 4)]),
        ("(1 or 2)and 3", &[("missing_space", 8, 11)]),
        ("1 and(2)", &[("missing_space", 2, 5)]),
        ("(1 or 2", &[("unbalanced_parentheses", 0, 1)]),
        ("((1 or 2)", &[("unbalanced_parentheses", 0, 1)]),
        ("1 or 2)", &[("unbalanced_parentheses", 6, 7)]),
        (
            ")1(",
            &[
                ("unbalanced_parentheses", 0, 1),
                ("unbalanced_parentheses", 2, 3),
            ],
        ),
        ("1 or 6", &[("unknown_condition", 5, 6)]),
        ("0 and 1", &[("unknown_condition", 0, 1)]),
        (
            "6 or 7",
            &[("unknown_condition", 0, 1), ("unknown_condition", 5, 6)],
        ),
        (
            "99999999999999999999999 or 1",
            &[("unknown_condition", 0, 23)],
        ),
        ("1 2", &[("syntax_error", 2, 3)]),
        ("1 or", &[("syntax_error", 4, 4)]),
        ("1 or ", &[("syntax_error", 5, 5)]),
        ("or 1", &[("syntax_error", 0, 2)]),
        ("()", &[("syntax_error", 1, 2)]),
        ("1 and ()", &[("syntax_error", 7, 8)]),
        ("not 1", &[("syntax_error", 0, 3)]),
        ("1 && 2", &[("syntax_error", 2, 4)]),
        ("1 || 2", &[("syntax_error", 2, 4)]),
        ("1 xor 2", &[("syntax_error", 2, 5)]),
        ("1 andor 2", &[("syntax_error", 2, 7)]),
        (
            "1 or not 2 and x",
            &[("syntax_error", 5, 8), ("syntax_error", 15, 16)],
        ),
    ];
    for (expression, want) in cases {
        assert_eq!(errors(expression, IDS), want.to_vec(), "{expression:?}");
    }
}

#[test]
fn spans_are_utf16_code_units() {
    // 😀 is two UTF-16 units, 中 and é one each.
    assert_eq!(errors("😀 1", IDS), [("syntax_error", 0, 2)]);
    assert_eq!(
        errors("中 1 or 9", IDS),
        [("syntax_error", 0, 1), ("unknown_condition", 7, 8)]
    );
    assert_eq!(
        errors("é or 1or 2", IDS),
        [("syntax_error", 0, 1), ("missing_space", 6, 8)]
    );
    assert_eq!(
        errors("😀😀 (1 or 2", IDS),
        [("syntax_error", 0, 4), ("unbalanced_parentheses", 5, 6)]
    );
}

#[test]
fn fullwidth_comes_before_every_structural_problem() {
    let report = validate("1or 2 （", IDS);
    let codes: Vec<&str> = report.errors.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "fullwidth_character",
            "missing_space",
            "unbalanced_parentheses"
        ]
    );
    assert!(
        report.errors[0].message.contains("`(`"),
        "{}",
        report.errors[0].message
    );
}

#[test]
fn length_limit_is_checked_first_and_alone() {
    let at_limit = format!("1{}", " or 1".repeat((MAX_EXPRESSION_CHARS - 1) / 5));
    assert!(at_limit.chars().count() <= MAX_EXPRESSION_CHARS);
    assert!(validate(&at_limit, IDS).valid);

    let over = "1".repeat(MAX_EXPRESSION_CHARS + 1);
    assert_eq!(errors(&over, IDS), [("too_long", 0, 4097)]);

    // Characters, not bytes or UTF-16 units, count towards the limit.
    let emoji = "😀".repeat(MAX_EXPRESSION_CHARS);
    assert_eq!(errors(&emoji, IDS)[0].0, "syntax_error");
    let emoji = "😀".repeat(MAX_EXPRESSION_CHARS + 1);
    assert_eq!(errors(&emoji, IDS), [("too_long", 0, 8194)]);
}

#[test]
fn depth_limit_points_at_the_first_parenthesis_past_it() {
    let nested = |depth: usize| format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
    assert!(validate(&nested(MAX_EXPRESSION_DEPTH), IDS).valid);
    assert_eq!(
        errors(&nested(MAX_EXPRESSION_DEPTH + 1), IDS),
        [("too_deep", 32, 33)]
    );
}

#[test]
fn huge_inputs_answer_without_recursion() {
    let opens = "(".repeat(100_000);
    assert_eq!(errors(&opens, IDS), [("too_long", 0, 100_000)]);
    let opens = "(".repeat(MAX_EXPRESSION_CHARS);
    assert_eq!(
        errors(&opens, IDS),
        [("unbalanced_parentheses", 0, 1), ("too_deep", 32, 33)]
    );
    let chain = format!("1{}", " and 1".repeat(680));
    assert!(validate(&chain, IDS).valid);
}

#[test]
fn unused_conditions_are_warnings() {
    let report = validate("1 or 3", &[1, 2, 3, 4, 2]);
    assert!(report.valid);
    let unused: Vec<&str> = report.warnings.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        unused,
        [
            "condition 2 is not used in the expression",
            "condition 4 is not used in the expression"
        ]
    );
    assert!(
        report
            .warnings
            .iter()
            .all(|d| d.code == Code::UnusedCondition)
    );
}

#[test]
fn precedence_is_parentheses_then_and_then_or() {
    let ids = [1, 2, 3];
    let parsed = |e: &str| parse(e, &ids).expect(e);
    use Expr::{And, Condition as C, Or};
    assert_eq!(
        parsed("1 or 2 and 3"),
        Or(vec![C(1), And(vec![C(2), C(3)])])
    );
    assert_eq!(
        parsed("1 and 2 or 3"),
        Or(vec![And(vec![C(1), C(2)]), C(3)])
    );
    assert_eq!(
        parsed("(1 or 2) and 3"),
        And(vec![Or(vec![C(1), C(2)]), C(3)])
    );
    assert_eq!(parsed("1 or 2 or 3"), Or(vec![C(1), C(2), C(3)]));
    assert_eq!(parsed("((2))"), C(2));
}

#[test]
fn evaluation_stops_once_the_answer_is_known() {
    let expr = parse("1 or 2 and 3", &[1, 2, 3]).expect("valid");
    let mut asked = Vec::new();
    assert!(expr.eval(&mut |id| {
        asked.push(id);
        id == 1
    }));
    assert_eq!(asked, [1]);
}

#[test]
fn messages_speak_the_users_words() {
    for e in ["1 2", "1 or", "()", "or 1", "(1 or 2 3)"] {
        let report = validate(e, IDS);
        for d in &report.errors {
            for rule in [
                "disjunction",
                "conjunction",
                "_operand",
                "and_op",
                "or_op",
                "EOI",
            ] {
                assert!(!d.message.contains(rule), "{e:?}: {}", d.message);
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

    /// The fast path only skips work: whatever it accepts, the full
    /// diagnosis accepts with the same warnings and tree, and whatever it
    /// sends on, the diagnosis finds a problem in (else the fast path missed
    /// a valid expression, which would still be answered right, but slowly).
    #[test]
    fn fast_path_agrees_with_the_full_diagnosis(
        expression in "[ \t()0-9]{0,3}([ \t()]{0,3}(1|2|3|9|0|and|or|AND|Or|x|\\(|\\)|（)[ \t()]{0,3}){0,8}",
        ids in proptest::collection::vec(0u32..5, 0..4),
    ) {
        let (slow, slow_expr) = diagnose(&expression, &ids);
        proptest::prop_assert_eq!(&validate(&expression, &ids), &slow);
        proptest::prop_assert_eq!(&analyse(&expression, &ids).0, &slow);
        match parse_valid(&expression, &ids) {
            Some(expr) => {
                proptest::prop_assert!(slow.valid, "{expression:?}: {:?}", slow.errors);
                proptest::prop_assert_eq!(Some(expr), slow_expr);
            }
            None => proptest::prop_assert!(!slow.valid, "fast path refused valid {expression:?}"),
        }
    }
}
