//! Property tests: no input panics the engine, generated valid expressions
//! are valid and evaluate like an independent reference, and the indexed
//! `RuleSet` agrees with deciding each webhook alone and with `explain`.

use std::collections::BTreeMap;

use inbox_rules::{Condition, IngestEvent, RuleSet, Webhook};
use proptest::prelude::*;
use serde_json::json;

// ------------------------------------------------------------ expressions

/// Report invariants that hold for every input.
fn check_report(expression: &str, ids: &[u32]) {
    let report = inbox_rules::validate_expression(expression, ids);
    assert_eq!(report.valid, report.errors.is_empty());
    let len = u32::try_from(expression.encode_utf16().count()).unwrap_or(u32::MAX);
    for d in report.errors.iter().chain(&report.warnings) {
        let (start, end) = (d.start.expect("spanned"), d.end.expect("spanned"));
        assert!(
            start <= end && end <= len,
            "{d:?} outside 0..{len} of {expression:?}"
        );
        assert!(!d.message.is_empty());
    }
}

/// Strings made of the pieces expressions are made of, so that the fuzzing
/// reaches deep into the validator rather than stopping at the first symbol.
fn expression_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("1".to_owned()),
        Just("2".to_owned()),
        Just("07".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("and".to_owned()),
        Just("OR".to_owned()),
        Just("not".to_owned()),
        Just("（".to_owned()),
        Just("）".to_owned()),
        Just("\u{3000}".to_owned()),
        Just("１".to_owned()),
        Just("😀".to_owned()),
        Just("&&".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings_never_panic(expression in any::<String>(), ids in prop::collection::vec(0u32..200, 0..8)) {
        check_report(&expression, &ids);
    }

    #[test]
    fn expression_like_strings_never_panic(expression in expression_like()) {
        check_report(&expression, &[1, 2, 7]);
        let _ = inbox_rules::evaluate(&expression, &BTreeMap::from([(1, true), (2, false)]));
    }
}

/// An expression tree generated independently of the parser.
#[derive(Debug, Clone)]
enum Tree {
    Leaf(u32),
    And(Vec<Tree>),
    Or(Vec<Tree>),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = (1u32..=6).prop_map(Tree::Leaf);
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Tree::And),
            prop::collection::vec(inner, 2..4).prop_map(Tree::Or),
        ]
    })
}

/// The reference: evaluates the tree directly, no parsing involved.
fn reference(tree: &Tree, truth: &BTreeMap<u32, bool>) -> bool {
    match tree {
        Tree::Leaf(id) => truth[id],
        Tree::And(items) => items.iter().all(|t| reference(t, truth)),
        Tree::Or(items) => items.iter().any(|t| reference(t, truth)),
    }
}

/// Writes the tree with only the parentheses precedence needs (plus any
/// `extra` ones), keywords in varying case and blanks of varying width, so
/// the parser's precedence is what is being tested.
fn render(tree: &Tree, style: &mut impl Iterator<Item = u8>, parent_is_and: bool) -> String {
    match tree {
        Tree::Leaf(id) => id.to_string(),
        Tree::And(items) | Tree::Or(items) => {
            let is_and = matches!(tree, Tree::And(_));
            let keyword = match (is_and, style.next().unwrap_or(0) % 4) {
                (true, 0) => "and",
                (true, 1) => "AND",
                (true, 2) => "And",
                (true, _) => "aNd",
                (false, 0) => "or",
                (false, 1) => "OR",
                (false, 2) => "Or",
                (false, _) => "oR",
            };
            let blank = [" ", "  ", "\t", " \t "][usize::from(style.next().unwrap_or(0) % 4)];
            let parts: Vec<String> = items.iter().map(|t| render(t, style, is_and)).collect();
            let joined = parts.join(&format!("{blank}{keyword}{blank}"));
            let needs = !is_and && parent_is_and;
            let extra = style.next().unwrap_or(0).is_multiple_of(5);
            if needs || extra {
                format!("({joined})")
            } else {
                joined
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn generated_expressions_are_valid_and_evaluate_like_the_reference(
        tree in tree(),
        style in prop::collection::vec(any::<u8>(), 64),
        bits in 0u8..64,
    ) {
        let text = render(&tree, &mut style.into_iter().cycle(), false);
        let truth: BTreeMap<u32, bool> = (1..=6).map(|id| (id, bits & (1 << (id - 1)) != 0)).collect();
        let ids: Vec<u32> = truth.keys().copied().collect();
        let report = inbox_rules::validate_expression(&text, &ids);
        prop_assert!(report.valid, "{text:?}: {:?}", report.errors);
        prop_assert_eq!(inbox_rules::evaluate(&text, &truth), Ok(reference(&tree, &truth)), "{}", text);
    }
}

// ------------------------------------------------------------ webhooks

/// Mostly valid conditions over every field, some of them junk.
fn condition() -> impl Strategy<Value = Condition> {
    let valid = prop::sample::select(vec![
        ("channel", "in", json!(["email", "chat"])),
        ("accountId", "is_not", json!("a@acme.example")),
        ("teamId", "is_empty", json!(null)),
        ("assigneeId", "changed", json!(null)),
        ("status", "gte", json!("open")),
        ("status", "changed_to", json!("open")),
        ("priority", "not_in", json!(["low"])),
        ("subject", "contains", json!("refund")),
        ("subject", "matches", json!("^re.*d$")),
        ("message.body", "starts_with", json!("REFUND")),
        ("message.from", "is_not_empty", json!(null)),
        ("requester.email", "ends_with", json!("@acme.example")),
        ("requester.name", "is", json!("ann")),
        ("status", "is", json!("solved")),
        ("priority", "in", json!(["low", "urgent"])),
        ("tags", "has_any", json!(["vip", "email"])),
        ("tags", "has_none", json!(["spam"])),
        ("customFields.seats", "gt", json!(10)),
        ("customFields.plan", "is", json!("PRO")),
    ]);
    let junk = (
        prop::sample::select(vec!["status", "subject", "tags", "nope"]),
        prop::sample::select(vec!["is", "gt", "has_all", "matches", "bogus"]),
        prop::sample::select(vec![
            json!(null),
            json!("("),
            json!([]),
            json!(40),
            json!("weird"),
        ]),
    );
    prop_oneof![
        4 => valid.prop_map(|(f, o, v)| (f, o, v)),
        1 => junk,
    ]
    .prop_map(|(field, operator, value)| Condition {
        id: 0,
        field: field.to_owned(),
        operator: operator.to_owned(),
        value,
    })
}

fn webhook(index: usize) -> impl Strategy<Value = Webhook> {
    let events = prop_oneof![
        9 => prop::sample::subsequence(
            vec!["TicketCreated", "TicketFromUserReply", "TicketStatusChanged"],
            1..=3,
        ),
        1 => Just(vec!["Nope"]),
    ];
    let channels = prop::sample::subsequence(vec!["email", "chat", "whatsapp"], 0..=2);
    let accounts = prop::sample::subsequence(vec!["a@acme.example", "b@acme.example"], 0..=1);
    let mode = prop::sample::select(vec!["all", "any", "expression"]);
    let joins = prop::collection::vec(prop::sample::select(vec![" and ", " OR ", "\tor "]), 4);
    (
        prop::bool::weighted(0.2),
        events,
        channels,
        accounts,
        prop::collection::vec(condition(), 0..5),
        mode,
        joins,
        any::<bool>(),
    )
        .prop_map(
            move |(disabled, events, channels, accounts, conditions, mode, joins, group)| {
                let mut conditions = conditions;
                let mut expression = String::new();
                for (i, c) in conditions.iter_mut().enumerate() {
                    c.id = i64::try_from(i).unwrap_or(0) + 1;
                    if i > 0 {
                        expression.push_str(joins[i - 1]);
                    }
                    expression.push_str(&c.id.to_string());
                }
                // Group the first two operands, so that precedence matters.
                if group && conditions.len() > 2 {
                    let cut = expression.find(joins[1]).unwrap_or(expression.len());
                    expression = format!("({}){}", &expression[..cut], &expression[cut..]);
                }
                Webhook {
                    id: format!("wh_{index}"),
                    name: "generated".to_owned(),
                    enabled: !disabled,
                    url: "https://crm.example/hook".to_owned(),
                    events: events.into_iter().map(str::to_owned).collect(),
                    channels: channels.into_iter().map(str::to_owned).collect(),
                    accounts: accounts.into_iter().map(str::to_owned).collect(),
                    conditions,
                    match_mode: mode.to_owned(),
                    expression: Some(expression),
                    rate_limit: None,
                }
            },
        )
}

fn event() -> impl Strategy<Value = IngestEvent> {
    let kind = prop::sample::select(vec![
        "TicketCreated",
        "TicketFromUserReply",
        "TicketStatusChanged",
        "Other",
    ]);
    let channel = prop::sample::select(vec![None, Some("email"), Some("chat"), Some("sms")]);
    let account = prop::sample::select(vec![None, Some("a@acme.example"), Some("c@acme.example")]);
    let status = prop::sample::select(vec![None, Some("open"), Some("solved"), Some("weird")]);
    let subject =
        prop::sample::select(vec![None, Some("Refund"), Some("REFUND pending"), Some("")]);
    (kind, channel, account, status, subject, any::<bool>()).prop_map(
        |(kind, channel, account, status, subject, rich)| {
            let mut value = json!({
                "event": kind, "ticketId": "t",
                "ticket": {"channel": channel, "accountId": account, "status": status, "subject": subject},
            });
            if rich {
                value["ticket"]["tags"] = json!(["VIP"]);
                value["ticket"]["customFields"] = json!({"seats": 40, "plan": "pro"});
                value["changes"] = json!({"status": {"from": "new", "to": "open"}});
                value["message"] = json!({"body": "refund please"});
            }
            serde_json::from_value(value).expect("event shape")
        },
    )
}

fn webhooks() -> impl Strategy<Value = Vec<Webhook>> {
    (0usize..12).prop_flat_map(|n| (0..n).map(webhook).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn the_rule_set_agrees_with_each_webhook_alone(hooks in webhooks(), events in prop::collection::vec(event(), 1..6)) {
        let (rules, rejected) = RuleSet::from_webhooks(&hooks);
        prop_assert_eq!(rules.len() + rejected.len(), hooks.len());
        // Cases with no valid webhook test nothing here; proptest fails the
        // run if the generator makes too many of them.
        prop_assume!(!rules.is_empty());
        for event in &events {
            let matched = rules.matches(event);
            // In id order as text (`wh_10` before `wh_2`), each id once.
            prop_assert!(matched.windows(2).all(|w| w[0] < w[1]), "{:?}", matched);
            // Taking the event in as the server does gives the same matches,
            // each explained as `explain` explains it; an event it refuses
            // matches nothing.
            let mut sent = serde_json::to_value(event).expect("json");
            sent["ticketId"] = json!("ebcb7b53-6636-4c6b-8023-4a61d6df694c");
            sent["messageId"] = json!("0b7a3c1e-54f2-4d8e-9c71-2a6f0e9d4b35");
            let intake = rules.ingest(&[sent]);
            prop_assert_eq!(intake.valid, event.event != "Other");
            if intake.valid {
                let fired: Vec<&str> = intake.matched[0].iter().map(|f| f.webhook_id.as_str()).collect();
                prop_assert_eq!(&fired, &matched);
            } else {
                prop_assert!(intake.matched.is_empty());
            }
            for f in intake.matched.iter().flatten() {
                let mut alone = event.clone();
                alone.ticket_id = "ebcb7b53-6636-4c6b-8023-4a61d6df694c".to_owned();
                alone.message_id = Some("0b7a3c1e-54f2-4d8e-9c71-2a6f0e9d4b35".to_owned());
                let explained = rules.explain(&f.webhook_id, &alone);
                prop_assert_eq!(Some(&f.explanation), explained.as_ref());
            }
            for hook in &hooks {
                let valid = inbox_rules::validate_webhook(hook).valid;
                let alone = inbox_rules::matches(hook, event);
                let explained = inbox_rules::explain(hook, event);
                prop_assert_eq!(alone.is_ok(), valid);
                if let (Ok(fires), Ok(explanation)) = (alone, explained) {
                    prop_assert_eq!(fires, explanation.fires);
                    // The match mode, worked out here from what each
                    // condition decided: `evaluate` is held to a reference
                    // of its own above.
                    let truth: BTreeMap<u32, bool> =
                        explanation.conditions.iter().map(|c| (c.id, c.holds)).collect();
                    let combined = match hook.match_mode.as_str() {
                        _ if truth.is_empty() => true,
                        "any" => truth.values().any(|h| *h),
                        "expression" => inbox_rules::evaluate(
                            hook.expression.as_deref().unwrap_or_default(),
                            &truth,
                        )
                        .expect("a valid webhook's expression"),
                        _ => truth.values().all(|h| *h),
                    };
                    prop_assert_eq!(explanation.match_outcome.result, combined, "{:?}", hook);
                    prop_assert_eq!(fires, matched.contains(&hook.id.as_str()), "{:?}", hook);
                    prop_assert_eq!(Some(explanation), rules.explain(&hook.id, event));
                }
            }
        }
        // Removing some webhooks and adding them back changes what fires,
        // then restores it: the order the answers come in follows changes.
        let mut rules = rules;
        let before: Vec<Vec<String>> = events.iter().map(|e| owned(&rules.matches(e))).collect();
        let removed: Vec<&Webhook> = hooks.iter().step_by(2).collect();
        for hook in &removed {
            rules.remove(&hook.id);
        }
        for (event, all) in events.iter().zip(&before) {
            let kept: Vec<String> = all
                .iter()
                .filter(|id| !removed.iter().any(|h| h.id == **id))
                .cloned()
                .collect();
            prop_assert_eq!(owned(&rules.matches(event)), kept);
        }
        for hook in removed.iter().rev() {
            let _ = rules.insert(hook);
        }
        for (event, all) in events.iter().zip(&before) {
            prop_assert_eq!(&owned(&rules.matches(event)), all);
        }
        // Removing every webhook leaves nothing that fires.
        for hook in &hooks {
            rules.remove(&hook.id);
        }
        prop_assert!(rules.is_empty());
        for event in &events {
            prop_assert!(rules.matches(event).is_empty());
        }
    }
}

fn owned(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}
