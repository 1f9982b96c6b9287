//! The engine in wasmtime against the engine linked natively: the whole
//! fixture corpus, a property test, the guest's rule set, and the limits
//! that bound every call (with inputs that really exhaust them) followed by
//! recovery.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use inbox_rules::api::encode;
use inbox_webhooks::rules::{Error, Limits, Refused, RuleSet, Runtime, Session};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::corpus;

/// One runtime for the whole test binary: compiling the guest is the slow
/// part, and limits are per session anyway.
fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Runtime::new(Limits::default(), Runtime::default_cache_dir()).expect("runtime")
        })
        .clone()
}

fn native(op: &str, input: &Value) -> String {
    inbox_rules::api::run(op, input).expect("valid operation")
}

#[test]
fn every_corpus_case_answers_byte_for_byte_in_wasmtime() {
    let mut session = Session::new(runtime());
    let cases = corpus();
    assert!(cases.len() >= 350);
    for case in &cases {
        let wasm = session
            .call(&case.op, &case.input.to_string())
            .expect("answer");
        assert_eq!(wasm, encode(&case.expect), "{}", case.name);
        assert_eq!(wasm, native(&case.op, &case.input), "{}", case.name);
    }
}

#[test]
fn typed_exports_answer_like_the_native_core() {
    let mut session = Session::new(runtime());
    for case in corpus() {
        let input = &case.input;
        let (wasm, native) = match case.op.as_str() {
            "check" => {
                let ids: Vec<u32> = serde_json::from_value(input["ids"].clone()).expect("ids");
                let expression = input["expression"].as_str().expect("expression");
                let wasm = session
                    .validate_expression(expression, &ids)
                    .expect("answer");
                (
                    wasm,
                    encode(&inbox_rules::validate_expression(expression, &ids)),
                )
            }
            "validate" => {
                let wasm = session
                    .validate_webhook(&input.to_string())
                    .expect("answer");
                (wasm, native("validate", input))
            }
            "eval" => (
                session.evaluate(&input.to_string()).expect("answer"),
                native("eval", input),
            ),
            "explain" => {
                let (webhook, event) = (input["webhook"].to_string(), input["event"].to_string());
                (
                    session.explain(&webhook, &event).expect("answer"),
                    native("explain", input),
                )
            }
            _ => continue,
        };
        assert_eq!(wasm, native, "{}", case.name);
    }
    let catalog = session.catalog().expect("catalog");
    assert_eq!(catalog, encode(&inbox_rules::catalog()));
}

#[test]
fn malformed_arguments_are_errors_not_traps() {
    let mut session = Session::new(runtime());
    let error = session
        .validate_webhook("{\"name\": 5")
        .expect_err("malformed");
    assert!(
        matches!(error, Error::Input(ref m) if m.starts_with("invalid webhook:")),
        "{error}"
    );
    let error = session.call("nope", "{}").expect_err("unknown operation");
    assert!(
        error.to_string().starts_with("unknown operation `nope`"),
        "{error}"
    );
    // The instance is still the same healthy one.
    assert!(session.validate_expression("1", &[1]).is_ok());
}

#[test]
fn the_guest_rule_set_matches_the_corpus() {
    for case in corpus().into_iter().filter(|c| c.op == "match") {
        let mut rules = RuleSet::new(runtime());
        for webhook in case.input["webhooks"].as_array().expect("webhooks") {
            match rules.insert(&webhook.to_string()) {
                Ok(_) | Err(Refused::Invalid(_)) => {}
                Err(other) => panic!("{}: {other}", case.name),
            }
        }
        let matched = texts(rules.matches(&case.input["event"].to_string()));
        assert_eq!(json!(matched), case.expect["matched"], "{}", case.name);
        let decoded = rules
            .decode(&case.input["event"].to_string())
            .expect("event");
        assert_eq!(
            texts(rules.match_decoded(&decoded)),
            matched,
            "{}",
            case.name
        );
        rules.forget(decoded);
        let batch = json!([case.input["event"], case.input["event"]]).to_string();
        let both = rules.match_batch(&batch).expect("answer");
        assert_eq!(both, vec![matched.clone(), matched], "{}", case.name);
    }
}

#[test]
fn the_guest_rule_set_inserts_replaces_removes_and_explains() {
    let mut rules = RuleSet::new(runtime());
    let hook = |id: &str, channels: Value| {
        json!({"id": id, "name": id, "url": "https://crm.example/h", "events": ["TicketCreated"],
               "channels": channels})
        .to_string()
    };
    let event = |channel: &str| {
        json!({"event": "TicketCreated", "ticketId": "t", "ticket": {"channel": channel}})
            .to_string()
    };
    rules
        .insert(&hook("wh_1", json!(["email"])))
        .expect("valid");
    rules.insert(&hook("wh_2", json!([]))).expect("valid");
    assert_eq!(texts(rules.matches(&event("email"))), ["wh_1", "wh_2"]);
    rules.insert(&hook("wh_1", json!(["chat"]))).expect("valid");
    assert_eq!(rules.len(), 2);
    assert_eq!(texts(rules.matches(&event("email"))), ["wh_2"]);
    assert!(rules.remove("wh_2"));
    assert!(!rules.remove("wh_2"));
    assert!(rules.matches(&event("email")).expect("answer").is_empty());
    let explanation = rules
        .explain("wh_1", &event("email"))
        .expect("answer")
        .expect("known id");
    assert!(explanation.contains("\"fires\":false"), "{explanation}");
    assert_eq!(
        rules.explain("wh_9", &event("email")).expect("answer"),
        None
    );
    // An event decoded once answers as its JSON does, call after call.
    let decoded = rules.decode(&event("chat")).expect("event");
    for _ in 0..2 {
        assert_eq!(texts(rules.match_decoded(&decoded)), ["wh_1"]);
        assert_eq!(
            rules.explain_decoded("wh_1", &decoded).expect("answer"),
            rules.explain("wh_1", &event("chat")).expect("answer"),
        );
    }
    assert_eq!(
        rules.explain_decoded("wh_9", &decoded).expect("answer"),
        None
    );
    rules.forget(decoded);
    match rules.decode(r#"{"ticketId": "t"}"#) {
        Err(Error::Input(message)) => assert!(
            message.starts_with("invalid event: missing field `event`"),
            "{message}"
        ),
        other => panic!("expected a decode error, got {other:?}"),
    }

    match rules.insert(&hook("wh_3", json!([""]))) {
        Err(Refused::Invalid(report)) => {
            assert!(report.contains("\"path\":\"channels[0]\""), "{report}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        rules.insert("not json"),
        Err(Refused::Engine(Error::Input(_)))
    ));
    assert!(rules.matches("{").is_err());
}

/// The guest answers with handles the host turns back into ids: through
/// inserts, replacements, removals (whose handles the guest gives to the
/// next webhook) and an instance rebuilt after a failed call, the guest's
/// set keeps answering what a native set with the same changes answers, in
/// id order (`wh_10` before `wh_2`).
#[test]
fn the_guest_rule_set_follows_changes_like_a_native_one() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let mut guest = RuleSet::with_limits(runtime(), limits);
    let mut native = inbox_rules::RuleSet::new();
    let hook = |i: usize, channel: &str| {
        json!({"id": format!("wh_{i}"), "name": "n", "url": "https://crm.example/h",
               "events": ["TicketCreated"], "channels": [channel]})
    };
    let events: Vec<Value> = ["email", "chat", "sms"]
        .iter()
        .map(|c| json!({"event": "TicketCreated", "ticketId": "t", "ticket": {"channel": c}}))
        .collect();
    let insert = |guest: &mut RuleSet, native: &mut inbox_rules::RuleSet, hook: Value| {
        guest.insert(&hook.to_string()).expect("valid");
        let webhook: inbox_rules::Webhook = serde_json::from_value(hook).expect("shape");
        native.insert(&webhook).expect("valid");
    };
    let agree = |guest: &mut RuleSet, native: &inbox_rules::RuleSet, step: &str| {
        for event in &events {
            let typed: inbox_rules::IngestEvent =
                serde_json::from_value(event.clone()).expect("shape");
            assert_eq!(
                texts(guest.matches(&event.to_string())),
                native.matches(&typed),
                "{step}: {event}"
            );
        }
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
    let decoded = guest.decode(&events[0].to_string()).expect("event");
    let huge = json!([{"event": "TicketCreated", "ticketId": "x".repeat(32 << 20)}]);
    let error = guest.match_batch(&huge.to_string()).expect_err("too large");
    assert!(matches!(error, Error::OutOfMemory(_)), "{error}");
    agree(&mut guest, &native, "rebuilt");
    // An event decoded in the instance that failed went with it.
    match guest.match_decoded(&decoded) {
        Err(Error::Input(message)) => assert!(message.contains("replaced"), "{message}"),
        other => panic!("expected a stale event to be refused, got {other:?}"),
    }
    guest.forget(decoded);
    assert!(guest.remove("wh_31"));
    native.remove("wh_31");
    insert(&mut guest, &mut native, hook(40, "email"));
    agree(&mut guest, &native, "changed after the rebuild");
    let batch = Value::Array(events.clone()).to_string();
    let both = guest.match_batch(&batch).expect("answer");
    assert_eq!(both.len(), 3);
    let first: Vec<String> = both[0].iter().map(|id| (*id).to_owned()).collect();
    assert_eq!(first, texts(guest.matches(&events[0].to_string())));
}

/// The ids a guest set answered, as text to compare.
fn texts(answer: Result<Vec<&str>, Error>) -> Vec<String> {
    let ids = answer.expect("answer");
    ids.into_iter().map(str::to_owned).collect()
}

/// Webhooks that every event below reaches, so matching does real work.
fn busy_rule_set(limits: Limits, count: usize) -> RuleSet {
    let mut rules = RuleSet::with_limits(runtime(), limits);
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
    json!({"event": "TicketCreated", "ticketId": "t", "ticket": {"subject": subject, "tags": ["vip", "t7"]}})
}

#[test]
fn a_call_past_its_deadline_is_interrupted_and_the_set_recovers() {
    let limits = Limits {
        deadline: Duration::from_millis(50),
        ..Limits::default()
    };
    let mut rules = busy_rule_set(limits, 500);
    let event = subject_event("Refund for order 7");
    assert_eq!(texts(rules.matches(&event.to_string())), ["wh_7"]);

    // 20,000 events against 500 regex conditions: far past 50 ms.
    let batch = Value::Array(vec![event.clone(); 20_000]).to_string();
    let error = rules.match_batch(&batch).expect_err("interrupted");
    assert!(matches!(error, Error::Timeout(_)), "{error}");

    // The next call gets a fresh instance with every webhook back in it.
    assert_eq!(texts(rules.matches(&event.to_string())), ["wh_7"]);
    assert_eq!(rules.len(), 500);

    // A removal while no instance lives is kept for the rebuild.
    let error = rules.match_batch(&batch).expect_err("interrupted again");
    assert!(matches!(error, Error::Timeout(_)), "{error}");
    assert!(rules.remove("wh_7"));
    assert!(
        rules
            .matches(&event.to_string())
            .expect("answer")
            .is_empty()
    );
    assert_eq!(rules.len(), 499);
}

#[test]
fn a_call_past_its_memory_limit_fails_and_the_session_recovers() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let mut session = Session::with_limits(runtime(), limits);
    assert!(session.validate_expression("1 or 2", &[1, 2]).is_ok());

    // A 32 MiB webhook name cannot even be copied into 16 MiB.
    let huge = json!({"name": "x".repeat(32 << 20), "url": "https://crm.example/h", "events": ["TicketCreated"]});
    let error = session
        .validate_webhook(&huge.to_string())
        .expect_err("out of memory");
    assert!(matches!(error, Error::OutOfMemory(_)), "{error}");

    let report = session
        .validate_expression("1 or 3", &[1, 2])
        .expect("fresh instance answers");
    assert!(report.contains("unknown_condition"), "{report}");
}

#[test]
fn a_session_recovers_from_a_timeout_too() {
    let limits = Limits {
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let mut session = Session::with_limits(runtime(), limits);
    // Compiling 20,000 webhooks into a rule set takes far more than 20 ms.
    let webhooks: Vec<Value> = (0..20_000)
        .map(|i| json!({"id": format!("wh_{i}"), "name": "n", "url": "https://crm.example/h",
                        "events": ["TicketCreated"],
                        "conditions": [{"id": 1, "field": "subject", "operator": "matches", "value": format!("a{i}|b")}]}))
        .collect();
    let input = json!({"webhooks": webhooks, "event": subject_event("x")}).to_string();
    let error = session.call("match", &input).expect_err("interrupted");
    assert!(matches!(error, Error::Timeout(_)), "{error}");
    assert!(
        session
            .call("check", r#"{"expression": "1", "ids": [1]}"#)
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
                "event": "TicketCreated", "ticketId": "t",
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
        prop_assert_eq!(session.call("check", &check.to_string()).expect("answer"), native("check", &check));
        let validate = webhook.clone();
        prop_assert_eq!(session.call("validate", &validate.to_string()).expect("answer"), native("validate", &validate));
        let explain = json!({"webhook": webhook, "event": event});
        prop_assert_eq!(session.call("explain", &explain.to_string()).expect("answer"), native("explain", &explain));
        let matching = json!({"webhooks": [explain["webhook"]], "event": explain["event"]});
        prop_assert_eq!(session.call("match", &matching.to_string()).expect("answer"), native("match", &matching));
    }
}
