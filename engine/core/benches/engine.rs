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

criterion_group!(benches, expressions, webhooks);
criterion_main!(benches);
