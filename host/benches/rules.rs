//! The engine in wasmtime beside the same engine linked natively, in one
//! run: per-call cost, taking in events (one and a batch), and cold start.
//!
//! `cargo bench -p inbox-webhooks --bench rules`; BENCHMARKS.md records a run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use inbox_rules::RuleSet as NativeRuleSet;
use inbox_rules::api::{Op, decode, encode, run_op};
use inbox_webhooks::rules::{Budget, Runtime, Session, Taken, TenantRules};
use serde_json::Value;

#[path = "../../engine/core/benches/support/data.rs"]
mod data;

const CHECK: &str = r#"{"expression": "(1 or 2 or 3) and (4 and 5)", "ids": [1, 2, 3, 4, 5]}"#;

fn runtime() -> std::sync::Arc<Runtime> {
    Runtime::new(Budget::default(), Runtime::default_cache_dir()).expect("runtime")
}

fn per_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate 5 conditions");
    // The guest call's work: JSON text in, JSON text out.
    group.bench_function("native", |b| {
        b.iter(|| {
            let input: Value = decode("input", black_box(CHECK)).expect("json");
            run_op(Op::Check, &input).expect("answer")
        })
    });
    let mut session = Session::new(runtime());
    group.bench_function("wasmtime", |b| {
        b.iter(|| session.call(Op::Check, black_box(CHECK)).expect("answer"))
    });
    group.finish();
}

/// A native set and a guest set of the same webhooks.
fn both_sets(
    runtime: &std::sync::Arc<Runtime>,
    hooks: &[inbox_rules::Webhook],
) -> (NativeRuleSet, TenantRules) {
    let (native, rejected) = NativeRuleSet::from_webhooks(hooks);
    assert!(rejected.is_empty());
    let mut guest = TenantRules::new(runtime.clone());
    for hook in hooks {
        guest
            .insert(&serde_json::to_string(hook).expect("json"))
            .expect("valid");
    }
    (native, guest)
}

/// What the guest's `ingest` does, natively: the batch as JSON text in,
/// the intake as JSON text out.
fn native_ingest(native: &NativeRuleSet, batch: &str) -> String {
    let events: Vec<Value> = decode("events", batch).expect("events");
    encode(&native.ingest(&events))
}

fn matching(c: &mut Criterion) {
    let runtime = runtime();
    let event = data::event();
    let one = serde_json::to_string(&[&event]).expect("json");
    let mut group = c.benchmark_group("take in one event");
    for (label, make) in [
        (
            "indexed",
            data::webhook as fn(usize) -> inbox_rules::Webhook,
        ),
        ("all candidates", data::webhook_everywhere),
    ] {
        let hooks: Vec<inbox_rules::Webhook> = (0..10_000).map(make).collect();
        let (native, mut guest) = both_sets(&runtime, &hooks);
        assert_eq!(
            guest.ingest(&one, u32::MAX).expect("answer"),
            Taken::Intake(native_ingest(&native, &one))
        );
        // Each webhook that fires is explained: the cost grows with them.
        eprintln!(
            "{label}: {} of 10000 webhooks fire",
            native.matches(&event).len()
        );
        // Matching alone, on an event decoded before: the floor.
        group.bench_function(
            BenchmarkId::new(format!("{label}, native, match only"), 10_000),
            |b| b.iter(|| native.matches(black_box(&event)).len()),
        );
        group.bench_function(BenchmarkId::new(format!("{label}, native"), 10_000), |b| {
            b.iter(|| native_ingest(&native, black_box(&one)))
        });
        group.bench_function(
            BenchmarkId::new(format!("{label}, wasmtime"), 10_000),
            |b| b.iter(|| guest.ingest(black_box(&one), u32::MAX).expect("answer")),
        );
    }
    group.finish();

    // 100 events, each firing the webhooks above: thousands of deliveries,
    // each with its explanation, in one answer.
    let mut group = c.benchmark_group("take in a batch of 100 events, 10000 webhooks");
    group.sample_size(20);
    let hooks: Vec<inbox_rules::Webhook> = (0..10_000).map(data::webhook).collect();
    let (native, mut guest) = both_sets(&runtime, &hooks);
    let batch = serde_json::to_string(&vec![event; 100]).expect("json");
    group.bench_function("native", |b| {
        b.iter(|| native_ingest(&native, black_box(&batch)))
    });
    group.bench_function("wasmtime, one call", |b| {
        b.iter(|| guest.ingest(black_box(&batch), u32::MAX).expect("answer"))
    });
    group.finish();
}

fn cold_start(c: &mut Criterion) {
    // Warm the cache once, then measure what a process after the first
    // pays: engine, component (from the cache), linker, instance, answer.
    drop(runtime());
    let mut group = c.benchmark_group("cold start to first answer");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("warm cache", |b| {
        b.iter(|| {
            let mut session = Session::new(runtime());
            session.call(Op::Check, CHECK).expect("answer")
        })
    });
    group.finish();
}

criterion_group!(benches, per_call, matching, cold_start);
criterion_main!(benches);
