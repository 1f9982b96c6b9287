//! What both stores decide the same way, whatever their SQL: the order in
//! which tenants take turns in a claim, what makes a repeated idempotency
//! key a mismatch, and what an attempt's outcome writes.

use std::collections::HashMap;
use std::time::Duration;

use super::{Millis, NewEvent, Next, Room};

/// Whether the event's key is a request's `Idempotency-Key` (`request:…`),
/// which covers the whole request: a retry repeats every event or none.
/// (An event's own id, `event:…`, covers that event alone, so a batch may
/// repeat some events and bring new ones.)
pub(super) fn whole_request(event: &NewEvent) -> bool {
    event
        .idempotency_key
        .as_deref()
        .is_some_and(|key| key.starts_with("request:"))
}

/// Whether two stored event bodies are the same event: equal as JSON,
/// whatever their key order and spacing.
pub(super) fn same_event(stored: &str, sent: &str) -> bool {
    stored == sent
        || serde_json::from_str::<serde_json::Value>(stored).ok()
            == serde_json::from_str::<serde_json::Value>(sent).ok()
}

/// Up to `limit` of the candidates (due time and `seq`, per tenant), each
/// tenant's oldest due first and at most its room, the tenants taking
/// turns one delivery at a time (the one with the oldest due delivery
/// first).
pub(super) fn take_turns(
    by_tenant: HashMap<String, Vec<(Millis, i64)>>,
    room: &Room,
    limit: u32,
) -> Vec<i64> {
    let mut queues: Vec<std::vec::IntoIter<(Millis, i64)>> = by_tenant
        .into_iter()
        .filter_map(|(tenant, mut candidates)| {
            candidates.sort_unstable();
            candidates.truncate(usize::try_from(room.of_tenant(&tenant)).unwrap_or(usize::MAX));
            (!candidates.is_empty()).then_some(candidates)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(Vec::into_iter)
        .collect();
    queues.sort_by_key(|queue| queue.as_slice().first().copied());
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut chosen = Vec::new();
    while chosen.len() < limit && !queues.is_empty() {
        queues.retain_mut(|queue| match queue.next() {
            Some((_, seq)) if chosen.len() < limit => {
                chosen.push(seq);
                true
            }
            _ => false,
        });
    }
    chosen
}

/// A delivery's state and due time after an attempt's outcome.
pub(super) fn state_after(next: Next) -> (&'static str, Option<Millis>) {
    match next {
        Next::Succeeded => ("succeeded", None),
        Next::RetryAt(due) => ("pending", Some(due)),
        Next::Failed => ("failed", None),
        Next::Cancelled => ("cancelled", None),
    }
}

/// The error a delivery keeps after an attempt (or after none).
pub(super) fn last_error(next: Next, error: Option<&str>) -> Option<&str> {
    match next {
        Next::Cancelled => Some("not sent: the webhook is disabled or was deleted"),
        _ => error,
    }
}

/// Why a webhook that failed for longer than `disable_after` is disabled.
pub(super) fn failing_reason(disable_after: Millis) -> String {
    format!(
        "every delivery failed for {} without a success",
        humantime::format_duration(Duration::from_millis(
            u64::try_from(disable_after).unwrap_or(0)
        ))
    )
}

/// Why a webhook whose receiver answered `410 Gone` is disabled.
pub(super) const GONE_REASON: &str = "the receiver answered 410 Gone";

/// A definition with `enabled: false`, the rest as it was.
pub(super) fn disabled_definition(definition: &str) -> Result<String, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(definition)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("enabled".to_owned(), serde_json::Value::Bool(false));
    }
    Ok(value.to_string())
}
