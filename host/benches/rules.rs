//! The engine in wasmtime beside the same engine linked natively, in one
//! run: per-call cost, matching, batches, and cold start.
//!
//! `cargo bench -p inbox-webhooks --bench rules`; BENCHMARKS.md records a run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use inbox_rules::RuleSet as NativeRuleSet;
use inbox_webhooks::rules::{Limits, RuleSet, Runtime, Session};

#[path = "../../engine/core/benches/support/data.rs"]
mod data;

const FIVE: &str = "(1 or 2 or 3) and (4 and 5)";

fn runtime() -> std::sync::Arc<Runtime> {
    Runtime::new(Limits::default(), Runtime::default_cache_dir()).expect("runtime")
}

fn per_call(c: &mut Criterion) {
    let ids = [1, 2, 3, 4, 5];
    let mut group = c.benchmark_group("validate 5 conditions");
    group.bench_function("native", |b| {
        b.iter(|| inbox_rules::validate_expression(black_box(FIVE), &ids))
    });
    let mut session = Session::new(runtime());
    group.bench_function("wasmtime", |b| {
        b.iter(|| {
            session
                .validate_expression(black_box(FIVE), &ids)
                .expect("answer")
        })
    });
    group.finish();
}

fn matching(c: &mut Criterion) {
    let runtime = runtime();
    let event = data::event();
    let event_json = serde_json::to_string(&event).expect("json");
    let mut group = c.benchmark_group("match one event");
    for (label, make) in [
        (
            "indexed",
            data::webhook as fn(usize) -> inbox_rules::Webhook,
        ),
        ("all candidates", data::webhook_everywhere),
    ] {
        let hooks: Vec<inbox_rules::Webhook> = (0..10_000).map(make).collect();
        let (native, rejected) = NativeRuleSet::from_webhooks(&hooks);
        assert!(rejected.is_empty());
        let mut guest = RuleSet::new(runtime.clone());
        for hook in &hooks {
            guest
                .insert(&serde_json::to_string(hook).expect("json"))
                .expect("valid");
        }
        assert_eq!(
            guest.matches(&event_json).expect("answer"),
            native.matches(&event)
        );
        group.bench_function(BenchmarkId::new(format!("{label}, native"), 10_000), |b| {
            b.iter(|| native.matches(black_box(&event)).len())
        });
        // The same work as the guest call: the event as JSON text in, the
        // ids of the webhooks that fire out as owned strings.
        group.bench_function(
            BenchmarkId::new(format!("{label}, native from JSON text"), 10_000),
            |b| {
                b.iter(|| {
                    let event: inbox_rules::IngestEvent =
                        inbox_rules::api::decode("event", black_box(&event_json)).expect("event");
                    let ids: Vec<String> = native
                        .matches(&event)
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    ids.len()
                })
            },
        );
        group.bench_function(
            BenchmarkId::new(format!("{label}, wasmtime"), 10_000),
            |b| b.iter(|| guest.matches(black_box(&event_json)).expect("answer").len()),
        );
        // Like the native row: the event decoded before, in the guest.
        let decoded = guest.decode(&event_json).expect("event");
        group.bench_function(
            BenchmarkId::new(format!("{label}, wasmtime, event decoded before"), 10_000),
            |b| {
                b.iter(|| {
                    guest
                        .match_decoded(black_box(&decoded))
                        .expect("answer")
                        .len()
                })
            },
        );
        guest.forget(decoded);
    }
    group.finish();

    let mut group = c.benchmark_group("match a batch of 1000 events, 10000 webhooks");
    group.sample_size(20);
    let hooks: Vec<inbox_rules::Webhook> = (0..10_000).map(data::webhook).collect();
    let (native, _) = NativeRuleSet::from_webhooks(&hooks);
    let mut guest = RuleSet::new(runtime.clone());
    for hook in &hooks {
        guest
            .insert(&serde_json::to_string(hook).expect("json"))
            .expect("valid");
    }
    let events = vec![event; 1_000];
    let batch = serde_json::to_string(&events).expect("json");
    group.bench_function("native", |b| {
        b.iter(|| native.match_batch(black_box(&events)).len())
    });
    // The guest call's work: the batch as JSON text in, owned ids out.
    group.bench_function("native from JSON text", |b| {
        b.iter(|| {
            let events: Vec<inbox_rules::IngestEvent> =
                inbox_rules::api::decode("events", black_box(&batch)).expect("events");
            let ids: Vec<Vec<String>> = native
                .match_batch(&events)
                .into_iter()
                .map(|ids| ids.into_iter().map(str::to_owned).collect())
                .collect();
            ids.len()
        })
    });
    group.bench_function("wasmtime, one call", |b| {
        b.iter(|| guest.match_batch(black_box(&batch)).expect("answer").len())
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
            session
                .validate_expression(FIVE, &[1, 2, 3, 4, 5])
                .expect("answer")
        })
    });
    group.finish();
}

criterion_group!(benches, per_call, matching, cold_start);
criterion_main!(benches);
