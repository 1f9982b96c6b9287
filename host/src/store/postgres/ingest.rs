//! Ingest writes on Postgres, committed in groups (see `group.rs`).
//!
//! A group is written in one transaction of set-based statements (one
//! `INSERT … SELECT FROM UNNEST` per table), whatever its size.
//!
//! Each request's answer is the one it would have had alone. A group whose
//! events meet an idempotency key already stored (or repeated within the
//! group), or whose write fails, is rolled back and its requests run again,
//! each in a transaction of its own ([`alone`]), where a repeated key is
//! told apart from a mismatch and a bad request fails by itself. No
//! request hears "accepted" before its transaction commits.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::{PgPool, Postgres, Row as _, Transaction};

use super::group::{Groups, Waiting};
use super::{column, fill_targets, lock_tickets, notify_deliveries, ticket_lock};
use crate::store::policy::{same_event, whole_request};
use crate::store::{Claimed, IdempotencyMismatch, Ingested, Millis, NewEvent, StoreError};

/// Lanes, one writer each: while one group commits, another is being
/// written. A request goes to the lane of its first delivery's ticket
/// ([`Request::lane`]), so that a busy ticket's requests, which all wait
/// for its lock, hold up one lane and not every writer. Two: one lane
/// lets a hot ticket hold up every other ticket (p99 157 ms beside
/// one); four made smaller groups and more writers contending, slower
/// for everyone, beside a hot ticket too (BENCHMARKS.md).
const LANES: usize = 2;

/// One ingest request.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) tenant_id: String,
    pub(super) events: Vec<NewEvent>,
    pub(super) at: Millis,
}

impl Request {
    /// The lane key: the lock number of the first delivery's ticket queue
    /// ([`ticket_lock`]), so that requests waiting for one lock share a
    /// lane (0 when the request causes no delivery, and takes no lock).
    pub(super) fn lane(&self) -> u64 {
        self.events
            .iter()
            .flat_map(|event| &event.deliveries)
            .next()
            .map_or(0, |delivery| {
                ticket_lock(&delivery.webhook_id, &delivery.ticket_id).unsigned_abs()
            })
    }
}

/// The queue of ingest requests.
pub(super) type Ingest = Groups<Request, Vec<Ingested>>;

/// Starts the writers on `pool`; `instance` names this process in the
/// notifications it sends.
pub(super) fn start(pool: PgPool, instance: String) -> Ingest {
    Groups::start(LANES, 1, move |group| {
        let (pool, instance) = (pool.clone(), instance.clone());
        async move { write_group(&pool, &instance, group).await }
    })
}

/// Writes a group together; when that cannot be, each request alone.
pub(super) async fn write_group(
    pool: &PgPool,
    instance: &str,
    group: Vec<Waiting<Request, Vec<Ingested>>>,
) {
    match together(pool, instance, &group).await {
        Ok(answers) => {
            for (waiting, answer) in group.into_iter().zip(answers) {
                waiting.answer(Ok(answer));
            }
        }
        Err(outcome) => {
            if let Together::Failed(error) = &outcome {
                tracing::debug!(%error, requests = group.len(), "an ingest group failed; writing each alone");
            }
            let mut each = tokio::task::JoinSet::new();
            for waiting in group {
                let (pool, instance) = (pool.clone(), instance.to_owned());
                each.spawn(async move {
                    let Request {
                        tenant_id,
                        events,
                        at,
                    } = &waiting.request;
                    let written = alone(&pool, &instance, tenant_id, events, *at).await;
                    waiting.answer(written);
                });
            }
            each.join_all().await;
        }
    }
}

/// Why a group was not written together.
enum Together {
    /// An event's idempotency key is stored already, or repeated within
    /// the group: each request alone says what that means for it.
    KeySeen,
    Failed(StoreError),
}

impl<E: Into<StoreError>> From<E> for Together {
    fn from(error: E) -> Self {
        Self::Failed(error.into())
    }
}

/// One row of `deliveries` to insert, in the group's order.
struct Row<'a> {
    tenant_id: &'a str,
    event_id: &'a str,
    delivery: &'a crate::store::NewDelivery,
    at: Millis,
    lease_until: Option<Millis>,
    head: bool,
}

/// Every request of the group in one transaction: each request's answer.
async fn together(
    pool: &PgPool,
    instance: &str,
    group: &[Waiting<Request, Vec<Ingested>>],
) -> Result<Vec<Vec<Ingested>>, Together> {
    let group: Vec<&Request> = group.iter().map(|w| &w.request).collect();
    let mut tx = pool.begin().await?;
    lock_tickets(
        &mut tx,
        group
            .iter()
            .flat_map(|r| &r.events)
            .flat_map(|e| &e.deliveries)
            .map(|d| (d.webhook_id.as_str(), d.ticket_id.as_str())),
    )
    .await?;

    let events: Vec<(&Request, &NewEvent)> = group
        .iter()
        .flat_map(|r| r.events.iter().map(move |e| (*r, e)))
        .collect();
    let inserted = sqlx::query(
        "INSERT INTO events (id, tenant_id, idempotency_key, body, received_at, event_type, test)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[],
                              $6::TEXT[], $7::BOOLEAN[])
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL
         DO NOTHING",
    )
    .bind(column(&events, |(_, e)| e.id.as_str()))
    .bind(column(&events, |(r, _)| r.tenant_id.as_str()))
    .bind(column(&events, |(_, e)| e.idempotency_key.as_deref()))
    .bind(column(&events, |(_, e)| e.body.as_str()))
    .bind(column(&events, |(r, _)| r.at))
    .bind(column(&events, |(_, e)| e.event_type.as_str()))
    .bind(column(&events, |(_, e)| e.test))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() != events.len() as u64 {
        return Err(Together::KeySeen);
    }

    // Whether each webhook takes deliveries and until when its breaker
    // holds them back: the store has the last word (see `alone`).
    let webhook_ids: Vec<&str> = group
        .iter()
        .flat_map(|r| &r.events)
        .flat_map(|e| &e.deliveries)
        .map(|d| d.webhook_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // A paced webhook (a rate limit) is never leased at ingest: its
    // claims pace it.
    let mut states: HashMap<(String, String), (bool, Option<Millis>)> = HashMap::new();
    if !webhook_ids.is_empty() {
        let rows = sqlx::query(
            "SELECT id, tenant_id, enabled,
                CASE WHEN rate_limit IS NULL THEN paused_until ELSE $2 END AS paused_until
             FROM webhooks WHERE id = ANY($1)",
        )
        .bind(&webhook_ids)
        .bind(Millis::MAX)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            states.insert(
                (row.try_get("tenant_id")?, row.try_get("id")?),
                (row.try_get("enabled")?, row.try_get("paused_until")?),
            );
        }
    }

    // The (webhook, ticket) pairs that have a pending delivery already: a
    // new one behind it is not its ticket's head, and waits its turn
    // rather than being leased.
    let wanted: Vec<(&str, &str)> = group
        .iter()
        .flat_map(|r| &r.events)
        .flat_map(|e| &e.deliveries)
        .map(|d| (d.webhook_id.as_str(), d.ticket_id.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut pending: HashSet<(String, String)> = HashSet::new();
    if !wanted.is_empty() {
        let rows = sqlx::query(
            // One index seek per pair (LATERAL … LIMIT 1): a join let the
            // planner read every pending delivery of the webhook instead.
            "SELECT w.webhook_id, w.ticket_id
             FROM UNNEST($1::TEXT[], $2::TEXT[]) AS w (webhook_id, ticket_id)
             CROSS JOIN LATERAL (
                 SELECT 1 FROM deliveries d
                 WHERE d.state = 'pending' AND d.webhook_id = w.webhook_id
                   AND d.ticket_id = w.ticket_id
                 LIMIT 1) AS p",
        )
        .bind(column(&wanted, |(w, _)| *w))
        .bind(column(&wanted, |(_, t)| *t))
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            pending.insert((row.try_get("webhook_id")?, row.try_get("ticket_id")?));
        }
    }

    // The token of the leases this group takes.
    let token = ulid::Ulid::new().to_string();
    let mut rows: Vec<Row<'_>> = Vec::new();
    let mut answers: Vec<Vec<Ingested>> = Vec::with_capacity(group.len());
    for request in &group {
        let mut answer = Vec::with_capacity(request.events.len());
        for event in &request.events {
            let mut stored = 0;
            let mut leased = Vec::new();
            for delivery in &event.deliveries {
                let key = (request.tenant_id.clone(), delivery.webhook_id.clone());
                let (takes, paused_until) = states.get(&key).copied().unwrap_or((true, None));
                if !takes {
                    continue;
                }
                stored += 1;
                let paused = paused_until.unwrap_or(0) > request.at;
                // Nothing stored before it, in the database or in this
                // group, waits: it is its ticket's head.
                let head =
                    pending.insert((delivery.webhook_id.clone(), delivery.ticket_id.clone()));
                let lease_until = delivery.lease_until.filter(|_| head && !paused);
                if lease_until.is_some() {
                    leased.push(Claimed::at_ingest(&request.tenant_id, delivery, &token));
                }
                rows.push(Row {
                    tenant_id: &request.tenant_id,
                    event_id: &event.id,
                    delivery,
                    at: request.at,
                    lease_until,
                    head,
                });
            }
            answer.push(Ingested {
                event_id: event.id.clone(),
                new: true,
                stored,
                leased,
            });
        }
        answers.push(answer);
    }
    insert_deliveries(&mut tx, &rows, &token).await?;

    let mut leased: Vec<&mut Claimed> = answers
        .iter_mut()
        .flatten()
        .flat_map(|a| &mut a.leased)
        .collect();
    let at = group.iter().map(|r| r.at).max().unwrap_or_default();
    fill_targets(&mut tx, at, &mut leased).await?;
    if leased.len() < rows.len() {
        notify_deliveries(&mut tx, instance).await?;
    }
    tx.commit().await?;
    Ok(answers)
}

/// Inserts the rows in their order (`seq` follows it).
async fn insert_deliveries<'a>(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[Row<'a>],
    token: &str,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, ticket_id,
            payload, explanation, state, next_attempt_at, leased_until, lease, created_at,
            updated_at, head)
         SELECT id, tenant_id, webhook_id, event_id, event_type, ticket_id, payload,
            explanation, 'pending', due, leased_until,
            CASE WHEN leased_until IS NULL THEN NULL ELSE $12 END, at, at, head
         FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                     $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[],
                     $13::BOOLEAN[])
              WITH ORDINALITY AS r (id, tenant_id, webhook_id, event_id, event_type, ticket_id,
                     payload, explanation, due, leased_until, at, head, n)
         ORDER BY n",
    )
    .bind(column(rows, |r| &r.delivery.id))
    .bind(column(rows, |r| r.tenant_id))
    .bind(column(rows, |r| &r.delivery.webhook_id))
    .bind(column(rows, |r| r.event_id))
    .bind(column(rows, |r| &r.delivery.event_type))
    .bind(column(rows, |r| &r.delivery.ticket_id))
    .bind(column(rows, |r| &r.delivery.payload))
    .bind(column(rows, |r| &r.delivery.explanation))
    .bind(column(rows, |r| r.delivery.due.unwrap_or(r.at)))
    .bind(column(rows, |r| r.lease_until))
    .bind(column(rows, |r| r.at))
    .bind(token)
    .bind(column(rows, |r| r.head))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One request in a transaction of its own, statement by statement: what
/// tells a repeated idempotency key (answered with the event first stored
/// under it) from a mismatch.
async fn alone(
    pool: &PgPool,
    instance: &str,
    tenant_id: &str,
    events: &[NewEvent],
    at: Millis,
) -> Result<Vec<Ingested>, StoreError> {
    let mut tx = pool.begin().await?;
    lock_tickets(
        &mut tx,
        events
            .iter()
            .flat_map(|e| &e.deliveries)
            .map(|d| (d.webhook_id.as_str(), d.ticket_id.as_str())),
    )
    .await?;
    let mut enabled: HashMap<String, (bool, bool)> = HashMap::new();
    let mut answers: Vec<Ingested> = Vec::with_capacity(events.len());
    // The token of the leases this write takes.
    let token = ulid::Ulid::new().to_string();
    for (index, event) in events.iter().enumerate() {
        let stored = sqlx::query(
            "INSERT INTO events (id, tenant_id, idempotency_key, body, received_at, event_type,
                test)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL
             DO NOTHING",
        )
        .bind(&event.id)
        .bind(tenant_id)
        .bind(&event.idempotency_key)
        .bind(&event.body)
        .bind(at)
        .bind(&event.event_type)
        .bind(event.test)
        .execute(&mut *tx)
        .await?;
        if stored.rows_affected() == 0 {
            let row = sqlx::query(
                "SELECT id, body FROM events WHERE tenant_id = $1 AND idempotency_key = $2",
            )
            .bind(tenant_id)
            .bind(&event.idempotency_key)
            .fetch_one(&mut *tx)
            .await?;
            let (earlier, body): (String, String) = (row.try_get("id")?, row.try_get("body")?);
            let mixed = whole_request(event) && answers.iter().any(|a| a.new);
            if mixed || !same_event(&body, &event.body) {
                return Err(StoreError::IdempotencyMismatch(IdempotencyMismatch {
                    index,
                }));
            }
            answers.push(Ingested {
                event_id: earlier,
                new: false,
                stored: 0,
                leased: Vec::new(),
            });
            continue;
        }
        if whole_request(event) && answers.iter().any(|a| !a.new) {
            return Err(StoreError::IdempotencyMismatch(IdempotencyMismatch {
                index,
            }));
        }
        let mut leased = Vec::new();
        let mut stored = 0;
        for delivery in &event.deliveries {
            let (takes, paused) = match enabled.get(&delivery.webhook_id) {
                Some(state) => *state,
                None => {
                    // The store has the last word (see the SQLite store):
                    // on whether it takes deliveries, and on whether an
                    // open breaker holds them back.
                    let state: Option<(bool, bool)> = sqlx::query_as(
                        "SELECT enabled, COALESCE(paused_until, 0) > $3 OR rate_limit IS NOT NULL
                         FROM webhooks WHERE id = $1 AND tenant_id = $2",
                    )
                    .bind(&delivery.webhook_id)
                    .bind(tenant_id)
                    .bind(at)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let state = state.unwrap_or((true, false));
                    enabled.insert(delivery.webhook_id.clone(), state);
                    state
                }
            };
            if !takes {
                continue;
            }
            stored += 1;
            // Its ticket's head when nothing of the ticket waits for the
            // webhook.
            let waits: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM deliveries
                 WHERE state = 'pending' AND webhook_id = $1 AND ticket_id = $2 LIMIT 1",
            )
            .bind(&delivery.webhook_id)
            .bind(&delivery.ticket_id)
            .fetch_optional(&mut *tx)
            .await?;
            let head = waits.is_none();
            let lease_until = delivery.lease_until.filter(|_| head && !paused);
            sqlx::query(
                "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type,
                    ticket_id, payload, explanation, state, next_attempt_at, leased_until,
                    lease, created_at, updated_at, head)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $12, $11, $11, $13)",
            )
            .bind(&delivery.id)
            .bind(tenant_id)
            .bind(&delivery.webhook_id)
            .bind(&event.id)
            .bind(&delivery.event_type)
            .bind(&delivery.ticket_id)
            .bind(&delivery.payload)
            .bind(&delivery.explanation)
            .bind(delivery.due.unwrap_or(at))
            .bind(lease_until)
            .bind(at)
            .bind(lease_until.map(|_| &token))
            .bind(head)
            .execute(&mut *tx)
            .await?;
            if lease_until.is_some() {
                leased.push(Claimed::at_ingest(tenant_id, delivery, &token));
            }
        }
        answers.push(Ingested {
            event_id: event.id.clone(),
            new: true,
            stored,
            leased,
        });
    }
    let stored: usize = answers.iter().map(|a| a.stored).sum();
    let mut leased: Vec<&mut Claimed> = answers.iter_mut().flat_map(|a| &mut a.leased).collect();
    fill_targets(&mut tx, at, &mut leased).await?;
    if leased.len() < stored {
        notify_deliveries(&mut tx, instance).await?;
    }
    tx.commit().await?;
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::Request;
    use crate::store::{NewDelivery, NewEvent};

    fn request(tickets: &[&str]) -> Request {
        let deliveries = tickets
            .iter()
            .map(|ticket| NewDelivery {
                id: format!("msg_{ticket}"),
                webhook_id: "wh_1".to_owned(),
                event_type: "TicketCreated".to_owned(),
                ticket_id: (*ticket).to_owned(),
                payload: String::new(),
                explanation: String::new(),
                due: None,
                lease_until: None,
            })
            .collect();
        Request {
            tenant_id: "a".to_owned(),
            events: vec![NewEvent {
                id: "evt_1".to_owned(),
                idempotency_key: None,
                body: "{}".to_owned(),
                event_type: "TicketCreated".to_owned(),
                test: false,
                deliveries,
            }],
            at: 0,
        }
    }

    /// A busy ticket's requests all go to one lane.
    #[test]
    fn a_request_goes_to_its_first_tickets_lane() {
        assert_eq!(request(&["t", "u"]).lane(), request(&["t"]).lane());
        assert_ne!(request(&["t"]).lane(), request(&["u"]).lane());
        assert_eq!(request(&[]).lane(), 0, "no delivery, no lock");
    }
}
