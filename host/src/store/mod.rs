//! Persistence: one [`Store`] trait owns every query the server makes, so the
//! API and the commands never see SQL, and a second database (Postgres) is
//! one more implementation of the trait, not a change to its callers.
//!
//! Nothing the server accepts is held only in memory: every write returns
//! after its transaction has committed.

use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::keys::{KeyKind, NewKey};

mod sqlite;

pub use sqlite::SqliteStore;

/// A point in time: Unix milliseconds, UTC.
pub type Millis = i64;

/// The current time as [`Millis`].
pub fn now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with this key already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The named thing does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The database failed; the details are for the logs, never for clients.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// A company using the product.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Its slug, e.g. `acme`.
    pub id: String,
    /// What it is called.
    pub name: String,
    /// When it was created.
    pub created_at: Millis,
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    /// `key_…`: how the key is named when revoking it.
    pub id: String,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// What it may do.
    pub kind: KeyKind,
    /// The key's first characters.
    pub hint: String,
    /// When it was made.
    pub created_at: Millis,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Millis>,
}

/// Who is calling: the tenant and kind of a valid, unrevoked key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's id (for rate limits and logs; never the key).
    pub key_id: String,
    /// The tenant the key belongs to.
    pub tenant_id: String,
    /// What the key may do.
    pub kind: KeyKind,
}

/// A stored webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// `wh_…`.
    pub id: String,
    /// The tenant that owns it.
    pub tenant_id: String,
    /// The definition as the engine reads it, JSON text.
    pub definition: String,
    /// Whether it fires (mirrors `definition.enabled`, for queries).
    pub enabled: bool,
    /// Bumped by every write.
    pub revision: i64,
    /// When it was created.
    pub created_at: Millis,
    /// When it was last written.
    pub updated_at: Millis,
}

/// How many webhooks exist, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookCounts {
    /// Enabled ones.
    pub enabled: i64,
    /// Disabled ones.
    pub disabled: i64,
}

/// Every query the server makes.
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes every connection, waiting for work in flight.
    async fn close(&self);

    /// Creates a tenant; [`StoreError::Conflict`] when the id is taken.
    async fn create_tenant(&self, id: &str, name: &str) -> Result<Tenant, StoreError>;
    /// Every tenant, by id.
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Stores a new key for a tenant ([`StoreError::NotFound`] without one).
    async fn create_key(
        &self,
        tenant_id: &str,
        kind: KeyKind,
        key: &NewKey,
    ) -> Result<KeyRecord, StoreError>;
    /// A tenant's keys, revoked ones included, oldest first.
    async fn keys(&self, tenant_id: &str) -> Result<Vec<KeyRecord>, StoreError>;
    /// Revokes a key at once; `false` when there is no such unrevoked key.
    async fn revoke_key(&self, key_id: &str) -> Result<bool, StoreError>;
    /// The caller a presented key's digest belongs to, if it is valid.
    async fn caller(&self, digest: &[u8]) -> Result<Option<Caller>, StoreError>;

    /// Stores a new webhook and its first signing secret.
    async fn create_webhook(&self, webhook: &WebhookRecord, secret: &str)
    -> Result<(), StoreError>;
    /// A page of a tenant's webhooks in id order, after the id `after`.
    async fn webhooks(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WebhookRecord>, StoreError>;
    /// One of a tenant's webhooks.
    async fn webhook(&self, tenant_id: &str, id: &str)
    -> Result<Option<WebhookRecord>, StoreError>;
    /// Writes `webhook` over the stored one if that one still has revision
    /// `webhook.revision - 1`; `false` when it does not (or is gone).
    async fn update_webhook(&self, webhook: &WebhookRecord) -> Result<bool, StoreError>;
    /// Deletes a webhook and its secrets; `false` when there was none.
    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Makes `secret` the webhook's signing secret; the ones it replaces
    /// keep signing until `old_until`. `false` when there is no such webhook.
    async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        old_until: Millis,
    ) -> Result<bool, StoreError>;
    /// The secrets a delivery is signed with at `at`: the current one first,
    /// then any still in their overlap.
    async fn signing_secrets(
        &self,
        webhook_id: &str,
        at: Millis,
    ) -> Result<Vec<String>, StoreError>;
    /// How many webhooks there are, over every tenant.
    async fn webhook_counts(&self) -> Result<WebhookCounts, StoreError>;
}

#[cfg(test)]
mod tests;
