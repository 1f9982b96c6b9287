//! The embedded default: SQLite through sqlx.
//!
//! - WAL journal, so readers never wait for the writer.
//! - `synchronous = FULL`: a commit is on disk (the WAL is fsynced) before it
//!   returns, so an answered request survives a power cut, not only a crash.
//! - One writer connection and a few readers: SQLite allows one writer at a
//!   time anyway, and queueing writes in the pool instead of in SQLite's
//!   busy handler keeps them fair and free of `SQLITE_BUSY`.
//! - Migrations are embedded in the binary and run at start.

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row as _, Sqlite, SqliteConnection, Transaction};

use super::group::GroupCommit;
use super::{
    Attempt, Caller, Claimed, DeliveryRecord, Health, Ingested, KeyRecord, Millis, NewEvent, Next,
    QueueStats, Store, StoreError, Tenant, WebhookCounts, WebhookRecord, now,
};
use crate::keys::{KeyKind, NewKey};

/// Readers in the pool: enough for two cores' worth of concurrent requests.
const READERS: u32 = 4;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The only connection that writes.
    pub(super) writer: SqlitePool,
    /// Connections for queries that only read.
    pub(super) reader: SqlitePool,
    /// Commits the hot writes (ingest, attempts) in groups.
    group: GroupCommit,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.read_only(true))
            .await?;
        let group = GroupCommit::spawn(writer.clone());
        Ok(Self {
            writer,
            reader,
            group,
        })
    }
}

fn tenant(row: &SqliteRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn key(row: &SqliteRow) -> Result<KeyRecord, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        kind: KeyKind::parse(&kind).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "kind".to_owned(),
            source: format!("unknown key kind {kind:?}").into(),
        })?,
        hint: row.try_get("hint")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn webhook(row: &SqliteRow) -> Result<WebhookRecord, sqlx::Error> {
    Ok(WebhookRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        definition: row.try_get("definition")?,
        enabled: row.try_get("enabled")?,
        revision: row.try_get("revision")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        disabled_reason: row.try_get("disabled_reason")?,
    })
}

fn delivery(row: &SqliteRow) -> Result<DeliveryRecord, sqlx::Error> {
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        seq: row.try_get("seq")?,
        webhook_id: row.try_get("webhook_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        payload: row.try_get("payload")?,
        explanation: row.try_get("explanation")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn attempt(row: &SqliteRow) -> Result<Attempt, sqlx::Error> {
    Ok(Attempt {
        started_at: row.try_get("started_at")?,
        duration_ms: row.try_get("duration_ms")?,
        status: row.try_get("status")?,
        response: row.try_get("response")?,
        error_kind: row.try_get("error_kind")?,
        error: row.try_get("error")?,
    })
}

/// A JSON array of strings, for `json_each(?)`.
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// Disables a webhook from within a transaction: its definition says
/// `enabled: false`, with the reason beside it.
async fn disable(
    tx: &mut SqliteConnection,
    webhook_id: &str,
    reason: &str,
    at: Millis,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT definition FROM webhooks WHERE id = ? AND enabled = 1")
        .bind(webhook_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(false) };
    let definition: String = row.try_get("definition")?;
    let mut value: serde_json::Value =
        serde_json::from_str(&definition).map_err(|e| sqlx::Error::Decode(e.into()))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("enabled".to_owned(), serde_json::Value::Bool(false));
    }
    sqlx::query(
        "UPDATE webhooks SET definition = ?, enabled = 0, revision = revision + 1,
         updated_at = ?, disabled_reason = ? WHERE id = ?",
    )
    .bind(value.to_string())
    .bind(at)
    .bind(reason)
    .bind(webhook_id)
    .execute(&mut *tx)
    .await?;
    Ok(true)
}

/// Stores events and their deliveries (see [`Store::ingest`]) on a
/// connection inside a transaction.
pub(super) async fn ingest_in(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    events: &[NewEvent],
    at: Millis,
) -> Result<Vec<Ingested>, sqlx::Error> {
    let mut answers = Vec::with_capacity(events.len());
    for event in events {
        let stored = sqlx::query(
            "INSERT INTO events (id, tenant_id, idempotency_key, body, received_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL
             DO NOTHING",
        )
        .bind(&event.id)
        .bind(tenant_id)
        .bind(&event.idempotency_key)
        .bind(&event.body)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        if stored.rows_affected() == 0 {
            let earlier: String = sqlx::query_scalar(
                "SELECT id FROM events WHERE tenant_id = ? AND idempotency_key = ?",
            )
            .bind(tenant_id)
            .bind(&event.idempotency_key)
            .fetch_one(&mut *conn)
            .await?;
            answers.push(Ingested {
                event_id: earlier,
                new: false,
            });
            continue;
        }
        for delivery in &event.deliveries {
            sqlx::query(
                "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type,
                    ticket_id, payload, explanation, state, next_attempt_at, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
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
            .bind(at)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        answers.push(Ingested {
            event_id: event.id.clone(),
            new: true,
        });
    }
    Ok(answers)
}

/// Records an attempt and what follows it (see [`Store::finish`]) on a
/// connection inside a transaction.
pub(super) async fn finish_in(
    conn: &mut SqliteConnection,
    delivery_id: &str,
    attempt: Option<&Attempt>,
    next: Next,
    health: Health,
    at: Millis,
) -> Result<bool, sqlx::Error> {
    if let Some(attempt) = attempt {
        sqlx::query(
            "INSERT INTO attempts (delivery_id, started_at, duration_ms, status, response, error_kind, error)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(delivery_id)
        .bind(attempt.started_at)
        .bind(attempt.duration_ms)
        .bind(attempt.status)
        .bind(&attempt.response)
        .bind(&attempt.error_kind)
        .bind(&attempt.error)
        .execute(&mut *conn)
        .await?;
    }
    let (state, due) = match next {
        Next::Succeeded => ("succeeded", None),
        Next::RetryAt(due) => ("pending", Some(due)),
        Next::Failed => ("failed", None),
        Next::Cancelled => ("cancelled", None),
    };
    let last_error = match next {
        Next::Cancelled => Some("not sent: the webhook is disabled or was deleted".to_owned()),
        _ => attempt.and_then(|a| a.error.clone()),
    };
    let webhook_id: Option<String> = sqlx::query_scalar(
        "UPDATE deliveries SET state = ?, next_attempt_at = ?, leased_until = NULL,
            attempts = attempts + ?, last_error = ?, updated_at = ?
         WHERE id = ? RETURNING webhook_id",
    )
    .bind(state)
    .bind(due)
    .bind(i64::from(attempt.is_some()))
    .bind(last_error)
    .bind(at)
    .bind(delivery_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(webhook_id) = webhook_id else {
        return Ok(false);
    };
    let disabled = match health {
        Health::Unchanged => false,
        Health::Healthy => {
            sqlx::query(
                "UPDATE webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL",
            )
            .bind(&webhook_id)
            .execute(&mut *conn)
            .await?;
            false
        }
        Health::Gone => disable(conn, &webhook_id, "the receiver answered 410 Gone", at).await?,
        Health::Failing { disable_after } => {
            let since: Option<Millis> = sqlx::query_scalar(
                "UPDATE webhooks SET failing_since = COALESCE(failing_since, ?)
                 WHERE id = ? RETURNING failing_since",
            )
            .bind(at)
            .bind(&webhook_id)
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
            match since {
                Some(since) if at - since > disable_after => {
                    let reason = format!(
                        "every delivery failed for {} without a success",
                        humantime::format_duration(Duration::from_millis(
                            u64::try_from(disable_after).unwrap_or(0)
                        ))
                    );
                    disable(conn, &webhook_id, &reason, at).await?
                }
                _ => false,
            }
        }
    };
    Ok(disabled)
}

/// Whether `error` is a broken uniqueness or primary-key constraint.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

async fn insert_secret(
    tx: &mut Transaction<'_, Sqlite>,
    webhook_id: &str,
    secret: &str,
    at: Millis,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES (?, ?, ?)")
        .bind(webhook_id)
        .bind(secret)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        sqlx::query("SELECT 1").execute(&self.writer).await?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn create_tenant(&self, id: &str, name: &str) -> Result<Tenant, StoreError> {
        let created_at = now();
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(created_at)
            .execute(&self.writer)
            .await
            .map_err(|e| match is_unique_violation(&e) {
                true => StoreError::Conflict(format!("tenant {id:?}")),
                false => e.into(),
            })?;
        Ok(Tenant {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at,
        })
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(tenant).collect::<Result<_, _>>()?)
    }

    async fn create_key(
        &self,
        tenant_id: &str,
        kind: KeyKind,
        key: &NewKey,
    ) -> Result<KeyRecord, StoreError> {
        let record = KeyRecord {
            id: format!("key_{}", ulid::Ulid::new()),
            tenant_id: tenant_id.to_owned(),
            kind,
            hint: key.hint.clone(),
            created_at: now(),
            revoked_at: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, kind, digest, hint, created_at)
             SELECT ?, id, ?, ?, ?, ? FROM tenants WHERE id = ?",
        )
        .bind(&record.id)
        .bind(kind.as_str())
        .bind(&key.digest)
        .bind(&record.hint)
        .bind(record.created_at)
        .bind(tenant_id)
        .execute(&self.writer)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("tenant {tenant_id:?}")));
        }
        Ok(record)
    }

    async fn keys(&self, tenant_id: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, kind, hint, created_at, revoked_at FROM api_keys
             WHERE tenant_id = ? ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(key).collect::<Result<_, _>>()?)
    }

    async fn revoke_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now())
                .bind(key_id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn caller(&self, digest: &[u8]) -> Result<Option<Caller>, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant_id, kind FROM api_keys WHERE digest = ? AND revoked_at IS NULL",
        )
        .bind(digest)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("kind")?;
        Ok(KeyKind::parse(&kind).map(|kind| Caller {
            key_id: row.get("id"),
            tenant_id: row.get("tenant_id"),
            kind,
        }))
    }

    async fn create_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, definition, enabled, revision, created_at, updated_at, disabled_reason)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&webhook.id)
        .bind(&webhook.tenant_id)
        .bind(&webhook.definition)
        .bind(webhook.enabled)
        .bind(webhook.revision)
        .bind(webhook.created_at)
        .bind(webhook.updated_at)
        .bind(&webhook.disabled_reason)
        .execute(&mut *tx)
        .await?;
        insert_secret(&mut tx, &webhook.id, secret, webhook.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhooks(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM webhooks WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(tenant_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(webhook).collect::<Result<_, _>>()?)
    }

    async fn webhook(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.as_ref().map(webhook).transpose()?)
    }

    async fn update_webhook(&self, webhook: &WebhookRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhooks SET definition = ?, enabled = ?, revision = ?, updated_at = ?,
                disabled_reason = ?,
                -- enabling again starts a new record of failures
                failing_since = CASE WHEN enabled = 0 AND ? THEN NULL ELSE failing_since END
             WHERE tenant_id = ? AND id = ? AND revision = ?",
        )
        .bind(&webhook.definition)
        .bind(webhook.enabled)
        .bind(webhook.revision)
        .bind(webhook.updated_at)
        .bind(&webhook.disabled_reason)
        .bind(webhook.enabled)
        .bind(&webhook.tenant_id)
        .bind(&webhook.id)
        .bind(webhook.revision - 1)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM webhooks WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        old_until: Millis,
    ) -> Result<bool, StoreError> {
        let at = now();
        let mut tx = self.writer.begin().await?;
        let touched =
            sqlx::query("UPDATE webhooks SET updated_at = ? WHERE tenant_id = ? AND id = ?")
                .bind(at)
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if touched.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE webhook_secrets SET expires_at = ? WHERE webhook_id = ? AND expires_at IS NULL",
        )
        .bind(old_until)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // Secrets whose overlap is over are of no use to anyone.
        sqlx::query("DELETE FROM webhook_secrets WHERE webhook_id = ? AND expires_at <= ?")
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        insert_secret(&mut tx, id, secret, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn signing_secrets(
        &self,
        webhook_id: &str,
        at: Millis,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT secret FROM webhook_secrets
             WHERE webhook_id = ? AND (expires_at IS NULL OR expires_at > ?)
             ORDER BY expires_at IS NOT NULL, created_at DESC",
        )
        .bind(webhook_id)
        .bind(at)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get("secret"))
            .collect::<Result<_, _>>()?)
    }

    async fn webhook_counts(&self) -> Result<WebhookCounts, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(enabled), 0) AS enabled, COALESCE(SUM(1 - enabled), 0) AS disabled
             FROM webhooks",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(WebhookCounts {
            enabled: row.try_get("enabled")?,
            disabled: row.try_get("disabled")?,
        })
    }

    async fn all_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM webhooks ORDER BY tenant_id, id")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(webhook).collect::<Result<_, _>>()?)
    }

    async fn ingest(
        &self,
        tenant_id: &str,
        events: &[NewEvent],
        at: Millis,
    ) -> Result<Vec<Ingested>, StoreError> {
        self.group
            .ingest(tenant_id.to_owned(), events.to_vec(), at)
            .await
    }

    async fn deliveries_of(&self, event_ids: &[String]) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE event_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_list(event_ids))
        .fetch_one(&self.reader)
        .await?)
    }

    async fn claim(
        &self,
        at: Millis,
        lease_until: Millis,
        limit: u32,
        skip: &[String],
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let rows = sqlx::query(
            "UPDATE deliveries SET leased_until = ?1 WHERE seq IN (
                SELECT d.seq FROM deliveries d
                WHERE d.state = 'pending' AND d.next_attempt_at <= ?2
                  AND (d.leased_until IS NULL OR d.leased_until <= ?2)
                  AND d.webhook_id NOT IN (SELECT value FROM json_each(?3))
                  AND NOT EXISTS (
                      SELECT 1 FROM deliveries e
                      WHERE e.state = 'pending' AND e.webhook_id = d.webhook_id
                        AND e.ticket_id = d.ticket_id AND e.seq < d.seq)
                ORDER BY d.next_attempt_at, d.seq
                LIMIT ?4)
             RETURNING id, tenant_id, webhook_id, payload, attempts",
        )
        .bind(lease_until)
        .bind(at)
        .bind(json_list(skip))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        // Each webhook's URL, state and signing secrets, in one query.
        let webhook_ids: Vec<String> = rows
            .iter()
            .map(|row| row.try_get("webhook_id"))
            .collect::<Result<_, _>>()?;
        let targets = sqlx::query(
            "SELECT w.id, json_extract(w.definition, '$.url') AS url, w.enabled,
                (SELECT json_group_array(secret) FROM (
                    SELECT s.secret FROM webhook_secrets s
                    WHERE s.webhook_id = w.id AND (s.expires_at IS NULL OR s.expires_at > ?1)
                    ORDER BY s.expires_at IS NOT NULL, s.created_at DESC)) AS secrets
             FROM webhooks w WHERE w.id IN (SELECT value FROM json_each(?2))",
        )
        .bind(at)
        .bind(json_list(&webhook_ids))
        .fetch_all(&mut *tx)
        .await?;
        let mut by_id = std::collections::HashMap::with_capacity(targets.len());
        for target in targets {
            let id: String = target.try_get("id")?;
            let secrets: String = target.try_get("secrets")?;
            let secrets: Vec<String> =
                serde_json::from_str(&secrets).map_err(|e| sqlx::Error::Decode(e.into()))?;
            let url: Option<String> = target.try_get("url")?;
            let enabled: bool = target.try_get("enabled")?;
            by_id.insert(id, (url, enabled, secrets));
        }
        let mut claimed = Vec::with_capacity(rows.len());
        for (row, webhook_id) in rows.iter().zip(webhook_ids) {
            let (url, enabled, secrets) = by_id.get(&webhook_id).cloned().unwrap_or_default();
            claimed.push(Claimed {
                id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                webhook_id,
                url,
                enabled,
                secrets,
                payload: row.try_get("payload")?,
                attempts: row.try_get("attempts")?,
            });
        }
        tx.commit().await?;
        // Oldest first: the order the queue promised.
        Ok(claimed)
    }

    async fn finish(
        &self,
        delivery_id: &str,
        attempt: Option<&Attempt>,
        next: Next,
        health: Health,
    ) -> Result<bool, StoreError> {
        self.group
            .finish(
                delivery_id.to_owned(),
                attempt.cloned(),
                next,
                health,
                now(),
            )
            .await
    }

    async fn release(&self, delivery_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET leased_until = NULL WHERE id = ?")
            .bind(delivery_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM deliveries WHERE tenant_id = ? AND webhook_id = ? AND seq < ?
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(tenant_id)
        .bind(webhook_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(delivery).collect::<Result<_, _>>()?)
    }

    async fn delivery(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<(DeliveryRecord, Vec<Attempt>)>, StoreError> {
        let row = sqlx::query("SELECT * FROM deliveries WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let attempts = sqlx::query("SELECT * FROM attempts WHERE delivery_id = ? ORDER BY id")
            .bind(id)
            .fetch_all(&self.reader)
            .await?;
        Ok(Some((
            delivery(&row)?,
            attempts.iter().map(attempt).collect::<Result<_, _>>()?,
        )))
    }

    async fn redeliver(&self, tenant_id: &str, id: &str, at: Millis) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE deliveries SET
                leased_until = CASE WHEN state = 'pending' THEN leased_until END,
                state = 'pending', next_attempt_at = ?, updated_at = ?
             WHERE tenant_id = ? AND id = ?",
        )
        .bind(at)
        .bind(at)
        .bind(tenant_id)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn queue(&self) -> Result<QueueStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM deliveries WHERE state = 'pending'",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(QueueStats {
            depth: row.try_get("depth")?,
            oldest: row.try_get("oldest")?,
        })
    }

    async fn prune(&self, before: Millis) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let mut gone = 0;
        for statement in [
            "DELETE FROM attempts WHERE started_at < ?",
            "DELETE FROM deliveries WHERE state <> 'pending' AND updated_at < ?",
            "DELETE FROM events WHERE received_at < ?
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
        ] {
            gone += sqlx::query(statement)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(gone)
    }
}
