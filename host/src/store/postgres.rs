//! The Postgres store: any number of server processes on one database.
//!
//! Where the SQLite store relies on its one writer thread to serialise
//! every write, here each guarantee is the database's:
//!
//! - a tenant's quotas are checked with its tenant row locked, so two
//!   instances creating webhooks at once cannot pass them together;
//! - an ingest write locks each (webhook, ticket) it adds deliveries to
//!   (a transaction-scoped advisory lock, taken in one order by every
//!   writer) until it commits, so that within a webhook and ticket a
//!   delivery's `seq` is commit order, which per-ticket order follows;
//! - a claim leases only rows it could lock (`FOR UPDATE SKIP LOCKED`)
//!   whose lease is still free once locked, so two instances never lease
//!   one delivery, and only the oldest pending delivery of its webhook and
//!   ticket, so they never send a ticket's deliveries out of order.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row as _, Transaction};
use tokio::sync::{mpsc, watch};

use super::policy::{DELIVERY, disabled_definition, slots, take_slots, take_turns};
use super::{
    Attempt, AttemptPoint, Caller, Change, Claimed, ClientTls, DeliveryRecord, Finished, Health,
    HistoryQuery, Ingested, KeyRecord, LogFilter, LogPage, Millis, NewEvent, Next, QueueStats,
    Quota, Replayed, Room, SecretPlace, Store, StoreError, StoredEvent, StoredSecret, Tenant,
    WebhookCounts, WebhookRecord, now,
};
use crate::keys::{KeyKind, NewKey};

mod callers;
mod finish;
mod group;
mod history;
mod ingest;

/// Connections per server process.
const CONNECTIONS: u32 = 16;

/// How long a request waits for a free connection before it is answered
/// 503 (`StoreError::Unavailable`).
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The channel of webhook changes: `<instance>\t<tenant>\t<webhook>`.
const WEBHOOKS: &str = "inbox_webhooks";

/// The channel of deliveries stored unleased: `<instance>`.
const DELIVERIES: &str = "inbox_deliveries";

/// How often a follower checks every webhook's revision besides: what
/// catches a change whose notification was lost with a connection.
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The advisory lock whose holder prunes: a number every instance agrees
/// on (the ticket locks are digests, which a name is not likely to meet).
pub(super) const PRUNE_LOCK: i64 = i64::from_be_bytes(*b"inbox:pr");

/// The Postgres store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// `true` once closed: [`Store::stopped`] completes.
    closed: watch::Sender<bool>,
    /// This handle's name in its notifications, so that it does not
    /// follow its own changes.
    instance: String,
    /// The queue of ingest writes, committed in groups.
    ingest: ingest::Ingest,
    /// The queue of attempts to record, committed in groups.
    records: finish::Records,
    /// The queue of key lookups, looked up in groups.
    callers: callers::Callers,
    /// For tests that write a group of their own making.
    #[cfg(test)]
    pool_for_groups: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://…`) and brings its
    /// schema up to date. Migrations run under Postgres's own lock, so
    /// instances starting together apply each one once.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        repair_heads(&pool).await?;
        let instance = ulid::Ulid::new().to_string();
        Ok(Self {
            ingest: ingest::start(pool.clone(), instance.clone()),
            records: finish::start(pool.clone(), instance.clone()),
            callers: callers::start(pool.clone()),
            #[cfg(test)]
            pool_for_groups: pool.clone(),
            pool,
            closed: watch::Sender::new(false),
            instance,
        })
    }

    /// Writes these ingest requests as one group (see [`ingest`]).
    #[cfg(test)]
    pub(super) async fn ingest_as_group(
        &self,
        requests: Vec<(&str, Vec<NewEvent>, Millis)>,
    ) -> Vec<Result<Vec<Ingested>, StoreError>> {
        let requests = requests
            .into_iter()
            .map(|(tenant_id, events, at)| ingest::Request {
                tenant_id: tenant_id.to_owned(),
                events,
                at,
            })
            .collect();
        group::as_group(requests, |group| {
            ingest::write_group(&self.pool_for_groups, &self.instance, group)
        })
        .await
    }

    /// Looks up these key digests as one group (see [`callers`]).
    #[cfg(test)]
    pub(super) async fn callers_as_group(
        &self,
        digests: Vec<Vec<u8>>,
    ) -> Vec<Result<Option<Caller>, StoreError>> {
        group::as_group(digests, |group| {
            callers::look_up(&self.pool_for_groups, group)
        })
        .await
    }

    /// Records these attempts as one group (see [`finish`]).
    #[cfg(test)]
    pub(super) async fn finish_as_group(
        &self,
        requests: Vec<(&Claimed, Next, Health, Option<Millis>)>,
    ) -> Vec<Result<Finished, StoreError>> {
        let requests = requests
            .into_iter()
            .map(|(delivery, next, health, chain)| finish::Request {
                delivery_id: delivery.id.clone(),
                lease: delivery.lease.clone(),
                attempt: None,
                next,
                health,
                chain,
            })
            .collect();
        group::as_group(requests, |group| {
            finish::write_group(&self.pool_for_groups, &self.instance, group)
        })
        .await
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// Gives every ticket queue that has pending deliveries but no head its
/// oldest as head. A no-op in a database only this version wrote; after
/// an instance of the version before ticket heads wrote beside a newer
/// one (its deliveries are stored without a head, and its attempts hand
/// no queue on), every queue it left headless is taken up again.
async fn repair_heads(pool: &PgPool) -> Result<(), StoreError> {
    let repaired = sqlx::query(
        "UPDATE deliveries d SET head = TRUE
         WHERE d.state = 'pending' AND NOT d.head AND NOT EXISTS (
             SELECT 1 FROM deliveries e
             WHERE e.state = 'pending' AND e.webhook_id = d.webhook_id
               AND e.ticket_id = d.ticket_id AND (e.head OR e.seq < d.seq))",
    )
    .execute(pool)
    .await?
    .rows_affected();
    if repaired > 0 {
        tracing::warn!(repaired, "ticket queues without a head were given one");
    }
    Ok(())
}

/// Tells the other processes, when `tx` commits, that a webhook changed;
/// `instance` names the one telling.
async fn notify_webhook(
    tx: &mut Transaction<'_, Postgres>,
    instance: &str,
    tenant_id: &str,
    id: &str,
) -> Result<(), StoreError> {
    let payload = format!("{instance}\t{tenant_id}\t{id}");
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(WEBHOOKS)
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Tells the other processes, when `tx` commits, that deliveries wait;
/// `instance` names the one telling.
async fn notify_deliveries(
    tx: &mut Transaction<'_, Postgres>,
    instance: &str,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(DELIVERIES)
        .bind(instance)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An `i64` column read as the `u32` it holds.
fn count(row: &PgRow, column: &str) -> Result<u32, sqlx::Error> {
    let value: i32 = row.try_get(column)?;
    u32::try_from(value).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

fn tenant(row: &PgRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn key_kind(row: &PgRow) -> Result<KeyKind, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    KeyKind::parse(&kind).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "kind".to_owned(),
        source: format!("unknown key kind {kind:?}").into(),
    })
}

fn key(row: &PgRow) -> Result<KeyRecord, sqlx::Error> {
    Ok(KeyRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        kind: key_kind(row)?,
        hint: row.try_get("hint")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn client_tls(row: &PgRow) -> Result<Option<ClientTls>, sqlx::Error> {
    Ok(super::sqlite::client_tls(
        row.try_get("client_certificate")?,
        row.try_get("client_key")?,
    ))
}

fn webhook(row: &PgRow) -> Result<WebhookRecord, sqlx::Error> {
    let weight: Option<i32> = row.try_get("pattern_weight")?;
    Ok(WebhookRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        definition: row.try_get("definition")?,
        enabled: row.try_get("enabled")?,
        revision: row.try_get("revision")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        disabled_reason: row.try_get("disabled_reason")?,
        client_tls: client_tls(row)?,
        pattern_weight: weight.and_then(|w| u32::try_from(w).ok()),
        paused_until: row.try_get("paused_until")?,
    })
}

fn delivery(row: &PgRow) -> Result<DeliveryRecord, sqlx::Error> {
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        seq: row.try_get("seq")?,
        webhook_id: row.try_get("webhook_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        ticket_id: row.try_get("ticket_id")?,
        payload: row.try_get("payload")?,
        explanation: row.try_get("explanation")?,
        state: row.try_get("state")?,
        attempts: count(row, "attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_status: row
            .try_get::<Option<i32>, _>("last_status")?
            .and_then(|s| u16::try_from(s).ok()),
        last_duration_ms: row.try_get("last_duration_ms")?,
    })
}

fn attempt(row: &PgRow) -> Result<Attempt, sqlx::Error> {
    let status: Option<i32> = row.try_get("status")?;
    Ok(Attempt {
        started_at: row.try_get("started_at")?,
        duration_ms: row.try_get("duration_ms")?,
        status: status.and_then(|s| u16::try_from(s).ok()),
        response: row.try_get("response")?,
        error_kind: row.try_get("error_kind")?,
        error: row.try_get("error")?,
    })
}

fn claimed(row: &PgRow) -> Result<Claimed, sqlx::Error> {
    Ok(Claimed {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        webhook_id: row.try_get("webhook_id")?,
        url: None,
        enabled: false,
        secrets: Vec::new(),
        client_tls: None,
        payload: row.try_get("payload")?,
        attempts: count(row, "attempts")?,
        lease: row.try_get("lease")?,
        not_before: None,
    })
}

/// The advisory lock of a webhook's deliveries for one ticket: the first
/// eight bytes of a digest of both ids.
fn ticket_lock(webhook_id: &str, ticket_id: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(webhook_id.as_bytes())
        .chain_update([0])
        .chain_update(ticket_id.as_bytes())
        .finalize();
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// One column of `items`, as an array to bind for `UNNEST`.
fn column<T, U>(items: &[T], field: impl Fn(&T) -> U) -> Vec<U> {
    items.iter().map(field).collect()
}

/// Locks (webhook, ticket) queues until the transaction ends, in one
/// order (ascending lock number) so that two writers cannot deadlock:
/// every write that adds to a ticket's queue or takes its head away
/// holds its lock, so that `seq` is commit order within a queue and each
/// queue has one head.
async fn lock_tickets<'a>(
    tx: &mut Transaction<'_, Postgres>,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), StoreError> {
    let locks: BTreeSet<i64> = pairs.map(|(w, t)| ticket_lock(w, t)).collect();
    if !locks.is_empty() {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT UNNEST($1::BIGINT[]) AS k ORDER BY k) AS l",
        )
        .bind(locks.into_iter().collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Locks the tenant's row until the transaction ends: every write that
/// checks a tenant's quotas takes it first.
async fn lock_tenant(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE")
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(())
}

/// Refuses `webhook` when the tenant's other webhooks, weighing `others`,
/// and it weigh more than the quota together.
fn check_pattern_weight(
    others: i64,
    webhook: &WebhookRecord,
    quota: Quota,
) -> Result<(), StoreError> {
    let total = u64::try_from(others).unwrap_or(0) + u64::from(webhook.pattern_weight.unwrap_or(0));
    if total > u64::from(quota.pattern_weight) {
        return Err(StoreError::PatternWeightQuota {
            total,
            limit: quota.pattern_weight,
        });
    }
    Ok(())
}

fn weight(webhook: &WebhookRecord) -> Option<i32> {
    webhook
        .pattern_weight
        .map(|w| i32::try_from(w).unwrap_or(i32::MAX))
}

/// Gives each delivery its webhook's URL, state and signing secrets at
/// `at`, with one query for them all.
async fn fill_targets(
    tx: &mut Transaction<'_, Postgres>,
    at: Millis,
    claimed: &mut [&mut Claimed],
) -> Result<(), StoreError> {
    if claimed.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = claimed
        .iter()
        .map(|c| c.webhook_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = sqlx::query(
        "SELECT w.id, (w.definition::jsonb) ->> 'url' AS url, w.enabled,
            w.client_certificate, w.client_key,
            ARRAY(SELECT s.secret FROM webhook_secrets s
                  WHERE s.webhook_id = w.id AND (s.expires_at IS NULL OR s.expires_at > $1)
                  ORDER BY s.expires_at IS NOT NULL, s.created_at DESC, s.id DESC) AS secrets
         FROM webhooks w WHERE w.id = ANY($2)",
    )
    .bind(at)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut targets = HashMap::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let url: Option<String> = row.try_get("url")?;
        let enabled: bool = row.try_get("enabled")?;
        let secrets: Vec<String> = row.try_get("secrets")?;
        targets.insert(id, (url, enabled, secrets, client_tls(row)?));
    }
    for delivery in claimed.iter_mut() {
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

/// Disables a webhook: its definition says `enabled: false`, with the
/// reason beside it. Whether it was enabled.
async fn disable(
    tx: &mut Transaction<'_, Postgres>,
    webhook_id: &str,
    reason: &str,
    at: Millis,
) -> Result<bool, StoreError> {
    let definition: Option<String> =
        sqlx::query_scalar("SELECT definition FROM webhooks WHERE id = $1 AND enabled FOR UPDATE")
            .bind(webhook_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(definition) = definition else {
        return Ok(false);
    };
    let definition =
        disabled_definition(&definition).map_err(|e| StoreError::Database(Box::new(e)))?;
    sqlx::query(
        "UPDATE webhooks SET definition = $1, enabled = FALSE, revision = revision + 1,
         updated_at = $2, disabled_reason = $3 WHERE id = $4",
    )
    .bind(definition)
    .bind(at)
    .bind(reason)
    .bind(webhook_id)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
        self.closed.send_replace(true);
    }

    async fn stopped(&self) {
        let mut closed = self.closed.subscribe();
        // The sender lives in `self`: `wait_for` ends only when it is sent.
        let _ = closed.wait_for(|closed| *closed).await;
    }

    async fn create_tenant(&self, id: &str, name: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: now(),
        };
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(tenant.created_at)
        .execute(&self.pool)
        .await?;
        match inserted.rows_affected() {
            1 => Ok(tenant),
            _ => Err(StoreError::Conflict(format!("tenant {id:?}"))),
        }
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
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
             SELECT $1, id, $2, $3, $4, $5 FROM tenants WHERE id = $6",
        )
        .bind(&record.id)
        .bind(record.kind.as_str())
        .bind(&key.digest)
        .bind(&record.hint)
        .bind(record.created_at)
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        match inserted.rows_affected() {
            1 => Ok(record),
            _ => Err(StoreError::NotFound(format!("tenant {tenant_id:?}"))),
        }
    }

    async fn keys(&self, tenant_id: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, kind, hint, created_at, revoked_at FROM api_keys
             WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(key).collect::<Result<_, _>>()?)
    }

    async fn revoke_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let revoked =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now())
                .bind(key_id)
                .execute(&self.pool)
                .await?;
        Ok(revoked.rows_affected() == 1)
    }

    async fn caller(&self, digest: &[u8]) -> Result<Option<Caller>, StoreError> {
        self.callers.call(0, digest.to_vec()).await
    }

    async fn create_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: &str,
        quota: Quota,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        lock_tenant(&mut tx, &webhook.tenant_id).await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS count, COALESCE(SUM(pattern_weight), 0)::BIGINT AS weight
             FROM webhooks WHERE tenant_id = $1",
        )
        .bind(&webhook.tenant_id)
        .fetch_one(&mut *tx)
        .await?;
        let (webhooks, others): (i64, i64) = (row.try_get("count")?, row.try_get("weight")?);
        if webhooks >= i64::from(quota.webhooks) {
            return Err(StoreError::WebhookQuota(quota.webhooks));
        }
        check_pattern_weight(others, webhook, quota)?;
        sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, definition, enabled, revision, created_at,
                updated_at, disabled_reason, client_certificate, client_key, pattern_weight)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&webhook.id)
        .bind(&webhook.tenant_id)
        .bind(&webhook.definition)
        .bind(webhook.enabled)
        .bind(webhook.revision)
        .bind(webhook.created_at)
        .bind(webhook.updated_at)
        .bind(&webhook.disabled_reason)
        .bind(webhook.client_tls.as_ref().map(|tls| &tls.certificate))
        .bind(webhook.client_tls.as_ref().map(|tls| &tls.key))
        .bind(weight(webhook))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&webhook.id)
        .bind(secret)
        .bind(webhook.created_at)
        .execute(&mut *tx)
        .await?;
        notify_webhook(&mut tx, &self.instance, &webhook.tenant_id, &webhook.id).await?;
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
            "SELECT * FROM webhooks WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(webhook).collect::<Result<_, _>>()?)
    }

    async fn webhook(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(webhook).transpose()?)
    }

    async fn update_webhook(
        &self,
        webhook: &WebhookRecord,
        quota: Quota,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        lock_tenant(&mut tx, &webhook.tenant_id).await?;
        let stored: Option<Option<i32>> = sqlx::query_scalar(
            "SELECT pattern_weight FROM webhooks WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&webhook.tenant_id)
        .bind(&webhook.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(stored) = stored else {
            return Ok(false);
        };
        if weight(webhook).unwrap_or(0) > stored.unwrap_or(0) {
            let others: i64 = sqlx::query_scalar(
                "SELECT COALESCE(SUM(pattern_weight), 0)::BIGINT FROM webhooks
                 WHERE tenant_id = $1 AND id <> $2",
            )
            .bind(&webhook.tenant_id)
            .bind(&webhook.id)
            .fetch_one(&mut *tx)
            .await?;
            check_pattern_weight(others, webhook, quota)?;
        }
        let updated = sqlx::query(
            "UPDATE webhooks SET definition = $1, enabled = $2, revision = $3, updated_at = $4,
                disabled_reason = $5, client_certificate = $9, client_key = $10,
                pattern_weight = $11,
                -- enabling again starts a new record of failures
                failing_since = CASE WHEN NOT enabled AND $2 THEN NULL ELSE failing_since END
             WHERE tenant_id = $6 AND id = $7 AND revision = $8",
        )
        .bind(&webhook.definition)
        .bind(webhook.enabled)
        .bind(webhook.revision)
        .bind(webhook.updated_at)
        .bind(&webhook.disabled_reason)
        .bind(&webhook.tenant_id)
        .bind(&webhook.id)
        .bind(webhook.revision - 1)
        .bind(webhook.client_tls.as_ref().map(|tls| &tls.certificate))
        .bind(webhook.client_tls.as_ref().map(|tls| &tls.key))
        .bind(weight(webhook))
        .execute(&mut *tx)
        .await?;
        let updated = updated.rows_affected() == 1;
        if updated {
            notify_webhook(&mut tx, &self.instance, &webhook.tenant_id, &webhook.id).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    async fn set_pattern_weights(&self, weights: Vec<(String, u32)>) -> Result<(), StoreError> {
        let (ids, weights): (Vec<String>, Vec<i32>) = weights
            .into_iter()
            .map(|(id, w)| (id, i32::try_from(w).unwrap_or(i32::MAX)))
            .unzip();
        sqlx::query(
            "UPDATE webhooks w SET pattern_weight = n.weight
             FROM UNNEST($1::TEXT[], $2::INTEGER[]) AS n (id, weight)
             WHERE w.id = n.id AND w.pattern_weight IS NULL",
        )
        .bind(&ids)
        .bind(&weights)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = deleted.rows_affected() == 1;
        if deleted {
            notify_webhook(&mut tx, &self.instance, tenant_id, id).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        old_until: Millis,
    ) -> Result<bool, StoreError> {
        let at = now();
        let mut tx = self.begin().await?;
        let touched =
            sqlx::query("UPDATE webhooks SET updated_at = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(at)
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if touched.rows_affected() == 0 {
            return Ok(false);
        }
        // At most the current secret and one previous sign (see the SQLite
        // store).
        sqlx::query(
            "DELETE FROM webhook_secrets WHERE webhook_id = $1
               AND (expires_at IS NOT NULL OR $2 <= $3)",
        )
        .bind(id)
        .bind(old_until)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE webhook_secrets SET expires_at = $1 WHERE webhook_id = $2 AND expires_at IS NULL",
        )
        .bind(old_until)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(secret)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn signing_secrets(
        &self,
        webhook_id: &str,
        at: Millis,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT secret FROM webhook_secrets
             WHERE webhook_id = $1 AND (expires_at IS NULL OR expires_at > $2)
             ORDER BY expires_at IS NOT NULL, created_at DESC, id DESC",
        )
        .bind(webhook_id)
        .bind(at)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn stored_secrets(&self) -> Result<Vec<StoredSecret>, StoreError> {
        let rows = sqlx::query(
            "SELECT id AS row, NULL AS webhook, secret AS text FROM webhook_secrets
             UNION ALL
             SELECT NULL, id, client_key FROM webhooks WHERE client_key IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let place = match row.try_get::<Option<i64>, _>("row")? {
                    Some(row) => SecretPlace::Signing(row),
                    None => SecretPlace::ClientKey(row.try_get("webhook")?),
                };
                Ok(StoredSecret {
                    place,
                    text: row.try_get("text")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn rewrite_secrets(&self, secrets: Vec<StoredSecret>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for secret in &secrets {
            match &secret.place {
                SecretPlace::Signing(row) => {
                    sqlx::query("UPDATE webhook_secrets SET secret = $1 WHERE id = $2")
                        .bind(&secret.text)
                        .bind(row)
                        .execute(&mut *tx)
                        .await?
                }
                SecretPlace::ClientKey(webhook) => {
                    sqlx::query("UPDATE webhooks SET client_key = $1 WHERE id = $2")
                        .bind(&secret.text)
                        .bind(webhook)
                        .execute(&mut *tx)
                        .await?
                }
            };
        }
        tx.commit().await?;
        Ok(())
    }

    async fn webhook_counts(&self) -> Result<WebhookCounts, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE enabled) AS enabled,
                    COUNT(*) FILTER (WHERE NOT enabled) AS disabled
             FROM webhooks",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(WebhookCounts {
            enabled: row.try_get("enabled")?,
            disabled: row.try_get("disabled")?,
        })
    }

    async fn all_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM webhooks ORDER BY tenant_id, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(webhook).collect::<Result<_, _>>()?)
    }

    async fn revisions(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT tenant_id, id, revision FROM webhooks ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    fn follow(&self) -> Option<mpsc::Receiver<Change>> {
        let (changes, followed) = mpsc::channel(1024);
        tokio::spawn(listen(
            self.pool.clone(),
            self.instance.clone(),
            changes.clone(),
        ));
        let mut closed = self.closed.subscribe();
        tokio::spawn(async move {
            let mut check = tokio::time::interval(CHECK_EVERY);
            loop {
                tokio::select! {
                    _ = closed.wait_for(|closed| *closed) => return,
                    _ = check.tick() => {}
                }
                if changes.send(Change::Missed).await.is_err() {
                    return;
                }
            }
        });
        Some(followed)
    }

    async fn ingest(
        &self,
        tenant_id: &str,
        events: Vec<NewEvent>,
        at: Millis,
    ) -> Result<Vec<Ingested>, StoreError> {
        let request = ingest::Request {
            tenant_id: tenant_id.to_owned(),
            events,
            at,
        };
        self.ingest.call(request.lane(), request).await
    }

    async fn deliveries_of(&self, event_ids: &[String]) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE event_id = ANY($1)")
                .bind(event_ids)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn claim(
        &self,
        at: Millis,
        lease_until: Millis,
        limit: u32,
        room: &Room,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.begin().await?;
        // The candidates: each webhook's oldest due deliveries, each the
        // head of its ticket, read without locks.
        let rows = sqlx::query(
            "SELECT seq, tenant_id, webhook_id, next_attempt_at FROM (
                SELECT d.seq, d.tenant_id, d.webhook_id, d.next_attempt_at,
                       ROW_NUMBER() OVER (PARTITION BY d.webhook_id
                                          ORDER BY d.next_attempt_at, d.seq) AS n
                FROM deliveries d
                WHERE d.state = 'pending' AND d.head AND d.next_attempt_at <= $1
                  AND (d.leased_until IS NULL OR d.leased_until <= $1)
                  AND NOT EXISTS (
                      SELECT 1 FROM webhooks w
                      WHERE w.id = d.webhook_id AND w.paused_until > $1)
             ) AS c WHERE n <= $2",
        )
        .bind(at)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        // The paced webhooks among them, locked: the claims of every
        // process take their slots one after another.
        let webhooks: Vec<String> = rows
            .iter()
            .map(|row| row.try_get("webhook_id"))
            .collect::<Result<BTreeSet<String>, _>>()?
            .into_iter()
            .collect();
        let pace = sqlx::query(
            "SELECT id, rate_limit, next_send_at FROM webhooks
             WHERE id = ANY($1) AND rate_limit IS NOT NULL ORDER BY id FOR UPDATE",
        )
        .bind(&webhooks)
        .fetch_all(&mut *tx)
        .await?;
        let mut paced = HashMap::new();
        for row in &pace {
            let webhook: String = row.try_get("id")?;
            let room = room.of(&webhook).min(limit);
            let free = slots(
                row.try_get("rate_limit")?,
                row.try_get("next_send_at")?,
                at,
                room,
            );
            paced.insert(webhook, free);
        }
        let mut by_tenant: HashMap<String, Vec<(Millis, i64)>> = HashMap::new();
        let mut taken: HashMap<String, u32> = HashMap::new();
        for row in &rows {
            let (tenant, webhook): (String, String) =
                (row.try_get("tenant_id")?, row.try_get("webhook_id")?);
            let mut room_left = room.of(&webhook).min(limit).min(room.of_tenant(&tenant));
            if let Some((free, _)) = paced.get(&webhook) {
                room_left = room_left.min(u32::try_from(free.len()).unwrap_or(0));
            }
            let used = taken.entry(webhook).or_default();
            if *used >= room_left {
                continue;
            }
            *used += 1;
            by_tenant
                .entry(tenant)
                .or_default()
                .push((row.try_get("next_attempt_at")?, row.try_get("seq")?));
        }
        let chosen = take_turns(by_tenant, room, limit);
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        // Leased only if still free once locked: another instance may have
        // taken some meanwhile (skipped while it holds them, refused after).
        let rows = sqlx::query(
            "UPDATE deliveries SET leased_until = $1, lease = $4
             WHERE seq IN (
                 SELECT seq FROM deliveries
                 WHERE seq = ANY($2) AND state = 'pending'
                   AND (leased_until IS NULL OR leased_until <= $3)
                 FOR UPDATE SKIP LOCKED)
             RETURNING seq, id, tenant_id, webhook_id, payload, attempts, lease",
        )
        .bind(lease_until)
        .bind(&chosen)
        .bind(at)
        .bind(ulid::Ulid::new().to_string())
        .fetch_all(&mut *tx)
        .await?;
        let mut leased: HashMap<i64, Claimed> = HashMap::new();
        for row in &rows {
            leased.insert(row.try_get("seq")?, claimed(row)?);
        }
        // In turns: the order the tenants are served in.
        let mut claims: Vec<Claimed> = chosen.iter().filter_map(|seq| leased.remove(seq)).collect();
        for (webhook, next) in take_slots(&mut claims, paced) {
            sqlx::query("UPDATE webhooks SET next_send_at = $1 WHERE id = $2")
                .bind(next)
                .bind(webhook)
                .execute(&mut *tx)
                .await?;
        }
        let mut targets: Vec<&mut Claimed> = claims.iter_mut().collect();
        fill_targets(&mut tx, at, &mut targets).await?;
        tx.commit().await?;
        Ok(claims)
    }

    async fn finish(
        &self,
        delivery_id: &str,
        lease: &str,
        attempt: Option<&Attempt>,
        next: Next,
        health: Health,
        chain: Option<Millis>,
    ) -> Result<Finished, StoreError> {
        let request = finish::Request {
            delivery_id: delivery_id.to_owned(),
            lease: lease.to_owned(),
            attempt: attempt.cloned(),
            next,
            health,
            chain,
        };
        self.records.call(0, request).await
    }

    async fn pause_webhook(
        &self,
        webhook_id: &str,
        until: Option<Millis>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE webhooks SET paused_until = $1 WHERE id = $2")
            .bind(until)
            .bind(webhook_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release(&self, delivery_id: &str, lease: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET leased_until = NULL, lease = NULL
             WHERE id = $1 AND COALESCE(lease, '') = $2",
        )
        .bind(delivery_id)
        .bind(lease)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delivery_log(
        &self,
        tenant_id: &str,
        filter: &LogFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<LogPage, StoreError> {
        history::delivery_log(&self.pool, tenant_id, filter, before, limit).await
    }

    async fn delivery(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<(DeliveryRecord, Vec<Attempt>)>, StoreError> {
        let row = sqlx::query(&format!("{DELIVERY} WHERE d.tenant_id = $1 AND d.id = $2"))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let attempts = sqlx::query("SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(Some((
            delivery(&row)?,
            attempts.iter().map(attempt).collect::<Result<_, _>>()?,
        )))
    }

    async fn redeliver(&self, tenant_id: &str, id: &str, at: Millis) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // Its ticket's lock, as every writer to a ticket's queue takes it.
        let ticket: Option<(String, String)> = sqlx::query_as(
            "SELECT webhook_id, ticket_id FROM deliveries WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((webhook_id, ticket_id)) = ticket else {
            return Ok(false);
        };
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ticket_lock(&webhook_id, &ticket_id))
            .execute(&mut *tx)
            .await?;
        let updated = sqlx::query(
            "UPDATE deliveries d SET
                leased_until = CASE WHEN d.state = 'pending' THEN d.leased_until END,
                lease = CASE WHEN d.state = 'pending' THEN d.lease END,
                head = CASE WHEN d.state = 'pending' THEN d.head ELSE NOT EXISTS (
                    SELECT 1 FROM deliveries e
                    WHERE e.state = 'pending' AND e.webhook_id = d.webhook_id
                      AND e.ticket_id = d.ticket_id) END,
                state = 'pending', next_attempt_at = $1, updated_at = $1
             WHERE d.tenant_id = $2 AND d.id = $3",
        )
        .bind(at)
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let updated = updated.rows_affected() == 1;
        if updated {
            notify_deliveries(&mut tx, &self.instance).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    async fn history(
        &self,
        tenant_id: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        history::history(&self.pool, tenant_id, query).await
    }

    async fn replay(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        deliveries: Vec<Replayed>,
        at: Millis,
    ) -> Result<u64, StoreError> {
        history::replay(
            &self.pool,
            &self.instance,
            tenant_id,
            webhook_id,
            deliveries,
            at,
        )
        .await
    }

    async fn delivered(
        &self,
        webhook_id: &str,
        event_ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT event_id FROM deliveries WHERE webhook_id = $1 AND event_id = ANY($2)",
        )
        .bind(webhook_id)
        .bind(event_ids)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect())
    }

    async fn failed_since(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: Millis,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        let found: i64 = sqlx::query_scalar(super::policy::FAILED_SINCE)
            .bind(tenant_id)
            .bind(webhook_id)
            .bind(since)
            .bind(i64::from(limit) + 1)
            .fetch_one(&self.pool)
            .await?;
        let found = found.unsigned_abs();
        Ok((found.min(u64::from(limit)), found > u64::from(limit)))
    }

    async fn recover(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: Millis,
        limit: u32,
        at: Millis,
    ) -> Result<(u64, bool), StoreError> {
        history::recover(
            &self.pool,
            &self.instance,
            tenant_id,
            webhook_id,
            since,
            limit,
            at,
        )
        .await
    }

    async fn attempt_points(
        &self,
        webhook_id: &str,
        since: Millis,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<AttemptPoint>, StoreError> {
        history::attempt_points(&self.pool, webhook_id, since, until, limit).await
    }

    async fn queue(&self) -> Result<QueueStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM deliveries
             WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            depth: row.try_get("depth")?,
            oldest: row.try_get("oldest")?,
        })
    }

    /// One instance prunes at a time: the others find the lock taken and
    /// prune nothing this time round.
    async fn prune(&self, before: Millis) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PRUNE_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !ours {
            return Ok(0);
        }
        let mut gone = 0;
        for statement in [
            "DELETE FROM attempts WHERE started_at < $1",
            "DELETE FROM deliveries WHERE state <> 'pending' AND updated_at < $1",
            "DELETE FROM events WHERE received_at < $1
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

/// Forwards other processes' notifications to `changes` until the pool
/// closes. A lost connection is reconnected (and listened on again) by
/// the listener; what was said meanwhile is lost, so it is reported as
/// [`Change::Missed`].
async fn listen(pool: PgPool, instance: String, changes: mpsc::Sender<Change>) {
    let mut listener = loop {
        match connect_listener(&pool).await {
            Ok(listener) => break listener,
            Err(StoreError::Unavailable(error)) if pool.is_closed() => {
                tracing::debug!(%error, "stopped following other instances");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot follow other instances' changes; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    };
    loop {
        let change = match listener.try_recv().await {
            Ok(Some(notification)) => {
                let mut parts = notification.payload().split('\t');
                if parts.next() == Some(instance.as_str()) {
                    continue;
                }
                match (notification.channel(), parts.next(), parts.next()) {
                    (WEBHOOKS, Some(tenant_id), Some(id)) => Change::Webhook {
                        tenant_id: tenant_id.to_owned(),
                        id: id.to_owned(),
                    },
                    (DELIVERIES, _, _) => Change::Deliveries,
                    _ => continue,
                }
            }
            Ok(None) => Change::Missed,
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                tracing::warn!(%error, "lost the notifications of other instances; reconnecting");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                Change::Missed
            }
        };
        if changes.send(change).await.is_err() {
            return;
        }
    }
}

async fn connect_listener(pool: &PgPool) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([WEBHOOKS, DELIVERIES]).await?;
    Ok(listener)
}
