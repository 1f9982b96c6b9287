//! What both stores decide the same way, whatever their SQL: the order in
//! which tenants take turns in a claim, what makes a repeated idempotency
//! key a mismatch, which deliveries a finished attempt hands on, and what
//! an attempt's outcome writes.

use std::collections::HashMap;
use std::time::Duration;

use super::{
    Claimed, EventPlace, HAND_ON, HistoryQuery, LogFilter, Millis, NewEvent, Next, PACE_AHEAD, Room,
};

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

/// What became of a delivery after an attempt, as the attempt records it
/// for the health chart.
pub(super) fn outcome(next: Next) -> &'static str {
    match next {
        Next::Succeeded => "succeeded",
        Next::RetryAt(_) => "retrying",
        Next::Failed => "failed",
        Next::Cancelled => "cancelled",
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

/// The events a history read takes, in its order, from what each type's
/// index range found (each event's place and body size): up to the query's
/// limit, and no more bytes than it allows past the first.
pub(super) fn pick_history(
    mut found: Vec<(EventPlace, u64)>,
    query: &HistoryQuery,
) -> Vec<EventPlace> {
    found.sort_unstable();
    if query.newest_first {
        found.reverse();
    }
    let mut bytes = 0u64;
    let mut picked = Vec::new();
    for (place, size) in found {
        bytes = bytes.saturating_add(size);
        if picked.len() >= query.limit as usize || (!picked.is_empty() && bytes > query.max_bytes) {
            break;
        }
        picked.push(place);
    }
    picked
}

/// The events picked, in the read's order, with their bodies (fetched in
/// no order).
pub(super) fn in_order(
    picked: Vec<EventPlace>,
    mut bodies: HashMap<String, String>,
) -> Vec<super::StoredEvent> {
    picked
        .into_iter()
        .filter_map(|place| {
            let body = bodies.remove(&place.id)?;
            Some(super::StoredEvent { place, body })
        })
        .collect()
}

/// Where a history read resumes, in its order: past `after`, or from the
/// window's edge.
pub(super) fn history_start(query: &HistoryQuery) -> (Millis, &str) {
    match (&query.after, query.newest_first) {
        (Some(place), _) => (place.received_at, place.id.as_str()),
        // Before every id of the newest millisecond, after every id of the oldest.
        (None, true) => (query.until, ""),
        (None, false) => (query.since, ""),
    }
}

/// A webhook's attempts in a time window (webhook, since, until, limit),
/// each with its outcome: recorded, or for an attempt recorded before
/// outcomes were, read from its status.
pub(super) const ATTEMPT_POINTS: &str = "SELECT started_at, duration_ms,
        COALESCE(outcome, CASE WHEN status BETWEEN 200 AND 299 THEN 'succeeded'
                               ELSE 'retrying' END) AS outcome
     FROM attempts WHERE webhook_id = $1 AND started_at >= $2 AND started_at < $3
     ORDER BY started_at LIMIT $4";

/// A delivery's columns, with its last attempt's status and duration.
pub(super) const DELIVERY: &str = "SELECT d.*,
        (SELECT a.status FROM attempts a WHERE a.delivery_id = d.id
         ORDER BY a.id DESC LIMIT 1) AS last_status,
        (SELECT a.duration_ms FROM attempts a WHERE a.delivery_id = d.id
         ORDER BY a.id DESC LIMIT 1) AS last_duration_ms
     FROM deliveries d";

/// Counts, up to a limit (tenant, webhook, since, limit + 1), the
/// deliveries a recover would send again.
pub(super) const FAILED_SINCE: &str = "SELECT COUNT(*) FROM (
        SELECT 1 FROM deliveries
        WHERE webhook_id = $2 AND tenant_id = $1 AND state = 'failed' AND updated_at >= $3
        LIMIT $4) AS f";

/// Which index a page of the delivery log walks, newest first and at most
/// [`LOG_SCAN`] entries: one ticket's deliveries when the filter names a
/// ticket, else one webhook's when it names one, else the tenant's. The
/// rest of the filter is checked on what the walk finds, so that a filter
/// that matches little costs a bounded walk, not a scan of the tenant's
/// log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogWalk {
    Ticket,
    Webhook,
    Tenant,
}

impl LogWalk {
    pub(super) fn of(filter: &LogFilter) -> Self {
        match (&filter.ticket_id, &filter.webhook_id) {
            (Some(_), _) => Self::Ticket,
            (None, Some(_)) => Self::Webhook,
            (None, None) => Self::Tenant,
        }
    }

    /// The walk's condition, given the placeholders of the tenant, the
    /// webhook and the ticket.
    fn condition(self, tenant: &str, webhook: &str, ticket: &str) -> String {
        match self {
            Self::Ticket => format!("tenant_id = {tenant} AND ticket_id = {ticket}"),
            Self::Webhook => format!("webhook_id = {webhook}"),
            Self::Tenant => format!("tenant_id = {tenant}"),
        }
    }

    /// The page's statement, with numbered parameters written by `param`
    /// (`?1` for SQLite, `$1` for Postgres): 1 tenant, 2 webhook, 3
    /// ticket, 4 state, 5 event type, 6 since, 7 until, 8 before (`seq`),
    /// 9 how many to walk, 10 limit.
    pub(super) fn page(self, param: fn(u8) -> String) -> String {
        let p = param;
        let last = |column: &str| {
            format!(
                "(SELECT a.{column} FROM attempts a WHERE a.delivery_id = d.id
                  ORDER BY a.id DESC LIMIT 1) AS last_{column}"
            )
        };
        format!(
            "SELECT d.seq, d.id, d.tenant_id, d.webhook_id, d.event_id, d.event_type, d.ticket_id,
                    d.payload, '' AS explanation, d.state, d.attempts, d.next_attempt_at,
                    d.last_error, d.created_at, d.updated_at, {status}, {duration}
             FROM (SELECT seq FROM deliveries WHERE {walk} AND seq < {before}
                   ORDER BY seq DESC LIMIT {scan}) AS s
             JOIN deliveries d ON d.seq = s.seq
             WHERE d.tenant_id = {tenant}
               AND ({webhook} IS NULL OR d.webhook_id = {webhook})
               AND ({ticket} IS NULL OR d.ticket_id = {ticket})
               AND ({state} IS NULL OR d.state = {state})
               AND ({event} IS NULL OR d.event_type = {event})
               AND d.created_at >= {since} AND d.created_at < {until}
             ORDER BY d.seq DESC LIMIT {limit}",
            status = last("status"),
            duration = last("duration_ms"),
            walk = self.condition(&p(1), &p(2), &p(3)),
            tenant = p(1),
            webhook = p(2),
            ticket = p(3),
            state = p(4),
            event = p(5),
            since = p(6),
            until = p(7),
            before = p(8),
            scan = p(9),
            limit = p(10),
        )
    }

    /// The statement that finds the last entry a full walk examines (the
    /// `seq`), to resume past it: its parameters are the walk's own (the
    /// tenant and the ticket, the webhook, or the tenant), then before,
    /// then how many to skip.
    pub(super) fn end(self, param: fn(u8) -> String) -> String {
        let p = param;
        let (walk, before, skip) = match self {
            Self::Ticket => (self.condition(&p(1), "", &p(2)), p(3), p(4)),
            Self::Webhook => (self.condition("", &p(1), ""), p(2), p(3)),
            Self::Tenant => (self.condition(&p(1), "", ""), p(2), p(3)),
        };
        format!(
            "SELECT seq FROM deliveries WHERE {walk} AND seq < {before}
             ORDER BY seq DESC LIMIT 1 OFFSET {skip}"
        )
    }
}

/// A rate-limited webhook's free slots for a claim at `at`: when each of
/// its next attempts may start, in microseconds, `1/rate` s apart from its
/// next free slot (`next`, or now), those that start within
/// [`PACE_AHEAD`], at most `room`; and the spacing.
pub(super) fn slots(rate: i64, next: Option<i64>, at: Millis, room: u32) -> (Vec<i64>, i64) {
    let interval = 1_000_000 / rate.max(1);
    let now = at.saturating_mul(1_000);
    let horizon = now.saturating_add(PACE_AHEAD * 1_000);
    let mut slot = next.unwrap_or(now).max(now);
    let mut slots = Vec::new();
    while slot < horizon && slots.len() < room as usize {
        slots.push(slot);
        slot += interval;
    }
    (slots, interval)
}

/// Gives each claimed delivery of a paced webhook its slot, in the claim's
/// order, from `paced` (each webhook's free slots and their spacing); each
/// paced webhook's next free slot after those taken, to store.
pub(super) fn take_slots(
    claimed: &mut [Claimed],
    mut paced: HashMap<String, (Vec<i64>, i64)>,
) -> Vec<(String, i64)> {
    let mut taken: HashMap<String, usize> = HashMap::new();
    for delivery in claimed.iter_mut() {
        let Some((slots, _)) = paced.get(&delivery.webhook_id) else {
            continue;
        };
        let n = taken.entry(delivery.webhook_id.clone()).or_default();
        if let Some(slot) = slots.get(*n) {
            delivery.not_before = Some((slot + 999).div_euclid(1_000));
            *n += 1;
        }
    }
    taken
        .into_iter()
        .filter_map(|(webhook, n)| {
            let (slots, interval) = paced.remove(&webhook)?;
            Some((webhook, slots.get(n.checked_sub(1)?)? + interval))
        })
        .collect()
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
