//! Attempts recorded on Postgres, committed in groups (see `group.rs`):
//! under load, every delivery's record would otherwise be a transaction of
//! its own, half a dozen round trips and a commit each.
//!
//! A group whose outcomes are all plain (delivered, to retry, failed for
//! good or cancelled, with the webhook's health unchanged or healthy) is
//! written in one transaction of set-based statements. Whatever else
//! (an outcome that may disable a webhook, a lease lost, a failed write)
//! is written alone ([`alone`]), statement by statement, as the whole
//! group is when writing it together fails. Each caller gets the answer it
//! would have had alone.

use std::collections::{BTreeSet, HashMap};

use sqlx::{PgPool, Postgres, Row as _, Transaction};

use super::group::{Groups, Waiting};
use super::{claimed, column, disable, fill_targets, lock_tickets, notify_webhook, ticket_lock};
use crate::store::policy::{
    GONE_REASON, failing_reason, free, last_error, outcome, run_behind, state_after,
};
use crate::store::{Attempt, Claimed, Finished, HAND_ON, Health, Millis, Next, StoreError, now};

/// Writer tasks. One: the records waiting while a group commits are the
/// next group. A second writer, writing beside it, made every writer
/// slower on a two-core machine (more backends contending for the same
/// pages and cores) and ingest with them: 3,409–3,416 against
/// 3,715–3,812 ingest requests/s with one (BENCHMARKS.md).
const WRITERS: usize = 1;

/// One attempt to record (see [`crate::store::Store::finish`]).
#[derive(Debug)]
pub(super) struct Request {
    pub(super) delivery_id: String,
    pub(super) lease: String,
    pub(super) attempt: Option<Attempt>,
    pub(super) next: Next,
    pub(super) health: Health,
    pub(super) chain: Option<Millis>,
}

/// The queue of attempts to record.
pub(super) type Records = Groups<Request, Finished>;

/// Starts the writers on `pool`; `instance` names this process in the
/// notifications it sends.
pub(super) fn start(pool: PgPool, instance: String) -> Records {
    Groups::start(1, WRITERS, move |group| {
        let (pool, instance) = (pool.clone(), instance.clone());
        async move { write_group(&pool, &instance, group).await }
    })
}

/// Writes the plain requests of a group together and the others alone;
/// when writing together fails, each alone.
pub(super) async fn write_group(
    pool: &PgPool,
    instance: &str,
    group: Vec<Waiting<Request, Finished>>,
) {
    let at = now();
    let (plain, other): (Vec<_>, Vec<_>) = group
        .into_iter()
        .partition(|w| matches!(w.request.health, Health::Unchanged | Health::Healthy));
    let mut alone_ones = other;
    if !plain.is_empty() {
        match together(pool, &plain, at).await {
            Ok(answers) => {
                for (waiting, answer) in plain.into_iter().zip(answers) {
                    waiting.answer(Ok(answer));
                }
            }
            Err(error) => {
                if plain.len() > 1 {
                    tracing::debug!(%error, records = plain.len(), "a group of records failed; writing each alone");
                }
                alone_ones.extend(plain);
            }
        }
    }
    let mut each = tokio::task::JoinSet::new();
    for waiting in alone_ones {
        let (pool, instance) = (pool.clone(), instance.to_owned());
        each.spawn(async move {
            let written = alone(&pool, &instance, &waiting.request, at).await;
            waiting.answer(written);
        });
    }
    each.join_all().await;
}

/// Every plain request of the group in one transaction: each one's answer.
/// Fails as a whole (nothing written) when any delivery is not where its
/// request expects it: gone, or leased to another.
async fn together(
    pool: &PgPool,
    group: &[Waiting<Request, Finished>],
    at: Millis,
) -> Result<Vec<Finished>, StoreError> {
    let requests: Vec<&Request> = group.iter().map(|w| &w.request).collect();
    let ids: Vec<&str> = requests.iter().map(|r| r.delivery_id.as_str()).collect();
    let mut tx = pool.begin().await?;
    let rows = sqlx::query("SELECT id, webhook_id, ticket_id FROM deliveries WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    let mut queues: HashMap<String, (String, String)> = HashMap::new();
    for row in &rows {
        queues.insert(
            row.try_get("id")?,
            (row.try_get("webhook_id")?, row.try_get("ticket_id")?),
        );
    }
    if queues.len() != requests.len() {
        return Err(StoreError::LeaseLost(
            "a delivery of the group is gone".to_owned(),
        ));
    }
    let queue = |r: &Request| &queues[r.delivery_id.as_str()];
    lock_tickets(
        &mut tx,
        requests
            .iter()
            .map(|r| queue(r))
            .map(|(w, t)| (w.as_str(), t.as_str())),
    )
    .await?;

    let tried: Vec<(&&Request, &Attempt)> = requests
        .iter()
        .filter_map(|r| Some((r, r.attempt.as_ref()?)))
        .collect();
    if !tried.is_empty() {
        sqlx::query(
            "INSERT INTO attempts (delivery_id, started_at, duration_ms, status, response,
                error_kind, error, webhook_id, outcome)
             SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::INTEGER[],
                                  $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[])",
        )
        .bind(column(&tried, |(r, _)| r.delivery_id.as_str()))
        .bind(column(&tried, |(_, a)| a.started_at))
        .bind(column(&tried, |(_, a)| a.duration_ms))
        .bind(column(&tried, |(_, a)| a.status.map(i32::from)))
        .bind(column(&tried, |(_, a)| a.response.as_deref()))
        .bind(column(&tried, |(_, a)| a.error_kind.as_deref()))
        .bind(column(&tried, |(_, a)| a.error.as_deref()))
        .bind(column(&tried, |(r, _)| queue(r).0.as_str()))
        .bind(column(&tried, |(r, _)| outcome(r.next)))
        .execute(&mut *tx)
        .await?;
    }

    let states: Vec<(&'static str, Option<Millis>)> =
        requests.iter().map(|r| state_after(r.next)).collect();
    // `d.id = ANY($1)` beside the join: an index condition the planner
    // takes, where the join alone may have it scan the table.
    let updated = sqlx::query(
        "UPDATE deliveries d SET state = u.state, next_attempt_at = u.due, leased_until = NULL,
            lease = NULL, attempts = d.attempts + u.tried, last_error = u.last_error,
            updated_at = $7
         FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::INTEGER[],
                     $6::TEXT[]) AS u (id, lease, state, due, tried, last_error)
         WHERE d.id = ANY($1) AND d.id = u.id AND COALESCE(d.lease, '') = u.lease
         RETURNING d.id, d.head",
    )
    .bind(&ids)
    .bind(column(&requests, |r| r.lease.as_str()))
    .bind(column(&states, |(state, _)| *state))
    .bind(column(&states, |(_, due)| *due))
    .bind(column(&requests, |r| i32::from(r.attempt.is_some())))
    .bind(column(&requests, |r| {
        last_error(r.next, r.attempt.as_ref().and_then(|a| a.error.as_deref()))
    }))
    .bind(at)
    .fetch_all(&mut *tx)
    .await?;
    if updated.len() != requests.len() {
        return Err(StoreError::LeaseLost(
            "a delivery of the group is leased to another".to_owned(),
        ));
    }
    let mut heads: HashMap<String, bool> = HashMap::new();
    for row in &updated {
        heads.insert(row.try_get("id")?, row.try_get("head")?);
    }

    let healthy: Vec<&str> = requests
        .iter()
        .filter(|r| r.health == Health::Healthy)
        .map(|r| queue(r).0.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !healthy.is_empty() {
        sqlx::query(
            "UPDATE webhooks SET failing_since = NULL
             WHERE id = ANY($1) AND failing_since IS NOT NULL",
        )
        .bind(&healthy)
        .execute(&mut *tx)
        .await?;
    }

    // The queues whose head left: each one's next becomes its head, and is
    // handed on to the request that asked for it (see `next_head`).
    let left: Vec<&Request> = requests
        .iter()
        .copied()
        .filter(|r| heads[r.delivery_id.as_str()] && state_after(r.next).0 != "pending")
        .collect();
    let mut handed: HashMap<(String, String), Vec<Claimed>> = HashMap::new();
    if !left.is_empty() {
        let rows = sqlx::query(
            // One index seek per queue (LATERAL … LIMIT 1): a join let the
            // planner read every pending delivery of the webhook instead.
            "UPDATE deliveries SET head = TRUE WHERE seq IN (
                SELECT n.seq FROM UNNEST($1::TEXT[], $2::TEXT[]) AS q (webhook_id, ticket_id)
                CROSS JOIN LATERAL (
                    SELECT d.seq FROM deliveries d
                    WHERE d.state = 'pending' AND d.webhook_id = q.webhook_id
                      AND d.ticket_id = q.ticket_id
                    ORDER BY d.seq LIMIT 1) AS n)
             RETURNING seq, webhook_id, ticket_id, next_attempt_at, leased_until,
                EXISTS (SELECT 1 FROM webhooks w
                        WHERE w.id = deliveries.webhook_id
                          AND (w.paused_until > $3 OR w.rate_limit IS NOT NULL)) AS paused",
        )
        .bind(column(&left, |r| queue(r).0.as_str()))
        .bind(column(&left, |r| queue(r).1.as_str()))
        .bind(at)
        .fetch_all(&mut *tx)
        .await?;
        let chains: HashMap<&(String, String), Millis> = left
            .iter()
            .filter_map(|r| Some((queue(r), r.chain?)))
            .collect();
        let mut free_heads = Vec::new();
        let mut keys: HashMap<i64, (String, String)> = HashMap::new();
        for row in &rows {
            let key: (String, String) = (row.try_get("webhook_id")?, row.try_get("ticket_id")?);
            let seq: i64 = row.try_get("seq")?;
            let paused: bool = row.try_get("paused")?;
            let free_head = free(
                row.try_get("next_attempt_at")?,
                row.try_get("leased_until")?,
                at,
            ) && !paused;
            if let (true, Some(until)) = (free_head, chains.get(&key)) {
                free_heads.push((seq, *until));
                keys.insert(seq, key);
            }
        }
        for (head, run) in hand_on(&mut tx, &free_heads, at).await? {
            if let Some(key) = keys.remove(&head) {
                handed.insert(key, run);
            }
        }
    }
    tx.commit().await?;
    Ok(requests
        .iter()
        .map(|r| Finished {
            disabled: false,
            next: handed.remove(queue(r)).unwrap_or_default(),
        })
        .collect())
}

/// One request in a transaction of its own, statement by statement: what
/// may disable a webhook, and what tells a lost lease apart.
async fn alone(
    pool: &PgPool,
    instance: &str,
    request: &Request,
    at: Millis,
) -> Result<Finished, StoreError> {
    let Request {
        delivery_id,
        lease,
        attempt,
        next,
        health,
        chain,
    } = request;
    let (next, health, chain) = (*next, *health, *chain);
    let mut tx = pool.begin().await?;
    // The ticket's lock first (as every writer takes it: before the
    // delivery's row), for a new head chosen while no ingest adds to
    // the ticket's queue.
    let ticket: Option<(String, String)> =
        sqlx::query_as("SELECT webhook_id, ticket_id FROM deliveries WHERE id = $1")
            .bind(delivery_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((webhook_id, ticket_id)) = ticket else {
        return Ok(Finished::default());
    };
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ticket_lock(&webhook_id, &ticket_id))
        .execute(&mut *tx)
        .await?;
    if let Some(attempt) = attempt {
        sqlx::query(
            "INSERT INTO attempts (delivery_id, started_at, duration_ms, status, response,
                error_kind, error, webhook_id, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(delivery_id)
        .bind(attempt.started_at)
        .bind(attempt.duration_ms)
        .bind(attempt.status.map(i32::from))
        .bind(&attempt.response)
        .bind(&attempt.error_kind)
        .bind(&attempt.error)
        .bind(&webhook_id)
        .bind(outcome(next))
        .execute(&mut *tx)
        .await?;
    }
    let (state, due) = state_after(next);
    let head: Option<bool> = sqlx::query_scalar(
        "UPDATE deliveries SET state = $1, next_attempt_at = $2, leased_until = NULL,
            lease = NULL, attempts = attempts + $3, last_error = $4, updated_at = $5
         WHERE id = $6 AND COALESCE(lease, '') = $7 RETURNING head",
    )
    .bind(state)
    .bind(due)
    .bind(i32::from(attempt.is_some()))
    .bind(last_error(
        next,
        attempt.as_ref().and_then(|a| a.error.as_deref()),
    ))
    .bind(at)
    .bind(delivery_id)
    .bind(lease)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(head) = head else {
        // Dropping the transaction rolls the attempt's record back.
        return Err(StoreError::LeaseLost(delivery_id.to_owned()));
    };
    let disabled: bool = match health {
        Health::Unchanged => false,
        Health::Healthy => {
            sqlx::query(
                "UPDATE webhooks SET failing_since = NULL
                 WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(&webhook_id)
            .execute(&mut *tx)
            .await?;
            false
        }
        Health::Gone => disable(&mut tx, &webhook_id, GONE_REASON, at).await?,
        Health::Failing { disable_after } => {
            let since: Option<Option<Millis>> = sqlx::query_scalar(
                "UPDATE webhooks SET failing_since = COALESCE(failing_since, $1)
                 WHERE id = $2 RETURNING failing_since",
            )
            .bind(at)
            .bind(&webhook_id)
            .fetch_optional(&mut *tx)
            .await?;
            match since.flatten() {
                Some(since) if at - since > disable_after => {
                    disable(&mut tx, &webhook_id, &failing_reason(disable_after), at).await?
                }
                _ => false,
            }
        }
    };
    if disabled {
        let tenant_id: String = sqlx::query_scalar("SELECT tenant_id FROM webhooks WHERE id = $1")
            .bind(&webhook_id)
            .fetch_one(&mut *tx)
            .await?;
        notify_webhook(&mut tx, instance, &tenant_id, &webhook_id).await?;
    }
    let next = match head && state != "pending" {
        true => next_head(&mut tx, &webhook_id, &ticket_id, chain, at).await?,
        false => Vec::new(),
    };
    tx.commit().await?;
    Ok(Finished { disabled, next })
}

/// The ticket's next delivery to the webhook becomes its head (the
/// caller holds the ticket's lock); with `chain`, it is leased until then
/// and returned with those behind it when it is due, unleased, and its
/// webhook's breaker is closed (see [`Store::finish`]).
async fn next_head(
    tx: &mut Transaction<'_, Postgres>,
    webhook_id: &str,
    ticket_id: &str,
    chain: Option<Millis>,
    at: Millis,
) -> Result<Vec<Claimed>, StoreError> {
    let next: Option<(i64, Millis, Option<Millis>)> = sqlx::query_as(
        "UPDATE deliveries SET head = TRUE WHERE seq = (
            SELECT seq FROM deliveries
            WHERE state = 'pending' AND webhook_id = $1 AND ticket_id = $2
            ORDER BY seq LIMIT 1)
         RETURNING seq, next_attempt_at, leased_until",
    )
    .bind(webhook_id)
    .bind(ticket_id)
    .fetch_optional(&mut **tx)
    .await?;
    let (Some(lease_until), Some((seq, due, leased_until))) = (chain, next) else {
        return Ok(Vec::new());
    };
    let paused: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM webhooks
             WHERE id = $1 AND (paused_until > $2 OR rate_limit IS NOT NULL)",
    )
    .bind(webhook_id)
    .bind(at)
    .fetch_optional(&mut **tx)
    .await?;
    if !free(due, leased_until, at) || paused.is_some() {
        return Ok(Vec::new());
    }
    let mut runs = hand_on(tx, &[(seq, lease_until)], at).await?;
    Ok(runs.remove(&seq).unwrap_or_default())
}

/// Leases each of `heads` (a new head's `seq`, free, and its lease's
/// end) with the deliveries behind it ([`run_behind`]) to the caller:
/// each run in order, by its head.
async fn hand_on(
    tx: &mut Transaction<'_, Postgres>,
    heads: &[(i64, Millis)],
    at: Millis,
) -> Result<HashMap<i64, Vec<Claimed>>, StoreError> {
    if heads.is_empty() {
        return Ok(HashMap::new());
    }
    let head_seqs = column(heads, |(seq, _)| *seq);
    let rows = sqlx::query(
        "SELECT h.seq AS head, b.seq, b.next_attempt_at, b.leased_until
         FROM deliveries h CROSS JOIN LATERAL (
             SELECT d.seq, d.next_attempt_at, d.leased_until FROM deliveries d
             WHERE d.state = 'pending' AND d.webhook_id = h.webhook_id
               AND d.ticket_id = h.ticket_id AND d.seq > h.seq
             ORDER BY d.seq LIMIT $2) AS b
         WHERE h.seq = ANY($1)
         ORDER BY h.seq, b.seq",
    )
    .bind(&head_seqs)
    .bind(i64::try_from(HAND_ON - 1).unwrap_or(i64::MAX))
    .fetch_all(&mut **tx)
    .await?;
    let mut behind: HashMap<i64, Vec<(i64, Millis, Option<Millis>)>> = HashMap::new();
    for row in &rows {
        behind.entry(row.try_get("head")?).or_default().push((
            row.try_get("seq")?,
            row.try_get("next_attempt_at")?,
            row.try_get("leased_until")?,
        ));
    }
    // Every delivery of every run: its `seq`, its head's, its lease's end.
    let mut members: Vec<(i64, i64, Millis)> = Vec::new();
    for (head, until) in heads {
        members.push((*head, *head, *until));
        let taken = run_behind(behind.remove(head).unwrap_or_default(), at);
        members.extend(taken.into_iter().map(|seq| (seq, *head, *until)));
    }
    let rows = sqlx::query(
        "UPDATE deliveries d SET leased_until = u.until, lease = $3
         FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS u (seq, until)
         WHERE d.seq = ANY($1) AND d.seq = u.seq
         RETURNING d.seq, d.id, d.tenant_id, d.webhook_id, d.payload, d.attempts, d.lease",
    )
    .bind(column(&members, |(seq, _, _)| *seq))
    .bind(column(&members, |(_, _, until)| *until))
    .bind(ulid::Ulid::new().to_string())
    .fetch_all(&mut **tx)
    .await?;
    let mut leased: HashMap<i64, Claimed> = HashMap::with_capacity(rows.len());
    for row in &rows {
        leased.insert(row.try_get("seq")?, claimed(row)?);
    }
    let mut runs: HashMap<i64, Vec<Claimed>> = HashMap::new();
    for (seq, head, _) in &members {
        if let Some(claimed) = leased.remove(seq) {
            runs.entry(*head).or_default().push(claimed);
        }
    }
    let mut targets: Vec<&mut Claimed> = runs.values_mut().flatten().collect();
    fill_targets(tx, at, &mut targets).await?;
    Ok(runs)
}
