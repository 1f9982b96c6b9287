//! Benchmarks of the rule engine, with a peer (`evalexpr`) side by side.
//!
//! `cargo bench -p inbox-rules --bench engine`; BENCHMARKS.md records a run.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use evalexpr::{ContextWithMutableVariables, DefaultNumericTypes, HashMapContext, Value};
use inbox_rules::{RuleSet, Webhook};
use serde_json::json;

#[path = "support/data.rs"]
mod data;
use data::{event, webhook, webhook_everywhere};

const FIVE: &str = "(1 or 2 or 3) and (4 and 5)";
const FIVE_EVALEXPR: &str = "(c1 || c2 || c3) && (c4 && c5)";

fn expressions(c: &mut Criterion) {
    let ids = [1, 2, 3, 4, 5];
    let mut group = c.benchmark_group("expression");
    group.bench_function("validate 5 conditions", |b| {
        b.iter(|| inbox_rules::validate_expression(black_box(FIVE), black_box(&ids)))
    });
    let parsed = inbox_rules::parse_expression(FIVE, &ids).expect("valid");
    let truth = [false, true, false, true, true];
    group.bench_function("evaluate parsed", |b| {
        b.iter(|| black_box(&parsed).eval(&mut |id| truth[id as usize - 1]))
    });

    let mut context = HashMapContext::<DefaultNumericTypes>::new();
    for (i, value) in truth.iter().enumerate() {
        context
            .set_value(format!("c{}", i + 1), Value::Boolean(*value))
            .expect("settable");
    }
    group.bench_function("peer evalexpr: parse and evaluate", |b| {
        b.iter(|| evalexpr::eval_boolean_with_context(black_box(FIVE_EVALEXPR), &context))
    });
    let tree = evalexpr::build_operator_tree::<DefaultNumericTypes>(FIVE_EVALEXPR).expect("valid");
    group.bench_function("peer evalexpr: evaluate parsed", |b| {
        b.iter(|| black_box(&tree).eval_boolean_with_context(&context))
    });
    group.finish();
}

fn webhooks(c: &mut Criterion) {
    let mut group = c.benchmark_group("webhook");
    let hundred: Webhook = serde_json::from_value(json!({
        "id": "wh_big", "name": "Big", "url": "https://crm.example/hook", "events": ["TicketCreated"],
        "conditions": (1..=100).map(|i| json!({
            "id": i, "field": (["subject", "status", "tags", "customFields.seats"][i % 4]),
            "operator": (["contains", "gte", "has_any", "gt"][i % 4]),
            "value": ([json!(format!("w{i}")), json!("open"), json!(["vip"]), json!(i)][i % 4]),
        })).collect::<Vec<_>>(),
        "match": "expression",
        "expression": (1..=100).map(|i| i.to_string()).collect::<Vec<_>>().join(" or "),
    }))
    .expect("webhook shape");
    assert!(inbox_rules::validate_webhook(&hundred).valid);
    group.bench_function("validate 100 conditions", |b| {
        b.iter(|| inbox_rules::validate_webhook(black_box(&hundred)))
    });
    group.finish();

    let mut group = c.benchmark_group("ruleset");
    group.sample_size(20);
    let ten_thousand: Vec<Webhook> = (0..10_000).map(webhook).collect();
    group.bench_function("build 10000 webhooks", |b| {
        b.iter(|| RuleSet::from_webhooks(black_box(&ten_thousand)))
    });
    group.finish();

    let mut group = c.benchmark_group("match one event");
    let event = event();
    for (label, make) in [
        ("indexed", webhook as fn(usize) -> Webhook),
        ("all candidates", webhook_everywhere),
    ] {
        for n in [1_000, 10_000] {
            let hooks: Vec<Webhook> = (0..n).map(make).collect();
            let (rules, rejected) = RuleSet::from_webhooks(&hooks);
            assert!(rejected.is_empty(), "{:?}", rejected.first());
            group.bench_with_input(BenchmarkId::new(label, n), &rules, |b, rules| {
                b.iter(|| rules.matches(black_box(&event)).len())
            });
        }
    }
    group.finish();
}

/// What `matches` patterns cost per unit of their weight: one webhook of
/// one pattern that never matches, on a message of 4,000 characters (of
/// which `matches` scans the first 1,024); then a webhook whose patterns
/// weigh as much as validation lets them.
fn patterns(c: &mut Criterion) {
    let mut group = c.benchmark_group("pattern");
    let mut event = event();
    event.message.get_or_insert_default().body = Some("a".repeat(4_000));
    let webhook = |patterns: &[&str]| -> RuleSet {
        let conditions: Vec<_> = (1..)
            .zip(patterns)
            .map(|(id, p)| json!({"id": id, "field": "message.body", "operator": "matches", "value": p}))
            .collect();
        let webhook: Webhook = serde_json::from_value(json!({
            "id": "wh_1", "name": "Patterns", "url": "https://crm.example/hook",
            "events": ["TicketFromUserReply"], "conditions": conditions,
        }))
        .expect("webhook shape");
        let (rules, rejected) = RuleSet::from_webhooks(&[webhook]);
        assert!(rejected.is_empty(), "{:?}", rejected.first());
        rules
    };
    let limit = ["[^\\n]{0,59}1!", "[^\\n]{0,59}2!", "[^\\n]{0,59}3!"];
    let cases: [(&str, &[&str]); 6] = [
        ("refund", &["refund"]),
        ("order", &["(re|fw): order \\d+"]),
        ("alternation", &["(a|b|c|d|e|f|g|h)+z"]),
        ("bounded 100", &["[^\\n]{0,100}urgent"]),
        ("bounded 190", &["[^\\n]{0,190}!"]),
        ("three at the limit", &limit),
    ];
    for (label, patterns) in cases {
        let weight: u32 = patterns
            .iter()
            .filter_map(|p| inbox_rules::weight::pattern_weight(p))
            .sum();
        let rules = webhook(patterns);
        group.bench_with_input(
            BenchmarkId::new(label, format!("weight {weight}")),
            &rules,
            |b, rules| b.iter(|| rules.matches(black_box(&event)).len()),
        );
    }
    group.finish();
}

criterion_group!(benches, expressions, webhooks, patterns);
criterion_main!(benches);
