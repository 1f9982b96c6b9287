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
use sqlx::{Row as _, Sqlite, Transaction};

use super::{
    Caller, KeyRecord, Millis, Store, StoreError, Tenant, WebhookCounts, WebhookRecord, now,
};
use crate::keys::{KeyKind, NewKey};

/// Readers in the pool: enough for two cores' worth of concurrent requests.
const READERS: u32 = 4;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The only connection that writes.
    writer: SqlitePool,
    /// Connections for queries that only read.
    reader: SqlitePool,
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
        Ok(Self { writer, reader })
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
    })
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
            "INSERT INTO webhooks (id, tenant_id, definition, enabled, revision, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&webhook.id)
        .bind(&webhook.tenant_id)
        .bind(&webhook.definition)
        .bind(webhook.enabled)
        .bind(webhook.revision)
        .bind(webhook.created_at)
        .bind(webhook.updated_at)
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
            "UPDATE webhooks SET definition = ?, enabled = ?, revision = ?, updated_at = ?
             WHERE tenant_id = ? AND id = ? AND revision = ?",
        )
        .bind(&webhook.definition)
        .bind(webhook.enabled)
        .bind(webhook.revision)
        .bind(webhook.updated_at)
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
}
