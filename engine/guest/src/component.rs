//! The exports of `engine/wit/inbox-rules.wit`, implemented over `inbox-rules`.

use std::cell::RefCell;

use inbox_rules::Webhook;
use inbox_rules::api::{decode, encode};

wit_bindgen::generate!({
    world: "inbox-rules",
    path: "../wit",
});

use exports::cloudcx::inbox_rules::engine::{Guest, GuestRuleSet, IntakeRefusal, Refusal};

/// JSON text in one of the contract's shapes.
type Json = String;

/// The component's exports.
struct Component;

impl Guest for Component {
    type RuleSet = RuleSet;

    fn call(op: String, input: Json) -> Result<Json, String> {
        let input: serde_json::Value = decode("input", &input)?;
        inbox_rules::api::run(&op, &input).map_err(|e| e.to_string())
    }
}

/// The `rule-set` resource: the engine's `RuleSet`, mutable behind `&self`
/// as the component model hands resources out.
struct RuleSet(RefCell<inbox_rules::RuleSet>);

impl GuestRuleSet for RuleSet {
    fn new() -> Self {
        Self(RefCell::new(inbox_rules::RuleSet::new()))
    }

    fn insert(&self, webhook: Json) -> Result<Json, Refusal> {
        let webhook: Webhook = decode("webhook", &webhook).map_err(Refusal::Malformed)?;
        match self.0.borrow_mut().insert(&webhook) {
            Ok(warnings) => Ok(encode(&warnings)),
            Err(report) => Err(Refusal::Invalid(encode(&report))),
        }
    }

    fn remove(&self, id: String) -> bool {
        self.0.borrow_mut().remove(&id)
    }

    fn ingest(&self, events: Json, max_fired: u32) -> Result<Json, IntakeRefusal> {
        let events: Vec<serde_json::Value> =
            decode("events", &events).map_err(IntakeRefusal::Malformed)?;
        let max_fired = usize::try_from(max_fired).unwrap_or(usize::MAX);
        match self.0.borrow().ingest_at_most(&events, max_fired) {
            Ok(intake) => Ok(encode(&intake)),
            Err(fired) => Err(IntakeRefusal::TooMany(
                u64::try_from(fired).unwrap_or(u64::MAX),
            )),
        }
    }
}

export!(Component);
