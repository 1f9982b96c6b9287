//! What both stores decide the same way, whatever their SQL: the order in
//! which tenants take turns in a claim, what makes a repeated idempotency
//! key a mismatch, which deliveries a finished attempt hands on, and what
//! an attempt's outcome writes.

use std::collections::HashMap;
use std::time::Duration;

use super::{HAND_ON, Millis, NewEvent, Next, Room};

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

/// Whether a pending delivery may be handed on at `at`: due, and its
/// lease (if any) ended.
pub(super) fn free(due: Millis, leased_until: Option<Millis>, at: Millis) -> bool {
    due <= at && leased_until.is_none_or(|until| until <= at)
}

/// What a run handed on takes of the deliveries behind its head (each
/// one's `seq`, due time and lease end, in order): those up to the first
/// that is not [`free`], at most [`HAND_ON`] with the head.
pub(super) fn run_behind(
    behind: impl IntoIterator<Item = (i64, Millis, Option<Millis>)>,
    at: Millis,
) -> Vec<i64> {
    behind
        .into_iter()
        .take(HAND_ON - 1)
        .take_while(|(_, due, leased_until)| free(*due, *leased_until, at))
        .map(|(seq, _, _)| seq)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::{HAND_ON, run_behind};

    #[test]
    fn a_run_takes_what_is_free_behind_its_head_up_to_the_first_that_is_not() {
        let at = 1_000;
        // Due, lease ended, due: taken; not due yet: the run ends there.
        let behind = [
            (2, at, None),
            (3, at - 5, Some(at)),
            (4, at, None),
            (5, at + 1, None),
            (6, at, None),
        ];
        assert_eq!(run_behind(behind, at), [2, 3, 4]);
        // Leased still: the run ends there.
        assert_eq!(
            run_behind([(2, at, Some(at + 1)), (3, at, None)], at),
            Vec::<i64>::new()
        );
        // At most HAND_ON with the head.
        let many = (2..100).map(|seq| (seq, at, None));
        assert_eq!(run_behind(many, at).len(), HAND_ON - 1);
    }
}
