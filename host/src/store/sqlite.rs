//! The embedded default: SQLite.
//!
//! - WAL journal, so readers never wait for the writer.
//! - `synchronous = FULL`: a commit is on disk (the WAL is fsynced) before it
//!   returns, so an answered request survives a power cut, not only a crash.
//! - One connection writes, on a thread of its own that commits in groups
//!   ([`super::writer`], with rusqlite); queries that only read go through a
//!   few read-only sqlx connections. SQLite allows one writer at a time
//!   anyway, and queueing writes in our own queue instead of in SQLite's
//!   busy handler keeps them fair and free of `SQLITE_BUSY`.
//! - Migrations are embedded in the binary and run at start (sqlx).

use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::policy::{
    ATTEMPT_POINTS, DELIVERY, FAILED_SINCE, LogWalk, history_start, in_order, pick_history,
};
use super::writer::Writer;
use super::writes::{self, json_list};
use super::{
    Attempt, AttemptPoint, Caller, Claimed, ClientTls, DeliveryRecord, EventPlace, Finished,
    Health, HistoryQuery, Ingested, KeyRecord, LOG_SCAN, LogFilter, LogPage, Millis, NewEvent,
    Next, QueueStats, Quota, Replayed, Room, SecretPlace, Store, StoreError, StoredEvent,
    StoredSecret, Tenant, WebhookCounts, WebhookRecord, now,
};
use crate::keys::{KeyKind, NewKey};

/// Readers in the pool: enough for two cores' worth of concurrent requests.
const READERS: u32 = 4;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The only connection that writes.
    pub(super) writer: Writer,
    /// Connections for queries that only read.
    pub(super) reader: SqlitePool,
    /// The serving process's lock (see [`SqliteStore::serve`]), held
    /// until the store is closed or the process ends.
    served: Arc<Mutex<Option<std::fs::File>>>,
}

impl SqliteStore {
    /// Makes the writer's thread panic, as a bug in a write would: every
    /// write from then on fails with [`StoreError::WriterGone`].
    #[cfg(test)]
    pub(crate) async fn crash_writer(&self) {
        let crashed = self
            .writer
            .write(|_| -> rusqlite::Result<()> { panic!("a write failed on purpose") })
            .await;
        assert!(matches!(crashed, Err(StoreError::WriterGone)));
    }

    /// Opens (creating if needed) the database at `url` and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // sqlx names an in-memory database `file:sqlx-in-memory-N`, which
        // the writer would open as a file of that name.
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::InMemory);
        }
        let path = options.get_filename().to_owned();
        keep_private(&path)?;
        let migrator = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&migrator).await?;
        migrator.close().await;
        let writer = Writer::open(&path)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.read_only(true))
            .await?;
        // SQLite gives its log files the database file's mode; files of
        // an earlier version are made private here.
        keep_private(&path)?;
        Ok(Self {
            writer,
            reader,
            served: Arc::default(),
        })
    }

    /// Opens the database at `url` for the one process that serves it.
    ///
    /// Every running server matches events against the webhooks it loaded
    /// and hears of changes made through itself only, and its dispatcher
    /// assumes no other process claims deliveries: two servers on one
    /// file would fire stale rules and race each other. A second server
    /// is refused ([`StoreError::AlreadyServed`], naming the process that
    /// holds it); commands (`tenant`, `key`) open it with [`Self::open`]
    /// beside a server, as before. The lock is an advisory `flock` on
    /// `<database>.serve-lock`, released by [`Store::close`] or when the
    /// process ends, however it ends.
    pub async fn serve(url: &str) -> Result<Self, StoreError> {
        let store = Self::open(url).await?;
        let path = SqliteConnectOptions::from_str(url)?
            .get_filename()
            .to_owned();
        let lock = lock_for_serving(&path)?;
        *store.served.lock().unwrap_or_else(PoisonError::into_inner) = Some(lock);
        Ok(store)
    }
}

/// Takes the serving lock of the database at `path`, writing this
/// process's id in it for the next one to name.
fn lock_for_serving(path: &std::path::Path) -> Result<std::fs::File, StoreError> {
    use std::io::{Read as _, Seek as _, Write as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut name = path.as_os_str().to_owned();
    name.push(".serve-lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&name)
        .map_err(StoreError::Files)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            let pid = std::process::id();
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{pid}"))
                .map_err(StoreError::Files)?;
            Ok(file)
        }
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            // The holder wrote its id when it took the lock; a file being
            // rewritten at this moment reads as no id.
            let _ = file.read_to_string(&mut holder);
            Err(StoreError::AlreadyServed {
                path: path.display().to_string(),
                pid: holder.trim().parse().ok(),
            })
        }
        Err(error) => Err(StoreError::Files(error.into())),
    }
}

/// The database and its log files, readable and writable by the server's
/// user only (0600), whatever the umask: they hold every event, and the
/// secrets (sealed). A missing database file is created so.
fn keep_private(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(StoreError::Files(error)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::Files(error)),
        }
    }
    Ok(())
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
        client_tls: client_tls(
            row.try_get("client_certificate")?,
            row.try_get("client_key")?,
        ),
        pattern_weight: row.try_get("pattern_weight")?,
        paused_until: row.try_get("paused_until")?,
    })
}

/// A client certificate from its two columns, when both are set.
pub(super) fn client_tls(certificate: Option<String>, key: Option<String>) -> Option<ClientTls> {
    Some(ClientTls {
        certificate: certificate?,
        key: key?,
    })
}

fn delivery(row: &SqliteRow) -> Result<DeliveryRecord, sqlx::Error> {
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
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_status: row.try_get("last_status")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
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

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        self.writer.write(|tx| tx.execute_batch("SELECT 1")).await
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
        self.served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    async fn stopped(&self) {
        self.writer.stopped().await;
    }

    async fn create_tenant(&self, id: &str, name: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: now(),
        };
        let row = tenant.clone();
        let created = self
            .writer
            .write(move |tx| writes::create_tenant(tx, &row.id, &row.name, row.created_at))
            .await?;
        match created {
            true => Ok(tenant),
            false => Err(StoreError::Conflict(format!("tenant {id:?}"))),
        }
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
        let (row, digest) = (record.clone(), key.digest.clone());
        let stored = self
            .writer
            .write(move |tx| writes::create_key(tx, &row, &digest))
            .await?;
        match stored {
            true => Ok(record),
            false => Err(StoreError::NotFound(format!("tenant {tenant_id:?}"))),
        }
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
        let (key_id, at) = (key_id.to_owned(), now());
        self.writer
            .write(move |tx| writes::revoke_key(tx, &key_id, at))
            .await
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
        quota: Quota,
    ) -> Result<(), StoreError> {
        let (webhook, secret) = (webhook.clone(), secret.to_owned());
        self.writer
            .write(move |tx| writes::create_webhook(tx, &webhook, &secret, quota))
            .await
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

    async fn update_webhook(
        &self,
        webhook: &WebhookRecord,
        quota: Quota,
    ) -> Result<bool, StoreError> {
        let webhook = webhook.clone();
        self.writer
            .write(move |tx| writes::update_webhook(tx, &webhook, quota))
            .await
    }

    async fn set_pattern_weights(&self, weights: Vec<(String, u32)>) -> Result<(), StoreError> {
        self.writer
            .write(move |tx| writes::set_pattern_weights(tx, &weights))
            .await
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .write(move |tx| writes::delete_webhook(tx, &tenant_id, &id))
            .await
    }

    async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        old_until: Millis,
    ) -> Result<bool, StoreError> {
        let (tenant_id, id, secret) = (tenant_id.to_owned(), id.to_owned(), secret.to_owned());
        let at = now();
        self.writer
            .write(move |tx| writes::rotate_secret(tx, &tenant_id, &id, &secret, old_until, at))
            .await
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

    async fn stored_secrets(&self) -> Result<Vec<StoredSecret>, StoreError> {
        let rows = sqlx::query(
            "SELECT rowid AS row, NULL AS webhook, secret AS text FROM webhook_secrets
             UNION ALL
             SELECT NULL, id, client_key FROM webhooks WHERE client_key IS NOT NULL",
        )
        .fetch_all(&self.reader)
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
        self.writer
            .write(move |tx| writes::rewrite_secrets(tx, &secrets))
            .await
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

    async fn revisions(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT tenant_id, id, revision FROM webhooks ORDER BY id")
                .fetch_all(&self.reader)
                .await?,
        )
    }

    /// One process serves an SQLite database ([`SqliteStore::serve`]):
    /// there is no one else to follow.
    fn follow(&self) -> Option<tokio::sync::mpsc::Receiver<super::Change>> {
        None
    }

    async fn ingest(
        &self,
        tenant_id: &str,
        events: Vec<NewEvent>,
        at: Millis,
    ) -> Result<Vec<Ingested>, StoreError> {
        let tenant_id = tenant_id.to_owned();
        self.writer
            .write(move |tx| writes::ingest(tx, &tenant_id, &events, at))
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
        room: &Room,
    ) -> Result<Vec<Claimed>, StoreError> {
        let room = room.clone();
        self.writer
            .write(move |tx| writes::claim(tx, at, lease_until, limit, &room))
            .await
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
        let (delivery_id, lease) = (delivery_id.to_owned(), lease.to_owned());
        let (attempt, at) = (attempt.cloned(), now());
        self.writer
            .write(move |tx| {
                writes::finish(
                    tx,
                    &delivery_id,
                    &lease,
                    attempt.as_ref(),
                    next,
                    health,
                    chain,
                    at,
                )
            })
            .await
    }

    async fn pause_webhook(
        &self,
        webhook_id: &str,
        until: Option<Millis>,
    ) -> Result<(), StoreError> {
        let webhook_id = webhook_id.to_owned();
        self.writer
            .write(move |tx| writes::pause_webhook(tx, &webhook_id, until))
            .await
    }

    async fn release(&self, delivery_id: &str, lease: &str) -> Result<(), StoreError> {
        let (delivery_id, lease) = (delivery_id.to_owned(), lease.to_owned());
        self.writer
            .write(move |tx| writes::release(tx, &delivery_id, &lease))
            .await
    }

    async fn delivery_log(
        &self,
        tenant_id: &str,
        filter: &LogFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<LogPage, StoreError> {
        let walk = LogWalk::of(filter);
        let before = before.unwrap_or(i64::MAX);
        let statement = walk.page(|n| format!("?{n}"));
        let rows = sqlx::query(&statement)
            .bind(tenant_id)
            .bind(&filter.webhook_id)
            .bind(&filter.ticket_id)
            .bind(&filter.state)
            .bind(&filter.event_type)
            .bind(filter.since.unwrap_or(i64::MIN))
            .bind(filter.until.unwrap_or(i64::MAX))
            .bind(before)
            .bind(LOG_SCAN)
            .bind(limit + 1)
            .fetch_all(&self.reader)
            .await?;
        let mut deliveries: Vec<DeliveryRecord> =
            rows.iter().map(delivery).collect::<Result<_, _>>()?;
        let before = if deliveries.len() > limit as usize {
            deliveries.truncate(limit as usize);
            deliveries.last().map(|d| d.seq)
        } else {
            let statement = walk.end(|n| format!("?{n}"));
            let end = sqlx::query_scalar(&statement);
            let end = match walk {
                LogWalk::Ticket => end.bind(tenant_id).bind(&filter.ticket_id),
                LogWalk::Webhook => end.bind(&filter.webhook_id),
                LogWalk::Tenant => end.bind(tenant_id),
            };
            end.bind(before)
                .bind(LOG_SCAN - 1)
                .fetch_optional(&self.reader)
                .await?
        };
        Ok(LogPage { deliveries, before })
    }

    async fn delivery(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<(DeliveryRecord, Vec<Attempt>)>, StoreError> {
        let row = sqlx::query(&format!("{DELIVERY} WHERE d.tenant_id = ? AND d.id = ?"))
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
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .write(move |tx| writes::redeliver(tx, &tenant_id, &id, at))
            .await
    }

    async fn history(
        &self,
        tenant_id: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (from, id) = history_start(query);
        let statement = match query.newest_first {
            true => {
                "SELECT received_at, id, length(CAST(body AS BLOB)) AS size FROM events
                 WHERE tenant_id = ?1 AND event_type = ?2 AND test = 0
                   AND received_at >= ?3 AND received_at < ?4 AND (received_at, id) < (?5, ?6)
                 ORDER BY received_at DESC, id DESC LIMIT ?7"
            }
            false => {
                "SELECT received_at, id, length(CAST(body AS BLOB)) AS size FROM events
                 WHERE tenant_id = ?1 AND event_type = ?2 AND test = 0
                   AND received_at >= ?3 AND received_at < ?4 AND (received_at, id) > (?5, ?6)
                 ORDER BY received_at, id LIMIT ?7"
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
                .bind(query.limit)
                .fetch_all(&self.reader)
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
        let rows =
            sqlx::query("SELECT id, body FROM events WHERE id IN (SELECT value FROM json_each(?))")
                .bind(json_list(&ids))
                .fetch_all(&self.reader)
                .await?;
        let mut bodies = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            bodies.insert(
                row.try_get::<String, _>("id")?,
                row.try_get::<String, _>("body")?,
            );
        }
        Ok(in_order(picked, bodies))
    }

    async fn replay(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        deliveries: Vec<Replayed>,
        at: Millis,
    ) -> Result<u64, StoreError> {
        let (tenant_id, webhook_id) = (tenant_id.to_owned(), webhook_id.to_owned());
        self.writer
            .write(move |tx| writes::replay(tx, &tenant_id, &webhook_id, &deliveries, at))
            .await
    }

    async fn delivered(
        &self,
        webhook_id: &str,
        event_ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT event_id FROM deliveries
             WHERE webhook_id = ? AND event_id IN (SELECT value FROM json_each(?))",
        )
        .bind(webhook_id)
        .bind(json_list(event_ids))
        .fetch_all(&self.reader)
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
        let found: i64 = sqlx::query_scalar(FAILED_SINCE)
            .bind(tenant_id)
            .bind(webhook_id)
            .bind(since)
            .bind(i64::from(limit) + 1)
            .fetch_one(&self.reader)
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
        let (tenant_id, webhook_id) = (tenant_id.to_owned(), webhook_id.to_owned());
        self.writer
            .write(move |tx| writes::recover(tx, &tenant_id, &webhook_id, since, limit, at))
            .await
    }

    async fn attempt_points(
        &self,
        webhook_id: &str,
        since: Millis,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<AttemptPoint>, StoreError> {
        let rows = sqlx::query(ATTEMPT_POINTS)
            .bind(webhook_id)
            .bind(since)
            .bind(until)
            .bind(limit)
            .fetch_all(&self.reader)
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
        self.writer.write(move |tx| writes::prune(tx, before)).await
    }
}
