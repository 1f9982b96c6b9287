//! Event admission on any JSON.
//!
//! Invariants: an admission is valid exactly when it has no errors, and
//! then (only then) carries the delivered body: the event's `event`,
//! `ticketId` and, when present, `messageId`, nothing else; admitting the
//! same event twice gives the same answer; the engine's own reader reads
//! an event as `serde_json` does, with the same messages (arrays aside).
#![no_main]

#[path = "common/parity.rs"]
mod parity;

use inbox_rules::{IngestEvent, admit_event};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    parity::reads_as_serde_json::<IngestEvent>(&event);
    let admission = admit_event(&event);
    assert_eq!(admission.valid, admission.errors.is_empty());
    assert_eq!(admission.valid, admission.payload.is_some());
    assert_eq!(admission, admit_event(&event));
    if let Some(Value::Object(body)) = &admission.payload {
        for (key, value) in body {
            assert!(
                matches!(key.as_str(), "event" | "ticketId" | "messageId"),
                "{key}"
            );
            assert_eq!(Some(value), event.get(key), "{key}");
        }
    } else {
        assert!(admission.payload.is_none(), "a body that is not an object");
    }
});
