//! The exports of `engine/wit/inbox-rules.wit`, implemented over `inbox-rules`.

use std::cell::RefCell;

use inbox_rules::{IngestEvent, Webhook};

wit_bindgen::generate!({
    world: "inbox-rules",
    path: "../wit",
});

use exports::cloudcx::inbox_rules::engine::{
    EventBorrow, Guest, GuestEvent, GuestRuleSet, Inserted, Refusal,
};

/// JSON text in one of the contract's shapes.
type Json = String;

/// The component's exports.
struct Component;

use inbox_rules::api::{decode as from_json, encode as to_json};

impl Guest for Component {
    type Event = Event;
    type RuleSet = RuleSet;

    fn validate_expression(expression: String, ids: Vec<u32>) -> Json {
        to_json(&inbox_rules::validate_expression(&expression, &ids))
    }

    fn validate_webhook(webhook: Json) -> Result<Json, String> {
        let webhook: Webhook = from_json("webhook", &webhook)?;
        Ok(to_json(&inbox_rules::validate_webhook(&webhook)))
    }

    fn evaluate(request: Json) -> Result<Json, String> {
        let request: inbox_rules::api::EvalRequest = from_json("evaluate request", &request)?;
        Ok(to_json(&inbox_rules::api::eval(&request)))
    }

    fn explain(webhook: Json, event: Json) -> Result<Json, String> {
        let request = inbox_rules::api::ExplainRequest {
            webhook: from_json::<Webhook>("webhook", &webhook)?,
            event: from_json::<IngestEvent>("event", &event)?,
        };
        Ok(to_json(&inbox_rules::api::explain(&request)))
    }

    fn catalog() -> Json {
        to_json(&inbox_rules::catalog())
    }

    fn call(op: String, input: Json) -> Result<Json, String> {
        let input: serde_json::Value = from_json("input", &input)?;
        inbox_rules::api::run(&op, &input).map_err(|e| e.to_string())
    }
}

/// The `event` resource: an ingest event, decoded once.
struct Event(IngestEvent);

impl GuestEvent for Event {
    fn decode(event: Json) -> Result<exports::cloudcx::inbox_rules::engine::Event, String> {
        let event: IngestEvent = from_json("event", &event)?;
        Ok(exports::cloudcx::inbox_rules::engine::Event::new(Self(
            event,
        )))
    }
}

impl Event {
    fn of<'a>(event: &'a EventBorrow<'_>) -> &'a IngestEvent {
        &event.get::<Self>().0
    }
}

/// The `rule-set` resource: the engine's `RuleSet`, mutable behind `&self`
/// as the component model hands resources out.
struct RuleSet(RefCell<inbox_rules::RuleSet>);

impl GuestRuleSet for RuleSet {
    fn new() -> Self {
        Self(RefCell::new(inbox_rules::RuleSet::new()))
    }

    fn insert(&self, webhook: Json) -> Result<Inserted, Refusal> {
        let webhook: Webhook = from_json("webhook", &webhook).map_err(Refusal::Malformed)?;
        let mut rules = self.0.borrow_mut();
        let warnings = rules
            .insert(&webhook)
            .map_err(|report| Refusal::Invalid(to_json(&report)))?;
        // An accepted webhook is in the set, so it has a handle.
        let handle = rules.handle(&webhook.id).unwrap_or(u32::MAX);
        Ok(Inserted {
            handle,
            warnings: to_json(&warnings),
        })
    }

    fn remove(&self, id: String) -> bool {
        self.0.borrow_mut().remove(&id)
    }

    fn len(&self) -> u32 {
        u32::try_from(self.0.borrow().len()).unwrap_or(u32::MAX)
    }

    fn match_event(&self, event: Json) -> Result<Vec<u32>, String> {
        let event: IngestEvent = from_json("event", &event)?;
        Ok(self.0.borrow().match_handles(&event))
    }

    fn match_decoded(&self, event: EventBorrow<'_>) -> Vec<u32> {
        self.0.borrow().match_handles(Event::of(&event))
    }

    fn match_batch(&self, events: Json) -> Result<Vec<Vec<u32>>, String> {
        let events: Vec<IngestEvent> = from_json("events", &events)?;
        let rules = self.0.borrow();
        Ok(events.iter().map(|e| rules.match_handles(e)).collect())
    }

    fn explain(&self, id: String, event: Json) -> Result<Option<Json>, String> {
        let event: IngestEvent = from_json("event", &event)?;
        Ok(self.0.borrow().explain(&id, &event).map(|e| to_json(&e)))
    }

    fn explain_decoded(&self, id: String, event: EventBorrow<'_>) -> Option<Json> {
        let rules = self.0.borrow();
        rules.explain(&id, Event::of(&event)).map(|e| to_json(&e))
    }
}

export!(Component);
