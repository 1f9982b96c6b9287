//! Explaining a webhook against an event, both from any JSON
//! (`{"webhook": …, "event": …}`).
//!
//! Invariants: for a valid webhook the explanation, `matches` and a rule
//! set (the server's indexed path, for a webhook with an id) agree on
//! whether it fires; the
//! explanation lists every condition, in order.
#![no_main]

use inbox_rules::{IngestEvent, RuleSet, Webhook, explain, matches, read};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (Some(webhook), Some(event)) = (input.get("webhook"), input.get("event")) else {
        return;
    };
    let (Ok(webhook), Ok(event)) = (
        read::from_value::<Webhook>(webhook),
        read::from_value::<IngestEvent>(event),
    ) else {
        return;
    };
    let Ok(explanation) = explain(&webhook, &event) else {
        assert!(matches(&webhook, &event).is_err());
        return;
    };
    assert_eq!(Ok(explanation.fires), matches(&webhook, &event));
    let ids: Vec<i64> = webhook.conditions.iter().map(|c| c.id).collect();
    let explained: Vec<i64> = explanation
        .conditions
        .iter()
        .map(|c| i64::from(c.id))
        .collect();
    assert_eq!(explained, ids);
    if webhook.id.is_empty() {
        return;
    }
    let mut rules = RuleSet::new();
    rules
        .insert(&webhook)
        .expect("explain accepted the webhook");
    let fired = rules.matches(&event);
    assert_eq!(
        fired.contains(&webhook.id.as_str()),
        explanation.fires,
        "{input}"
    );
});
