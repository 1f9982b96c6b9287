//! The engine in wasmtime against the engine linked natively: the whole
//! fixture corpus, a property test, the guest's rule set, and the budgets
//! that bound every call (with inputs that really exhaust them) followed by
//! recovery.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use inbox_rules::api::encode;
use inbox_webhooks::rules::{Budget, Error, InsertError, Op, Runtime, Session, Taken, TenantRules};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::corpus;

/// One runtime for the whole test binary: compiling the guest is the slow
/// part, and budgets are per session anyway.
fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Runtime::new(Budget::default(), Runtime::default_cache_dir()).expect("runtime")
        })
        .clone()
}

fn native(op: Op, input: &Value) -> String {
    inbox_rules::api::run_op(op, input).expect("valid operation")
}

const TICKET: &str = "ebcb7b53-6636-4c6b-8023-4a61d6df694c";

#[test]
fn every_corpus_case_answers_byte_for_byte_in_wasmtime() {
    let mut session = Session::new(runtime());
    let cases = corpus();
    assert!(cases.len() >= 350);
    for case in &cases {
        let op: Op = case.op.parse().expect("a known operation");
        let wasm = session.call(op, &case.input.to_string()).expect("answer");
        assert_eq!(wasm, encode(&case.expect), "{}", case.name);
        assert_eq!(wasm, native(op, &case.input), "{}", case.name);
    }
}

#[test]
fn malformed_arguments_are_errors_not_traps() {
    let mut session = Session::new(runtime());
    let error = session
        .call(Op::Validate, "{\"name\": 5")
        .expect_err("malformed");
    assert!(
        matches!(error, Error::Input(ref m) if m.starts_with("invalid input:")),
        "{error}"
    );
    let error = session
        .call(Op::Validate, r#"{"name": 5}"#)
        .expect_err("not a webhook");
    assert!(
        error
            .to_string()
            .starts_with("invalid input for `validate`"),
        "{error}"
    );
    // The instance is still the same healthy one.
    assert!(
        session
            .call(Op::Check, r#"{"expression": "1", "ids": [1]}"#)
            .is_ok()
    );
}

/// The guest's rule set takes in the corpus's events as the corpus's
/// `ingest` cases record (the same answer `call` gives), and its matches
/// are those of the `match` cases.
#[test]
fn the_guest_rule_set_takes_in_events_as_the_corpus_says() {
    let cases = corpus();
    let with_set = |webhooks: &Value| {
        let mut rules = TenantRules::new(runtime());
        for webhook in webhooks.as_array().expect("webhooks") {
            match rules.insert(&webhook.to_string()) {
                Ok(_) | Err(InsertError::Invalid(_)) => {}
                Err(other) => panic!("{other}"),
            }
        }
        rules
    };
    let ingest = cases.iter().filter(|c| c.op == "ingest");
    assert!(ingest.clone().count() >= 5);
    for case in ingest {
        let mut rules = with_set(&case.input["webhooks"]);
        let taken = intake(&mut rules, &case.input["events"].to_string()).expect("answer");
        assert_eq!(taken, encode(&case.expect), "{}", case.name);
    }
    for case in cases.iter().filter(|c| c.op == "match") {
        let mut rules = with_set(&case.input["webhooks"]);
        let mut event = case.input["event"].clone();
        event["ticketId"] = json!(TICKET);
        let intake: Value =
            serde_json::from_str(&intake(&mut rules, &json!([event]).to_string()).expect("answer"))
                .expect("json");
        // Events the corpus matches but ingest refuses (an unknown type)
        // match nothing there either.
        if intake["valid"] == true {
            assert_eq!(fired(&intake)[0], case.expect["matched"], "{}", case.name);
        } else {
            assert_eq!(case.expect["matched"], json!([]), "{}", case.name);
        }
    }
}

/// The ids of the webhooks each event of an intake fires.
fn fired(intake: &Value) -> Vec<Value> {
    let matched = intake["matched"].as_array().expect("matched");
    matched
        .iter()
        .map(|fired| {
            let fired = fired.as_array().expect("a list per event");
            Value::Array(fired.iter().map(|m| m["webhookId"].clone()).collect())
        })
        .collect()
}

/// What the guest set's ingest answers for these events: the ids each one
/// fires.
fn take_in(rules: &mut TenantRules, events: &[Value]) -> Result<Vec<Value>, Error> {
    let intake = intake(rules, &Value::Array(events.to_vec()).to_string())?;
    Ok(fired(&serde_json::from_str(&intake).expect("json")))
}

/// The guest set's intake of `events` (JSON text), with no bound on what
/// they fire.
fn intake(rules: &mut TenantRules, events: &str) -> Result<String, Error> {
    match rules.ingest(events, u32::MAX)? {
        Taken::Intake(intake) => Ok(intake),
        Taken::TooMany(fired) => panic!("no bound, yet {fired} too many"),
    }
}

fn channel_event(channel: &str) -> Value {
    json!({"event": "TicketCreated", "ticketId": TICKET, "ticket": {"channel": channel}})
}

#[test]
fn the_guest_rule_set_inserts_replaces_and_removes() {
    let mut rules = TenantRules::new(runtime());
    let hook = |id: &str, channels: Value| {
        json!({"id": id, "name": id, "url": "https://crm.example/h", "events": ["TicketCreated"],
               "channels": channels})
        .to_string()
    };
    let email = [channel_event("email")];
    rules
        .insert(&hook("wh_1", json!(["email"])))
        .expect("valid");
    rules.insert(&hook("wh_2", json!([]))).expect("valid");
    assert_eq!(
        take_in(&mut rules, &email).expect("answer"),
        [json!(["wh_1", "wh_2"])]
    );
    rules.insert(&hook("wh_1", json!(["chat"]))).expect("valid");
    assert_eq!(rules.len(), 2);
    assert_eq!(
        take_in(&mut rules, &email).expect("answer"),
        [json!(["wh_2"])]
    );
    assert!(rules.remove("wh_2"));
    assert!(!rules.remove("wh_2"));
    assert_eq!(take_in(&mut rules, &email).expect("answer"), [json!([])]);

    match rules.insert(&hook("wh_3", json!([""]))) {
        Err(InsertError::Invalid(report)) => {
            assert!(report.contains("\"path\":\"channels[0]\""), "{report}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        rules.insert("not json"),
        Err(InsertError::Engine(Error::Input(_)))
    ));
    match intake(&mut rules, "{") {
        Err(Error::Input(message)) => assert!(message.starts_with("invalid events:"), "{message}"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

/// Through inserts, replacements, removals and an instance rebuilt after a
/// failed call, the guest's set keeps answering what a native set with the
/// same changes answers, in id order (`wh_10` before `wh_2`).
#[test]
fn the_guest_rule_set_follows_changes_like_a_native_one() {
    let budget = Budget {
        memory_bytes: 16 << 20,
        ..Budget::default()
    };
    let mut guest = TenantRules::with_budget(runtime(), budget);
    let mut native = inbox_rules::RuleSet::new();
    let hook = |i: usize, channel: &str| {
        json!({"id": format!("wh_{i}"), "name": "n", "url": "https://crm.example/h",
               "events": ["TicketCreated"], "channels": [channel]})
    };
    let events: Vec<Value> = ["email", "chat", "sms"]
        .into_iter()
        .map(channel_event)
        .collect();
    let insert = |guest: &mut TenantRules, native: &mut inbox_rules::RuleSet, hook: Value| {
        guest.insert(&hook.to_string()).expect("valid");
        let webhook: inbox_rules::Webhook = serde_json::from_value(hook).expect("shape");
        native.insert(&webhook).expect("valid");
    };
    let agree = |guest: &mut TenantRules, native: &inbox_rules::RuleSet, step: &str| {
        assert_eq!(
            encode(&native.ingest(&events)),
            intake(guest, &Value::Array(events.clone()).to_string()).expect("answer"),
            "{step}"
        );
    };

    for i in (0..24).rev() {
        let channel = ["email", "chat"][i % 2];
        insert(&mut guest, &mut native, hook(i, channel));
    }
    agree(&mut guest, &native, "inserted");
    for i in (0..24).step_by(3) {
        assert!(guest.remove(&format!("wh_{i}")));
        native.remove(&format!("wh_{i}"));
    }
    agree(&mut guest, &native, "removed");
    for i in [1, 4, 30, 31, 7] {
        insert(&mut guest, &mut native, hook(i, "sms"));
    }
    agree(&mut guest, &native, "replaced and reused");

    // A batch too large to copy into the guest's 16 MiB fails the call and
    // drops the instance; the next call rebuilds the set.
    let huge = json!([{"event": "TicketCreated", "ticketId": "x".repeat(32 << 20)}]);
    let error = intake(&mut guest, &huge.to_string()).expect_err("too large");
    assert!(matches!(error, Error::OutOfMemory(_)), "{error}");
    agree(&mut guest, &native, "rebuilt");
    assert!(guest.remove("wh_31"));
    native.remove("wh_31");
    insert(&mut guest, &mut native, hook(40, "email"));
    agree(&mut guest, &native, "changed after the rebuild");
}

/// Webhooks that every event below reaches, so matching does real work.
fn busy_rule_set(budget: Budget, count: usize) -> TenantRules {
    let mut rules = TenantRules::with_budget(runtime(), budget);
    for i in 0..count {
        let webhook = json!({
            "id": format!("wh_{i}"), "name": "busy", "url": "https://crm.example/h",
            "events": ["TicketCreated"], "match": "all",
            "conditions": [
                {"id": 1, "field": "subject", "operator": "matches", "value": format!("(re|un)fund.*{i}")},
                {"id": 2, "field": "tags", "operator": "has_all", "value": ["vip", format!("t{i}")]},
            ],
        });
        rules.insert(&webhook.to_string()).expect("valid");
    }
    rules
}

fn subject_event(subject: &str) -> Value {
    json!({"event": "TicketCreated", "ticketId": TICKET, "ticket": {"subject": subject, "tags": ["vip", "t7"]}})
}

#[test]
fn a_call_past_its_deadline_is_interrupted_and_the_set_recovers() {
    let budget = Budget {
        deadline: Duration::from_millis(50),
        ..Budget::default()
    };
    let mut rules = busy_rule_set(budget, 500);
    let event = [subject_event("Refund for order 7")];
    assert_eq!(
        take_in(&mut rules, &event).expect("answer"),
        [json!(["wh_7"])]
    );

    // 20,000 events against 500 regex conditions: far past 50 ms.
    let batch = vec![event[0].clone(); 20_000];
    let error = take_in(&mut rules, &batch).expect_err("interrupted");
    assert!(matches!(error, Error::Timeout(_)), "{error}");

    // The next call gets a fresh instance with every webhook back in it.
    assert_eq!(
        take_in(&mut rules, &event).expect("answer"),
        [json!(["wh_7"])]
    );
    assert_eq!(rules.len(), 500);

    // A removal while no instance lives is kept for the rebuild.
    let error = take_in(&mut rules, &batch).expect_err("interrupted again");
    assert!(matches!(error, Error::Timeout(_)), "{error}");
    assert!(rules.remove("wh_7"));
    assert_eq!(take_in(&mut rules, &event).expect("answer"), [json!([])]);
    assert_eq!(rules.len(), 499);
}

#[test]
fn a_call_past_its_memory_limit_fails_and_the_session_recovers() {
    let budget = Budget {
        memory_bytes: 16 << 20,
        ..Budget::default()
    };
    let mut session = Session::with_budget(runtime(), budget);
    let check = |expression: &str| json!({"expression": expression, "ids": [1, 2]}).to_string();
    assert!(session.call(Op::Check, &check("1 or 2")).is_ok());

    // A 32 MiB webhook name cannot even be copied into 16 MiB.
    let huge = json!({"name": "x".repeat(32 << 20), "url": "https://crm.example/h", "events": ["TicketCreated"]});
    let error = session
        .call(Op::Validate, &huge.to_string())
        .expect_err("out of memory");
    assert!(matches!(error, Error::OutOfMemory(_)), "{error}");

    let report = session
        .call(Op::Check, &check("1 or 3"))
        .expect("fresh instance answers");
    assert!(report.contains("unknown_condition"), "{report}");
}

/// A one-shot call that grows the instance (a large input) leaves a fresh,
/// small instance for the next call: memory is not held after it.
#[test]
fn a_session_gives_back_an_instance_a_large_input_grew() {
    let mut session = Session::new(runtime());
    let small = json!({"expression": "1 or 2", "ids": [1, 2]}).to_string();
    session.call(Op::Check, &small).expect("answered");
    let small_memory = session.memory();
    assert!(
        small_memory > 0 && small_memory < 16 << 20,
        "{small_memory}"
    );

    // A 40 MB name: copied in, read, and reported on.
    let large = json!({"name": "x".repeat(40 << 20), "url": "https://crm.example/h", "events": ["TicketCreated"]});
    let report = session
        .call(Op::Validate, &large.to_string())
        .expect("answered");
    assert!(
        report.contains("\"path\":\"name\""),
        "{}",
        &report[..200.min(report.len())]
    );
    assert_eq!(session.memory(), 0, "the grown instance was given back");

    session
        .call(Op::Check, &small)
        .expect("a fresh instance answers");
    assert!(session.memory() < 16 << 20, "{}", session.memory());
}

#[test]
fn a_session_recovers_from_a_timeout_too() {
    let budget = Budget {
        deadline: Duration::from_millis(20),
        ..Budget::default()
    };
    let mut session = Session::with_budget(runtime(), budget);
    // Compiling 20,000 webhooks into a rule set takes far more than 20 ms.
    let webhooks: Vec<Value> = (0..20_000)
        .map(|i| json!({"id": format!("wh_{i}"), "name": "n", "url": "https://crm.example/h",
                        "events": ["TicketCreated"],
                        "conditions": [{"id": 1, "field": "subject", "operator": "matches", "value": format!("a{i}|b")}]}))
        .collect();
    let input = json!({"webhooks": webhooks, "event": subject_event("x")}).to_string();
    let error = session.call(Op::Match, &input).expect_err("interrupted");
    assert!(matches!(error, Error::Timeout(_)), "{error}");
    assert!(
        session
            .call(Op::Check, r#"{"expression": "1", "ids": [1]}"#)
            .is_ok()
    );
}

fn expression_like() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "1", "2", "3", "9", "0", " ", "\t", "(", ")", "and", "OR", "not", "（", "）", "\u{3000}",
        "１", "😀", "&&", "中",
    ]);
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

fn condition() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec![
        "channel",
        "status",
        "priority",
        "subject",
        "message.body",
        "tags",
        "customFields.seats",
        "nope",
    ]);
    let operator = prop::sample::select(vec![
        "is",
        "in",
        "lt",
        "gte",
        "contains",
        "matches",
        "has_any",
        "is_empty",
        "changed_to",
        "bogus",
    ]);
    let value = prop::sample::select(vec![
        json!(null),
        json!("open"),
        json!("high"),
        json!("refund"),
        json!("^re"),
        json!("("),
        json!(["vip"]),
        json!(["open", "closed"]),
        json!(40),
        json!([]),
    ]);
    (field, operator, value).prop_map(|(f, o, v)| json!({"field": f, "operator": o, "value": v}))
}

fn webhook_and_event() -> impl Strategy<Value = (Value, Value)> {
    let conditions = prop::collection::vec(condition(), 0..4);
    let mode = prop::sample::select(vec!["all", "any", "expression"]);
    let channel = prop::sample::select(vec!["email", "chat"]);
    let subject = prop::sample::select(vec!["Refund", "hello", ""]);
    let status = prop::sample::select(vec!["open", "closed", "weird"]);
    (conditions, mode, expression_like(), channel, subject, status).prop_map(
        |(mut conditions, mode, expression, channel, subject, status)| {
            for (i, c) in conditions.iter_mut().enumerate() {
                c["id"] = json!(i + 1);
            }
            let webhook = json!({
                "id": "wh_p", "name": "p", "url": "https://crm.example/h",
                "events": ["TicketCreated"], "channels": [channel],
                "conditions": conditions, "match": mode, "expression": expression,
            });
            let event = json!({
                "event": "TicketCreated", "ticketId": TICKET,
                "ticket": {"channel": "email", "subject": subject, "status": status, "tags": ["VIP"],
                           "customFields": {"seats": 40}},
                "changes": {"status": {"from": "new", "to": status}},
            });
            (webhook, event)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn wasmtime_and_native_answers_are_identical(
        expression in expression_like(),
        ids in prop::collection::vec(0u32..5, 0..4),
        (webhook, event) in webhook_and_event(),
    ) {
        let mut session = Session::new(runtime());
        let check = json!({"expression": expression, "ids": ids});
        prop_assert_eq!(session.call(Op::Check, &check.to_string()).expect("answer"), native(Op::Check, &check));
        let validate = webhook.clone();
        prop_assert_eq!(session.call(Op::Validate, &validate.to_string()).expect("answer"), native(Op::Validate, &validate));
        let explain = json!({"webhook": webhook, "event": event});
        prop_assert_eq!(session.call(Op::Explain, &explain.to_string()).expect("answer"), native(Op::Explain, &explain));
        let matching = json!({"webhooks": [explain["webhook"]], "event": explain["event"]});
        prop_assert_eq!(session.call(Op::Match, &matching.to_string()).expect("answer"), native(Op::Match, &matching));
        let ingest = json!({"webhooks": [explain["webhook"]], "events": [explain["event"]]});
        prop_assert_eq!(session.call(Op::Ingest, &ingest.to_string()).expect("answer"), native(Op::Ingest, &ingest));
    }
}
