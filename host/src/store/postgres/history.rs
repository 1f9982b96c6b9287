//! A tenant's history and the delivery log on Postgres: the reads behind a
//! backtest, a replay's and a recover's writes, and the health chart's
//! attempts. What both stores decide alike (which events a read takes,
//! which index the log walks) is in `policy`.

use std::collections::{HashMap, HashSet};

use sqlx::{PgPool, Row as _};

use super::{delivery, lock_tickets, notify_deliveries};
use crate::store::policy::{ATTEMPT_POINTS, LogWalk, history_start, in_order, pick_history};
use crate::store::{
    AttemptPoint, DeliveryRecord, EventPlace, HistoryQuery, LOG_SCAN, LogFilter, LogPage, Millis,
    Replayed, StoreError, StoredEvent,
};

fn dollar(n: u8) -> String {
    format!("${n}")
}

pub(super) async fn delivery_log(
    pool: &PgPool,
    tenant_id: &str,
    filter: &LogFilter,
    before: Option<i64>,
    limit: u32,
) -> Result<LogPage, StoreError> {
    let walk = LogWalk::of(filter);
    let before = before.unwrap_or(i64::MAX);
    let statement = walk.page(dollar);
    let rows = sqlx::query(&statement)
        .bind(tenant_id)
        .bind(&filter.webhook_id)
        .bind(&filter.ticket_id)
        .bind(&filter.state)
        .bind(&filter.event_type)
        .bind(filter.since.unwrap_or(i64::MIN))
        .bind(filter.until.unwrap_or(i64::MAX))
        .bind(before)
        .bind(i64::from(LOG_SCAN))
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?;
    let mut deliveries: Vec<DeliveryRecord> =
        rows.iter().map(delivery).collect::<Result<_, _>>()?;
    let before = if deliveries.len() > limit as usize {
        deliveries.truncate(limit as usize);
        deliveries.last().map(|d| d.seq)
    } else {
        let statement = walk.end(dollar);
        let end = sqlx::query_scalar(&statement);
        let end = match walk {
            LogWalk::Ticket => end.bind(tenant_id).bind(&filter.ticket_id),
            LogWalk::Webhook => end.bind(&filter.webhook_id),
            LogWalk::Tenant => end.bind(tenant_id),
        };
        end.bind(before)
            .bind(i64::from(LOG_SCAN) - 1)
            .fetch_optional(pool)
            .await?
    };
    Ok(LogPage { deliveries, before })
}

pub(super) async fn history(
    pool: &PgPool,
    tenant_id: &str,
    query: &HistoryQuery,
) -> Result<Vec<StoredEvent>, StoreError> {
    let (from, id) = history_start(query);
    let statement = match query.newest_first {
        true => {
            "SELECT received_at, id, octet_length(body)::BIGINT AS size FROM events
             WHERE tenant_id = $1 AND event_type = $2 AND NOT test
               AND received_at >= $3 AND received_at < $4 AND (received_at, id) < ($5, $6)
             ORDER BY received_at DESC, id DESC LIMIT $7"
        }
        false => {
            "SELECT received_at, id, octet_length(body)::BIGINT AS size FROM events
             WHERE tenant_id = $1 AND event_type = $2 AND NOT test
               AND received_at >= $3 AND received_at < $4 AND (received_at, id) > ($5, $6)
             ORDER BY received_at, id LIMIT $7"
        }
    };
    let mut found = Vec::new();
    for event_type in &query.types {
        let rows = sqlx::query(statement)
            .bind(tenant_id)
            .bind(event_type)
            .bind(query.since)
            .bind(query.until)
            .bind(from)
            .bind(id)
            .bind(i64::from(query.limit))
            .fetch_all(pool)
            .await?;
        for row in rows {
            let place = EventPlace {
                received_at: row.try_get("received_at")?,
                id: row.try_get("id")?,
            };
            found.push((place, row.try_get::<i64, _>("size")?.unsigned_abs()));
        }
    }
    let picked = pick_history(found, query);
    let ids: Vec<&str> = picked.iter().map(|p| p.id.as_str()).collect();
    let rows = sqlx::query("SELECT id, body FROM events WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    let mut bodies = HashMap::with_capacity(rows.len());
    for row in rows {
        bodies.insert(
            row.try_get::<String, _>("id")?,
            row.try_get::<String, _>("body")?,
        );
    }
    Ok(in_order(picked, bodies))
}

/// Stores a replay's deliveries (see `Store::replay`). Under the locks of
/// the tickets' queues, as every writer to a queue takes them, the events
/// that have a delivery to the webhook already are left out, and the
/// first of each ticket is its queue's head when nothing of it waits.
pub(super) async fn replay(
    pool: &PgPool,
    instance: &str,
    tenant_id: &str,
    webhook_id: &str,
    deliveries: Vec<Replayed>,
    at: Millis,
) -> Result<u64, StoreError> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    lock_tickets(
        &mut tx,
        deliveries
            .iter()
            .map(|r| (webhook_id, r.delivery.ticket_id.as_str())),
    )
    .await?;
    let event_ids: Vec<&str> = deliveries.iter().map(|r| r.event_id.as_str()).collect();
    let delivered: HashSet<String> = sqlx::query_scalar(
        "SELECT event_id FROM deliveries WHERE webhook_id = $1 AND event_id = ANY($2)",
    )
    .bind(webhook_id)
    .bind(&event_ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let tickets: Vec<&str> = deliveries
        .iter()
        .map(|r| r.delivery.ticket_id.as_str())
        .collect();
    let mut waiting = waiting(&mut tx, webhook_id, &tickets).await?;
    let mut seen = HashSet::new();
    let new: Vec<(&Replayed, bool)> = deliveries
        .iter()
        .filter(|r| !delivered.contains(&r.event_id) && seen.insert(r.event_id.as_str()))
        .map(|r| (r, waiting.insert(r.delivery.ticket_id.clone())))
        .collect();
    let column =
        |field: fn(&Replayed) -> &str| new.iter().map(|(r, _)| field(r)).collect::<Vec<_>>();
    let stored = sqlx::query(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, ticket_id,
            payload, explanation, state, next_attempt_at, created_at, updated_at, head)
         SELECT u.id, $1, $2, u.event_id, u.event_type, u.ticket_id, u.payload, u.explanation,
                'pending', $3, $3, $3, u.head
         FROM UNNEST($4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[],
                     $10::BOOLEAN[])
              WITH ORDINALITY AS u(id, event_id, event_type, ticket_id, payload, explanation,
                                   head, n)
         WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = u.event_id AND e.tenant_id = $1)
         ORDER BY u.n
         ON CONFLICT (event_id, webhook_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(webhook_id)
    .bind(at)
    .bind(column(|r| &r.delivery.id))
    .bind(column(|r| &r.event_id))
    .bind(column(|r| &r.delivery.event_type))
    .bind(column(|r| &r.delivery.ticket_id))
    .bind(column(|r| &r.delivery.payload))
    .bind(column(|r| &r.delivery.explanation))
    .bind(new.iter().map(|(_, head)| *head).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if stored > 0 {
        notify_deliveries(&mut tx, instance).await?;
    }
    tx.commit().await?;
    Ok(stored)
}

/// Makes failed deliveries pending again (see `Store::recover`), under
/// their tickets' locks: the oldest of each ticket becomes its queue's
/// head when nothing of it waits.
pub(super) async fn recover(
    pool: &PgPool,
    instance: &str,
    tenant_id: &str,
    webhook_id: &str,
    since: Millis,
    limit: u32,
    at: Millis,
) -> Result<(u64, bool), StoreError> {
    let mut tx = pool.begin().await?;
    let failed: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, ticket_id FROM deliveries
         WHERE webhook_id = $1 AND tenant_id = $2 AND state = 'failed' AND updated_at >= $3
         ORDER BY seq LIMIT $4",
    )
    .bind(webhook_id)
    .bind(tenant_id)
    .bind(since)
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *tx)
    .await?;
    let more = failed.len() > limit as usize;
    let failed = &failed[..failed.len().min(limit as usize)];
    if failed.is_empty() {
        return Ok((0, more));
    }
    lock_tickets(
        &mut tx,
        failed.iter().map(|(_, t)| (webhook_id, t.as_str())),
    )
    .await?;
    let tickets: Vec<&str> = failed.iter().map(|(_, t)| t.as_str()).collect();
    let mut waiting = waiting(&mut tx, webhook_id, &tickets).await?;
    let heads: Vec<bool> = failed
        .iter()
        .map(|(_, t)| waiting.insert(t.clone()))
        .collect();
    let ids: Vec<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
    // Still failed: another recover or a retry may have taken one since
    // the read, before the locks.
    let recovered = sqlx::query(
        "UPDATE deliveries d SET state = 'pending', next_attempt_at = $1, updated_at = $1,
            leased_until = NULL, lease = NULL, head = u.head
         FROM UNNEST($2::TEXT[], $3::BOOLEAN[]) AS u(id, head)
         WHERE d.id = u.id AND d.state = 'failed'",
    )
    .bind(at)
    .bind(&ids)
    .bind(&heads)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recovered > 0 {
        notify_deliveries(&mut tx, instance).await?;
    }
    tx.commit().await?;
    Ok((recovered, more))
}

/// Which of `tickets` have a delivery to the webhook pending: a delivery
/// added to their queue is not its head.
async fn waiting(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    webhook_id: &str,
    tickets: &[&str],
) -> Result<HashSet<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT ticket_id FROM deliveries
         WHERE state = 'pending' AND webhook_id = $1 AND ticket_id = ANY($2)",
    )
    .bind(webhook_id)
    .bind(tickets)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect())
}

pub(super) async fn attempt_points(
    pool: &PgPool,
    webhook_id: &str,
    since: Millis,
    until: Millis,
    limit: u32,
) -> Result<Vec<AttemptPoint>, StoreError> {
    let rows = sqlx::query(ATTEMPT_POINTS)
        .bind(webhook_id)
        .bind(since)
        .bind(until)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(AttemptPoint {
                started_at: row.try_get("started_at")?,
                duration_ms: row.try_get("duration_ms")?,
                outcome: row.try_get("outcome")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}
