//! Every write of the SQLite store, as plain functions on the writer's
//! transaction (see [`super::writer`]). They run on the writer thread, so
//! they are synchronous and cheap to call: a statement is a call into
//! SQLite, prepared once and cached.

use std::collections::HashMap;

use rusqlite::{OptionalExtension as _, Transaction, params};

use super::policy::{
    GONE_REASON, disabled_definition, failing_reason, free, last_error, outcome, run_behind,
    same_event, slots, state_after, take_slots, take_turns, whole_request,
};
use super::{
    Attempt, Claimed, Finished, HAND_ON, Health, IdempotencyMismatch, Ingested, KeyRecord, Millis,
    NewEvent, Next, Quota, Refusal, Replayed, Room, SecretPlace, StoreError, StoredSecret,
    WebhookRecord,
};

/// A JSON array of strings, for `json_each(?)`.
pub(super) fn json_list<S: serde::Serialize>(items: &[S]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_error(error: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(error))
}

/// Whether the tenant was created (`false`: the id is taken).
pub(super) fn create_tenant(
    tx: &Transaction<'_>,
    id: &str,
    name: &str,
    at: Millis,
) -> rusqlite::Result<bool> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![id, name, at])?;
    Ok(inserted == 1)
}

/// Whether the key was stored (`false`: no such tenant).
pub(super) fn create_key(
    tx: &Transaction<'_>,
    record: &KeyRecord,
    digest: &[u8],
) -> rusqlite::Result<bool> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO api_keys (id, tenant_id, kind, digest, hint, created_at)
             SELECT ?, id, ?, ?, ?, ? FROM tenants WHERE id = ?",
        )?
        .execute(params![
            record.id,
            record.kind.as_str(),
            digest,
            record.hint,
            record.created_at,
            record.tenant_id,
        ])?;
    Ok(inserted == 1)
}

/// Whether a key that was valid is now revoked.
pub(super) fn revoke_key(tx: &Transaction<'_>, key_id: &str, at: Millis) -> rusqlite::Result<bool> {
    let revoked = tx
        .prepare_cached("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")?
        .execute(params![at, key_id])?;
    Ok(revoked == 1)
}

fn insert_secret(
    tx: &Transaction<'_>,
    webhook_id: &str,
    secret: &str,
    at: Millis,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES (?, ?, ?)",
    )?
    .execute(params![webhook_id, secret, at])?;
    Ok(())
}

pub(super) fn create_webhook(
    tx: &Transaction<'_>,
    webhook: &WebhookRecord,
    secret: &str,
    quota: Quota,
) -> rusqlite::Result<()> {
    let (count, weight): (u32, u64) = tx
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(pattern_weight), 0) FROM webhooks WHERE tenant_id = ?",
        )?
        .query_row(params![webhook.tenant_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    if count >= quota.webhooks {
        return Err(Refusal::WebhookQuota(quota.webhooks).into_error());
    }
    check_pattern_weight(weight, webhook, quota)?;
    tx.prepare_cached(
        "INSERT INTO webhooks (id, tenant_id, definition, enabled, revision, created_at,
            updated_at, disabled_reason, client_certificate, client_key, pattern_weight)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        webhook.id,
        webhook.tenant_id,
        webhook.definition,
        webhook.enabled,
        webhook.revision,
        webhook.created_at,
        webhook.updated_at,
        webhook.disabled_reason,
        webhook.client_tls.as_ref().map(|tls| &tls.certificate),
        webhook.client_tls.as_ref().map(|tls| &tls.key),
        webhook.pattern_weight,
    ])?;
    insert_secret(tx, &webhook.id, secret, webhook.created_at)
}

/// Refuses `webhook` when the tenant's other webhooks, weighing `others`,
/// and it weigh more than the quota together.
fn check_pattern_weight(
    others: u64,
    webhook: &WebhookRecord,
    quota: Quota,
) -> rusqlite::Result<()> {
    let total = others + u64::from(webhook.pattern_weight.unwrap_or(0));
    if total > u64::from(quota.pattern_weight) {
        return Err(Refusal::PatternWeight {
            total,
            limit: quota.pattern_weight,
        }
        .into_error());
    }
    Ok(())
}

/// Whether the webhook was at the revision before `webhook.revision` and
/// is now written.
pub(super) fn update_webhook(
    tx: &Transaction<'_>,
    webhook: &WebhookRecord,
    quota: Quota,
) -> rusqlite::Result<bool> {
    let stored: Option<Option<u32>> = tx
        .prepare_cached("SELECT pattern_weight FROM webhooks WHERE tenant_id = ? AND id = ?")?
        .query_row(params![webhook.tenant_id, webhook.id], |row| row.get(0))
        .optional()?;
    let Some(stored) = stored else {
        return Ok(false);
    };
    if webhook.pattern_weight.unwrap_or(0) > stored.unwrap_or(0) {
        let others: u64 = tx
            .prepare_cached(
                "SELECT COALESCE(SUM(pattern_weight), 0) FROM webhooks
                 WHERE tenant_id = ? AND id <> ?",
            )?
            .query_row(params![webhook.tenant_id, webhook.id], |row| row.get(0))?;
        check_pattern_weight(others, webhook, quota)?;
    }
    let updated = tx
        .prepare_cached(
            "UPDATE webhooks SET definition = ?1, enabled = ?2, revision = ?3, updated_at = ?4,
                disabled_reason = ?5, client_certificate = ?9, client_key = ?10,
                pattern_weight = ?11,
                -- enabling again starts a new record of failures
                failing_since = CASE WHEN enabled = 0 AND ?2 THEN NULL ELSE failing_since END
             WHERE tenant_id = ?6 AND id = ?7 AND revision = ?8",
        )?
        .execute(params![
            webhook.definition,
            webhook.enabled,
            webhook.revision,
            webhook.updated_at,
            webhook.disabled_reason,
            webhook.tenant_id,
            webhook.id,
            webhook.revision - 1,
            webhook.client_tls.as_ref().map(|tls| &tls.certificate),
            webhook.client_tls.as_ref().map(|tls| &tls.key),
            webhook.pattern_weight,
        ])?;
    Ok(updated == 1)
}

/// Records weights for webhooks that have none yet.
pub(super) fn set_pattern_weights(
    tx: &Transaction<'_>,
    weights: &[(String, u32)],
) -> rusqlite::Result<()> {
    let mut set = tx.prepare_cached(
        "UPDATE webhooks SET pattern_weight = ? WHERE id = ? AND pattern_weight IS NULL",
    )?;
    for (id, weight) in weights {
        set.execute(params![weight, id])?;
    }
    Ok(())
}

pub(super) fn delete_webhook(
    tx: &Transaction<'_>,
    tenant_id: &str,
    id: &str,
) -> rusqlite::Result<bool> {
    let deleted = tx
        .prepare_cached("DELETE FROM webhooks WHERE tenant_id = ? AND id = ?")?
        .execute(params![tenant_id, id])?;
    Ok(deleted == 1)
}

/// Whether the webhook exists (and now signs with `secret`, the current
/// one keeping until `old_until` if that is after `at`, older ones gone).
pub(super) fn rotate_secret(
    tx: &Transaction<'_>,
    tenant_id: &str,
    id: &str,
    secret: &str,
    old_until: Millis,
    at: Millis,
) -> rusqlite::Result<bool> {
    let touched = tx
        .prepare_cached("UPDATE webhooks SET updated_at = ? WHERE tenant_id = ? AND id = ?")?
        .execute(params![at, tenant_id, id])?;
    if touched == 0 {
        return Ok(false);
    }
    // At most the current secret and one previous sign: earlier ones go,
    // whatever their overlap, and the current one goes too when it is cut
    // off at once.
    tx.prepare_cached(
        "DELETE FROM webhook_secrets WHERE webhook_id = ?1
           AND (expires_at IS NOT NULL OR ?2 <= ?3)",
    )?
    .execute(params![id, old_until, at])?;
    tx.prepare_cached(
        "UPDATE webhook_secrets SET expires_at = ? WHERE webhook_id = ? AND expires_at IS NULL",
    )?
    .execute(params![old_until, id])?;
    insert_secret(tx, id, secret, at)?;
    Ok(true)
}

/// Writes secrets back in place (see [`super::Store::rewrite_secrets`]).
pub(super) fn rewrite_secrets(
    tx: &Transaction<'_>,
    secrets: &[StoredSecret],
) -> rusqlite::Result<()> {
    for secret in secrets {
        match &secret.place {
            SecretPlace::Signing(row) => tx
                .prepare_cached("UPDATE webhook_secrets SET secret = ? WHERE rowid = ?")?
                .execute(params![secret.text, row])?,
            SecretPlace::ClientKey(webhook) => tx
                .prepare_cached("UPDATE webhooks SET client_key = ? WHERE id = ?")?
                .execute(params![secret.text, webhook])?,
        };
    }
    Ok(())
}

/// Stores events and their deliveries (see [`super::Store::ingest`]).
pub(super) fn ingest(
    tx: &Transaction<'_>,
    tenant_id: &str,
    events: &[NewEvent],
    at: Millis,
) -> rusqlite::Result<Vec<Ingested>> {
    let mut insert_event = tx.prepare_cached(
        "INSERT INTO events (id, tenant_id, idempotency_key, body, received_at, event_type, test)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL
         DO NOTHING",
    )?;
    let mut insert_delivery = tx.prepare_cached(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type,
            ticket_id, payload, explanation, state, next_attempt_at, leased_until, lease,
            created_at, updated_at, head)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
    )?;
    // The token of the leases this write takes.
    let token = ulid::Ulid::new().to_string();
    let mut ticket_waits = tx.prepare_cached(
        "SELECT 1 FROM deliveries
         WHERE state = 'pending' AND webhook_id = ? AND ticket_id = ? LIMIT 1",
    )?;
    // The store, not the matcher, has the last word on whether a webhook
    // takes deliveries: a delivery's outcome disables a webhook here first
    // and tells the matcher after, and a write serialised between the two
    // must not store deliveries for it. Looked up once per webhook; what
    // is not the store's to say (no such row) is stored as before.
    // Nor does a webhook whose breaker the store holds open take a lease:
    // its deliveries wait for the pause like any claim's.
    let mut webhook_enabled = tx.prepare_cached(
        "SELECT enabled, COALESCE(paused_until, 0) > ? OR rate_limit IS NOT NULL
         FROM webhooks WHERE id = ? AND tenant_id = ?",
    )?;
    let mut enabled: HashMap<&str, (bool, bool)> = HashMap::new();
    let mut answers: Vec<Ingested> = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let stored = insert_event.execute(params![
            event.id,
            tenant_id,
            event.idempotency_key,
            event.body,
            at,
            event.event_type,
            event.test,
        ])?;
        if stored == 0 {
            let (earlier, body): (String, String) = tx
                .prepare_cached(
                    "SELECT id, body FROM events WHERE tenant_id = ? AND idempotency_key = ?",
                )?
                .query_row(params![tenant_id, event.idempotency_key], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            let mixed = whole_request(event) && answers.iter().any(|a| a.new);
            if mixed || !same_event(&body, &event.body) {
                return Err(mismatch(index));
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
            return Err(mismatch(index));
        }
        let mut leased = Vec::new();
        let mut stored = 0;
        for delivery in &event.deliveries {
            let (takes, paused) = match enabled.get(delivery.webhook_id.as_str()) {
                Some(state) => *state,
                None => {
                    let state = webhook_enabled
                        .query_row(params![at, delivery.webhook_id, tenant_id], |row| {
                            Ok((row.get::<_, bool>(0)?, row.get::<_, bool>(1)?))
                        })
                        .optional()?
                        .unwrap_or((true, false));
                    enabled.insert(&delivery.webhook_id, state);
                    state
                }
            };
            if !takes {
                continue;
            }
            stored += 1;
            // The ticket's head when nothing of it waits for the webhook.
            let head = !ticket_waits.exists(params![delivery.webhook_id, delivery.ticket_id])?;
            let lease_until = delivery.lease_until.filter(|_| head && !paused);
            insert_delivery.execute(params![
                delivery.id,
                tenant_id,
                delivery.webhook_id,
                event.id,
                delivery.event_type,
                delivery.ticket_id,
                delivery.payload,
                delivery.explanation,
                delivery.due.unwrap_or(at),
                lease_until,
                lease_until.map(|_| &token),
                at,
                at,
                head,
            ])?;
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
    fill_targets(tx, at, answers.iter_mut().flat_map(|a| &mut a.leased))?;
    Ok(answers)
}

/// The write's error for a reused idempotency key: it rolls the request's
/// writes back, and the store reads it as [`StoreError::IdempotencyMismatch`].
fn mismatch(index: usize) -> rusqlite::Error {
    Refusal::Idempotency(IdempotencyMismatch { index }).into_error()
}

/// Leases due deliveries (see [`super::Store::claim`]), each with its
/// webhook's URL, state and signing secrets.
///
/// The claim goes webhook by webhook: the webhooks with pending deliveries
/// are found one index seek each, and each with room gives its oldest due
/// deliveries, at most its room. A webhook at its limit or with a long
/// backlog therefore costs one seek, never a scan of its backlog: a dead
/// receiver's thousands of pending retries do not slow the claims of
/// everyone else. The candidates are then grouped by tenant, each tenant
/// capped at its room, and the tenants take turns, so that one tenant's
/// backlog never fills a claim while another's delivery waits.
pub(super) fn claim(
    tx: &Transaction<'_>,
    at: Millis,
    lease_until: Millis,
    limit: u32,
    room: &Room,
) -> rusqlite::Result<Vec<Claimed>> {
    let mut next_webhook = tx.prepare_cached(
        "SELECT webhook_id, tenant_id FROM deliveries
         WHERE state = 'pending' AND head = 1 AND webhook_id > ? ORDER BY webhook_id LIMIT 1",
    )?;
    let mut due = tx.prepare_cached(
        "SELECT next_attempt_at, seq FROM deliveries
         WHERE state = 'pending' AND head = 1 AND webhook_id = ?1 AND next_attempt_at <= ?2
           AND (leased_until IS NULL OR leased_until <= ?2)
         ORDER BY next_attempt_at, seq
         LIMIT ?3",
    )?;
    let mut pace = tx.prepare_cached(
        "SELECT COALESCE(paused_until, 0) > ?2, rate_limit, next_send_at FROM webhooks WHERE id = ?1",
    )?;
    let mut paced = HashMap::new();
    let mut by_tenant: HashMap<String, Vec<(Millis, i64)>> = HashMap::new();
    let mut webhook = String::new();
    while let Some((found, tenant)) = next_webhook
        .query_row([&webhook], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?
    {
        webhook = found;
        let mut room = room.of(&webhook).min(limit).min(room.of_tenant(&tenant));
        let (paused, rate, next): (bool, Option<i64>, Option<i64>) = pace
            .query_row(params![webhook, at], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?
            .unwrap_or((false, None, None));
        if let Some(rate) = rate {
            let free = slots(rate, next, at, room);
            room = u32::try_from(free.0.len()).unwrap_or(0);
            paced.insert(webhook.clone(), free);
        }
        if room == 0 || paused {
            continue;
        }
        let rows = due.query_map(params![webhook, at, room], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        let candidates = by_tenant.entry(tenant).or_default();
        for row in rows {
            candidates.push(row?);
        }
    }
    let candidates = take_turns(by_tenant, room, limit);
    let mut lease = tx.prepare_cached(
        "UPDATE deliveries SET leased_until = ?, lease = ? WHERE seq = ?
         RETURNING id, tenant_id, webhook_id, payload, attempts, lease",
    )?;
    let token = ulid::Ulid::new().to_string();
    let mut claimed = Vec::with_capacity(candidates.len());
    for seq in candidates {
        claimed.push(lease.query_row(params![lease_until, token, seq], claimed_row)?);
    }
    let mut paced_next = tx.prepare_cached("UPDATE webhooks SET next_send_at = ? WHERE id = ?")?;
    for (webhook, next) in take_slots(&mut claimed, paced) {
        paced_next.execute(params![next, webhook])?;
    }
    fill_targets(tx, at, &mut claimed)?;
    // In turns: the order the tenants are served in.
    Ok(claimed)
}

/// A leased delivery as a claim returns it, its target still to fill in.
fn claimed_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Claimed> {
    Ok(Claimed {
        id: row.get("id")?,
        tenant_id: row.get("tenant_id")?,
        webhook_id: row.get("webhook_id")?,
        url: None,
        enabled: false,
        secrets: Vec::new(),
        client_tls: None,
        payload: row.get("payload")?,
        attempts: row.get("attempts")?,
        lease: row.get("lease")?,
        not_before: None,
    })
}

/// Gives each delivery its webhook's URL, state and signing secrets at
/// `at`, with one query for them all.
fn fill_targets<'c>(
    tx: &Transaction<'_>,
    at: Millis,
    claimed: impl IntoIterator<Item = &'c mut Claimed>,
) -> rusqlite::Result<()> {
    let claimed: Vec<&mut Claimed> = claimed.into_iter().collect();
    if claimed.is_empty() {
        return Ok(());
    }
    let webhook_ids: Vec<String> = claimed.iter().map(|c| c.webhook_id.clone()).collect();
    let mut targets = HashMap::new();
    let mut query = tx.prepare_cached(
        "SELECT w.id, json_extract(w.definition, '$.url') AS url, w.enabled,
            w.client_certificate, w.client_key,
            (SELECT json_group_array(secret) FROM (
                SELECT s.secret FROM webhook_secrets s
                WHERE s.webhook_id = w.id AND (s.expires_at IS NULL OR s.expires_at > ?1)
                ORDER BY s.expires_at IS NOT NULL, s.created_at DESC)) AS secrets
         FROM webhooks w WHERE w.id IN (SELECT value FROM json_each(?2))",
    )?;
    let mut rows = query.query(params![at, json_list(&webhook_ids)])?;
    while let Some(row) = rows.next()? {
        let secrets: String = row.get("secrets")?;
        let secrets: Vec<String> = serde_json::from_str(&secrets).map_err(decode_error)?;
        let tls = super::sqlite::client_tls(row.get("client_certificate")?, row.get("client_key")?);
        let target: (Option<String>, bool, Vec<String>, _) =
            (row.get("url")?, row.get("enabled")?, secrets, tls);
        targets.insert(row.get::<_, String>("id")?, target);
    }
    for delivery in claimed {
        // A deleted webhook leaves no URL: the dispatcher cancels these.
        if let Some((url, enabled, secrets, tls)) = targets.get(&delivery.webhook_id) {
            delivery.url.clone_from(url);
            delivery.enabled = *enabled;
            delivery.secrets.clone_from(secrets);
            delivery.client_tls.clone_from(tls);
        }
    }
    Ok(())
}

/// Records an attempt and what follows it (see [`super::Store::finish`]);
/// whether the webhook got disabled.
#[allow(
    clippy::too_many_arguments,
    reason = "the trait method's arguments, and the time"
)]
pub(super) fn finish(
    tx: &Transaction<'_>,
    delivery_id: &str,
    lease: &str,
    attempt: Option<&Attempt>,
    next: Next,
    health: Health,
    chain: Option<Millis>,
    at: Millis,
) -> rusqlite::Result<Finished> {
    let (state, due) = state_after(next);
    let last_error = last_error(next, attempt.and_then(|a| a.error.as_deref()));
    let updated: Option<(String, String, bool)> = tx
        .prepare_cached(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, leased_until = NULL,
                lease = NULL, attempts = attempts + ?, last_error = ?, updated_at = ?
             WHERE id = ? AND COALESCE(lease, '') = ? RETURNING webhook_id, ticket_id, head",
        )?
        .query_row(
            params![
                state,
                due,
                i64::from(attempt.is_some()),
                last_error,
                at,
                delivery_id,
                lease,
            ],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((webhook_id, ticket_id, head)) = updated else {
        let exists = tx
            .prepare_cached("SELECT 1 FROM deliveries WHERE id = ?")?
            .exists([delivery_id])?;
        return match exists {
            // Rolls the attempt's record back with it.
            true => Err(Refusal::LeaseLost(delivery_id.to_owned()).into_error()),
            false => Ok(Finished::default()),
        };
    };
    if let Some(attempt) = attempt {
        tx.prepare_cached(
            "INSERT INTO attempts (delivery_id, started_at, duration_ms, status, response,
                error_kind, error, webhook_id, outcome)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            delivery_id,
            attempt.started_at,
            attempt.duration_ms,
            attempt.status,
            attempt.response,
            attempt.error_kind,
            attempt.error,
            webhook_id,
            outcome(next),
        ])?;
    }
    let disabled = health_after(tx, &webhook_id, health, at)?;
    let next = match head && state != "pending" {
        true => next_head(tx, &webhook_id, &ticket_id, chain, at)?,
        false => Vec::new(),
    };
    Ok(Finished { disabled, next })
}

/// The ticket's next delivery to the webhook becomes its head, the one
/// a claim may take; with `chain`, it is leased until then and returned
/// with those behind it (see [`super::Store::finish`]) when it is due,
/// unleased, and its webhook's breaker is closed.
fn next_head(
    tx: &Transaction<'_>,
    webhook_id: &str,
    ticket_id: &str,
    chain: Option<Millis>,
    at: Millis,
) -> rusqlite::Result<Vec<Claimed>> {
    let next: Option<(i64, Millis, Option<Millis>)> = tx
        .prepare_cached(
            "UPDATE deliveries SET head = 1 WHERE seq = (
                SELECT seq FROM deliveries
                WHERE state = 'pending' AND webhook_id = ? AND ticket_id = ?
                ORDER BY seq LIMIT 1)
             RETURNING seq, next_attempt_at, leased_until",
        )?
        .query_row([webhook_id, ticket_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let (Some(lease_until), Some((seq, due, leased_until))) = (chain, next) else {
        return Ok(Vec::new());
    };
    if !free(due, leased_until, at)
        || tx
            .prepare_cached(
                "SELECT 1 FROM webhooks
                 WHERE id = ? AND (paused_until > ? OR rate_limit IS NOT NULL)",
            )?
            .exists(params![webhook_id, at])?
    {
        return Ok(Vec::new());
    }
    let behind = tx
        .prepare_cached(
            "SELECT seq, next_attempt_at, leased_until FROM deliveries
             WHERE state = 'pending' AND webhook_id = ? AND ticket_id = ? AND seq > ?
             ORDER BY seq LIMIT ?",
        )?
        .query_map(params![webhook_id, ticket_id, seq, HAND_ON - 1], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let token = ulid::Ulid::new().to_string();
    let mut lease = tx.prepare_cached(
        "UPDATE deliveries SET leased_until = ?, lease = ? WHERE seq = ?
         RETURNING id, tenant_id, webhook_id, payload, attempts, lease",
    )?;
    let mut run = std::iter::once(seq)
        .chain(run_behind(behind, at))
        .map(|seq| lease.query_row(params![lease_until, token, seq], claimed_row))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    fill_targets(tx, at, &mut run)?;
    Ok(run)
}

/// What an attempt's outcome makes of its webhook's health: whether it
/// disabled the webhook.
fn health_after(
    tx: &Transaction<'_>,
    webhook_id: &str,
    health: Health,
    at: Millis,
) -> rusqlite::Result<bool> {
    match health {
        Health::Unchanged => Ok(false),
        Health::Healthy => {
            tx.prepare_cached(
                "UPDATE webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL",
            )?
            .execute([webhook_id])?;
            Ok(false)
        }
        Health::Gone => disable(tx, webhook_id, GONE_REASON, at),
        Health::Failing { disable_after } => {
            let since: Option<Millis> = tx
                .prepare_cached(
                    "UPDATE webhooks SET failing_since = COALESCE(failing_since, ?)
                     WHERE id = ? RETURNING failing_since",
                )?
                .query_row(params![at, webhook_id], |row| row.get(0))
                .optional()?
                .flatten();
            match since {
                Some(since) if at - since > disable_after => {
                    disable(tx, webhook_id, &failing_reason(disable_after), at)
                }
                _ => Ok(false),
            }
        }
    }
}

/// Disables a webhook: its definition says `enabled: false`, with the
/// reason beside it. Whether it was enabled.
fn disable(
    tx: &Transaction<'_>,
    webhook_id: &str,
    reason: &str,
    at: Millis,
) -> rusqlite::Result<bool> {
    let definition: Option<String> = tx
        .prepare_cached("SELECT definition FROM webhooks WHERE id = ? AND enabled = 1")?
        .query_row([webhook_id], |row| row.get(0))
        .optional()?;
    let Some(definition) = definition else {
        return Ok(false);
    };
    let definition = disabled_definition(&definition).map_err(decode_error)?;
    tx.prepare_cached(
        "UPDATE webhooks SET definition = ?, enabled = 0, revision = revision + 1,
         updated_at = ?, disabled_reason = ? WHERE id = ?",
    )?
    .execute(params![definition, at, reason, webhook_id])?;
    Ok(true)
}

pub(super) fn pause_webhook(
    tx: &Transaction<'_>,
    webhook_id: &str,
    until: Option<Millis>,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE webhooks SET paused_until = ? WHERE id = ?")?
        .execute(params![until, webhook_id])?;
    Ok(())
}

pub(super) fn release(
    tx: &Transaction<'_>,
    delivery_id: &str,
    lease: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE deliveries SET leased_until = NULL, lease = NULL
         WHERE id = ? AND COALESCE(lease, '') = ?",
    )?
    .execute([delivery_id, lease])?;
    Ok(())
}

/// Whether the delivery exists (and is now due at `at`).
pub(super) fn redeliver(
    tx: &Transaction<'_>,
    tenant_id: &str,
    id: &str,
    at: Millis,
) -> rusqlite::Result<bool> {
    let updated = tx
        .prepare_cached(
            "UPDATE deliveries SET
                leased_until = CASE WHEN state = 'pending' THEN leased_until END,
                lease = CASE WHEN state = 'pending' THEN lease END,
                head = CASE WHEN state = 'pending' THEN head ELSE NOT EXISTS (
                    SELECT 1 FROM deliveries e
                    WHERE e.state = 'pending' AND e.webhook_id = deliveries.webhook_id
                      AND e.ticket_id = deliveries.ticket_id) END,
                state = 'pending', next_attempt_at = ?1, updated_at = ?1
             WHERE tenant_id = ?2 AND id = ?3",
        )?
        .execute(params![at, tenant_id, id])?;
    Ok(updated == 1)
}

/// Stores the deliveries a replay creates (see [`super::Store::replay`]):
/// each one whose event has no delivery to the webhook yet, the head of
/// its ticket's queue when nothing of the ticket waits for the webhook.
pub(super) fn replay(
    tx: &Transaction<'_>,
    tenant_id: &str,
    webhook_id: &str,
    deliveries: &[Replayed],
    at: Millis,
) -> rusqlite::Result<u64> {
    let mut ticket_waits = tx.prepare_cached(
        "SELECT 1 FROM deliveries
         WHERE state = 'pending' AND webhook_id = ? AND ticket_id = ? LIMIT 1",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, ticket_id,
            payload, explanation, state, next_attempt_at, created_at, updated_at, head)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9, ?9, ?10
         WHERE EXISTS (SELECT 1 FROM events WHERE id = ?4 AND tenant_id = ?2)
         ON CONFLICT (event_id, webhook_id) DO NOTHING",
    )?;
    let mut stored = 0;
    for Replayed { event_id, delivery } in deliveries {
        let head = !ticket_waits.exists(params![webhook_id, delivery.ticket_id])?;
        stored += insert.execute(params![
            delivery.id,
            tenant_id,
            webhook_id,
            event_id,
            delivery.event_type,
            delivery.ticket_id,
            delivery.payload,
            delivery.explanation,
            at,
            head,
        ])?;
    }
    Ok(u64::try_from(stored).unwrap_or(u64::MAX))
}

/// Makes failed deliveries pending again (see [`super::Store::recover`]),
/// oldest first, each as [`redeliver`] does: so that each ticket's queue
/// keeps one head.
pub(super) fn recover(
    tx: &Transaction<'_>,
    tenant_id: &str,
    webhook_id: &str,
    since: Millis,
    limit: u32,
    at: Millis,
) -> rusqlite::Result<(u64, bool)> {
    let failed: Vec<String> = tx
        .prepare_cached(
            "SELECT id FROM deliveries
             WHERE webhook_id = ? AND tenant_id = ? AND state = 'failed' AND updated_at >= ?
             ORDER BY seq LIMIT ?",
        )?
        .query_map(params![webhook_id, tenant_id, since, limit + 1], |row| {
            row.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    let more = failed.len() > limit as usize;
    let mut recovered = 0;
    for id in failed.iter().take(limit as usize) {
        recovered += u64::from(redeliver(tx, tenant_id, id, at)?);
    }
    Ok((recovered, more))
}

/// Rows removed: attempts, finished deliveries and their events older than
/// `before`.
pub(super) fn prune(tx: &Transaction<'_>, before: Millis) -> rusqlite::Result<u64> {
    let mut gone = 0;
    for statement in [
        "DELETE FROM attempts WHERE started_at < ?",
        "DELETE FROM deliveries WHERE state <> 'pending' AND updated_at < ?",
        "DELETE FROM events WHERE received_at < ?
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
    ] {
        gone += tx.prepare_cached(statement)?.execute([before])?;
    }
    Ok(u64::try_from(gone).unwrap_or(u64::MAX))
}

impl From<rusqlite::Error> for StoreError {
    /// A write's error, or what the write refused to do ([`Refusal`]).
    fn from(error: rusqlite::Error) -> Self {
        match error {
            rusqlite::Error::ToSqlConversionFailure(inner) => match inner.downcast::<Refusal>() {
                Ok(refusal) => match *refusal {
                    Refusal::Idempotency(mismatch) => Self::IdempotencyMismatch(mismatch),
                    Refusal::WebhookQuota(limit) => Self::WebhookQuota(limit),
                    Refusal::PatternWeight { total, limit } => {
                        Self::PatternWeightQuota { total, limit }
                    }
                    Refusal::LeaseLost(delivery) => Self::LeaseLost(delivery),
                },
                Err(inner) => {
                    Self::Database(Box::new(rusqlite::Error::ToSqlConversionFailure(inner)))
                }
            },
            other => Self::Database(Box::new(other)),
        }
    }
}

impl Refusal {
    /// The refusal as the error a write returns.
    pub(crate) fn into_error(self) -> rusqlite::Error {
        rusqlite::Error::ToSqlConversionFailure(Box::new(self))
    }
}
