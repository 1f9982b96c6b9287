//! Webhook validation on any JSON.
//!
//! Invariants: a webhook the engine accepts round-trips through its
//! canonical form (serialised, read back, validated again: still valid,
//! with the same warnings); a rule set takes exactly the webhooks with an
//! id that `validate_webhook` accepts (unknown keys are the JSON surface's
//! concern, not the rule set's); the engine's own reader reads a webhook
//! as `serde_json` does, with the same messages (arrays aside: the engine
//! reads a struct only from an object).
#![no_main]

#[path = "common/parity.rs"]
mod parity;

use inbox_rules::{RuleSet, Webhook, read, validate_webhook, validate_webhook_json};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(sent) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    parity::reads_as_serde_json::<Webhook>(&sent);
    let Ok(report) = validate_webhook_json(&sent) else {
        return;
    };
    assert_eq!(report.valid, report.errors.is_empty());
    let Ok(webhook) = read::from_value::<Webhook>(&sent) else {
        assert!(!report.valid);
        return;
    };
    let mut rules = RuleSet::new();
    let inserted = rules.insert(&webhook);
    let accepted = validate_webhook(&webhook).valid && !webhook.id.is_empty();
    assert_eq!(inserted.is_ok(), accepted, "{sent}");
    if !report.valid {
        return;
    }
    let canonical = serde_json::to_value(&webhook).expect("a webhook serialises");
    let again: Webhook = read::from_value(&canonical).expect("the canonical form reads back");
    assert_eq!(again, webhook);
    let second = validate_webhook_json(&canonical).expect("the canonical form is a webhook");
    assert!(second.valid, "{canonical}: {second:?}");
    assert_eq!(second.warnings, report.warnings);
});
