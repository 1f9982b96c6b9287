//! Persistence: one [`Store`] trait owns every query the server makes, so the
//! API and the commands never see SQL, and a second database (Postgres) is
//! one more implementation of the trait, not a change to its callers.
//!
//! Nothing the server accepts is held only in memory: every write returns
//! after its transaction has committed.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::keys::{KeyKind, NewKey};

mod policy;
mod postgres;
mod sqlite;
mod writer;
mod writes;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// How a process uses the database it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// To serve it: one process per SQLite database
    /// ([`SqliteStore::serve`]), any number on Postgres.
    Serve,
    /// For a command (`tenant`, `key`), beside any server.
    Command,
}

/// Opens the database `url` names, by its scheme: `sqlite:` (the embedded
/// default) or `postgres:`/`postgresql:` ([`PgStore`]).
pub async fn open(url: &str, opening: Opening) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of(url) {
        Some(Backend::Sqlite) => Ok(Arc::new(match opening {
            Opening::Serve => SqliteStore::serve(url).await?,
            Opening::Command => SqliteStore::open(url).await?,
        })),
        Some(Backend::Postgres) => Ok(Arc::new(PgStore::open(url).await?)),
        None => Err(StoreError::Unsupported),
    }
}

/// The databases the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file, embedded.
    Sqlite,
    /// A Postgres server.
    Postgres,
}

impl Backend {
    /// The backend `url`'s scheme names, if any.
    pub fn of(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

/// A change another process made to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A webhook was created, changed, disabled or deleted.
    Webhook {
        /// Its tenant.
        tenant_id: String,
        /// Its id.
        id: String,
    },
    /// Deliveries were stored that no process has leased: a dispatcher
    /// may claim them.
    Deliveries,
    /// Changes may have gone unheard: check everything.
    Missed,
}

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
    /// An event's idempotency key was stored before with a different event
    /// (see [`Store::ingest`]); nothing of the request was stored.
    #[error("{0}")]
    IdempotencyMismatch(IdempotencyMismatch),
    /// The delivery's lease ran out and another worker holds it now: its
    /// outcome is the other's to record.
    #[error("delivery {0} is leased to another worker now")]
    LeaseLost(String),
    /// The tenant has as many webhooks as it may have.
    #[error("a tenant has at most {0} webhooks (max_webhooks_per_tenant)")]
    WebhookQuota(u32),
    /// The write would take the tenant's webhooks' patterns past the weight
    /// they may have together.
    #[error(
        "the `matches` patterns of the tenant's webhooks would weigh {total} together; \
         they may weigh {limit} (max_pattern_weight_per_tenant)"
    )]
    PatternWeightQuota {
        /// What they would weigh with the write.
        total: u64,
        /// What they may weigh.
        limit: u32,
    },
    /// The database could not be reached: a lost connection, no
    /// connection free in time. Retryable; the details are for the logs,
    /// never for clients.
    #[error("database unavailable: {0}")]
    Unavailable(BoxError),
    /// The database failed a statement; the details are for the logs,
    /// never for clients.
    #[error("database error: {0}")]
    Database(BoxError),
    /// The writer has stopped (the store was closed, or its thread died).
    #[error("database error: the writer has stopped")]
    WriterGone,
    /// The URL names an in-memory database, which the writer and the
    /// readers could not share.
    #[error(
        "an in-memory SQLite database is not supported: the writer and the readers would each see their own"
    )]
    InMemory,
    /// Another process serves this SQLite database (see
    /// [`SqliteStore::serve`]).
    #[error(
        "the SQLite database {path} is already served by {}; SQLite serves one process: \
         to run several servers, use Postgres (database_url = \"postgres://…\")",
        pid.map_or_else(|| "another process".to_owned(), |pid| format!("process {pid}"))
    )]
    AlreadyServed {
        /// The database file.
        path: String,
        /// The serving process, as it wrote itself in the lock file.
        pid: Option<u32>,
    },
    /// The database's files could not be created or made private.
    #[error("database files: {0}")]
    Files(std::io::Error),
    /// The URL names no database this server runs on.
    #[error("the database URL must start with sqlite: or postgres:")]
    Unsupported,
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(BoxError),
}

/// A backend's own error, kept for the logs without its type in
/// [`StoreError`]'s.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if unavailable(&error) {
            Self::Unavailable(Box::new(error))
        } else {
            Self::Database(Box::new(error))
        }
    }
}

/// Whether `error` says the database could not be reached (retryable),
/// rather than that it failed a statement.
fn unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

impl StoreError {
    /// `error` for one of several callers who share it: of the kind the
    /// conversion gives, with its text.
    fn shared(error: &sqlx::Error) -> Self {
        let text = error.to_string().into();
        if unavailable(error) {
            Self::Unavailable(text)
        } else {
            Self::Database(text)
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migration(Box::new(error))
    }
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
    /// Why the server disabled it (a `410 Gone`, days of failures), if it
    /// did; cleared when it is enabled again.
    pub disabled_reason: Option<String>,
    /// The client certificate it presents to receivers, if any.
    pub client_tls: Option<ClientTls>,
    /// What its `matches` patterns weigh together
    /// (`inbox_rules::weight::webhook_weight`); `None` for one stored by an
    /// earlier version and not yet weighed.
    pub pattern_weight: Option<u32>,
    /// Until when an open circuit breaker holds its deliveries back
    /// ([`Store::pause_webhook`]); read only: writing the webhook leaves
    /// it as it is.
    pub paused_until: Option<Millis>,
}

/// What a tenant's webhooks may add up to, checked inside the write that
/// creates or changes one, so that concurrent writes cannot pass it
/// together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Webhooks per tenant ([`StoreError::WebhookQuota`]).
    pub webhooks: u32,
    /// Their pattern weights together ([`StoreError::PatternWeightQuota`]).
    pub pattern_weight: u32,
}

/// A webhook's client certificate for mutual TLS, as stored: the chain in
/// PEM and the private key sealed (see [`crate::vault`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// The certificate chain, leaf first (PEM).
    pub certificate: String,
    /// The private key, sealed.
    pub key: String,
}

impl Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

/// Where a stored secret lives, to write it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretPlace {
    /// A signing secret, by its row.
    Signing(i64),
    /// The client key of a webhook, by the webhook's id.
    ClientKey(String),
}

/// A secret as stored: sealed, or in clear from an earlier version.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// Where it lives.
    pub place: SecretPlace,
    /// Its stored text.
    pub text: String,
}

impl Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

/// How many webhooks exist, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookCounts {
    /// Enabled ones.
    pub enabled: i64,
    /// Disabled ones.
    pub disabled: i64,
}

/// An event to store, with the deliveries it causes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `evt_…`.
    pub id: String,
    /// Makes a retried ingest enqueue nothing twice.
    pub idempotency_key: Option<String>,
    /// The ingest event as received.
    pub body: String,
    /// Its type (`event`), by which a backtest or a replay finds it.
    pub event_type: String,
    /// A test delivery's sample event: stored for its delivery, never part
    /// of the tenant's history ([`Store::history`]).
    pub test: bool,
    /// One per matching webhook.
    pub deliveries: Vec<NewDelivery>,
}

/// A delivery to store: everything a retry needs is fixed here.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// `msg_…`: the `webhook-id` of every attempt.
    pub id: String,
    /// The webhook it goes to.
    pub webhook_id: String,
    /// The event's type.
    pub event_type: String,
    /// The ticket, for per-ticket order.
    pub ticket_id: String,
    /// The exact body POSTed.
    pub payload: String,
    /// The engine's explanation of the match (JSON).
    pub explanation: String,
    /// When it is due: `None` for at once. A test delivery, sent by the
    /// request itself, is stored never due.
    pub due: Option<Millis>,
    /// `Some`: this process sends it at once, so it is stored leased until
    /// then and comes back in [`Ingested::leased`], saving a claim. Unless
    /// an earlier delivery of its ticket to its webhook is still pending:
    /// then it is stored unleased and waits its turn (per-ticket order).
    pub lease_until: Option<Millis>,
}

/// What happened to one [`NewEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The event's id: its own, or, for a repeat of an idempotency key, the
    /// id of the event first stored under it.
    pub event_id: String,
    /// `false` for a repeat: nothing was stored.
    pub new: bool,
    /// How many deliveries were stored: one per matched webhook, but none
    /// for a webhook the store holds as disabled when the write runs (one
    /// disabled a moment before, which the matcher had not heard of yet).
    pub stored: usize,
    /// The deliveries stored leased (see [`NewDelivery::lease_until`]),
    /// with their webhook's URL, state and secrets, as a claim gives them.
    pub leased: Vec<Claimed>,
}

/// What a write refused to do, carried out of it as its error so that its
/// transaction rolls back, and read back as a [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error(transparent)]
    Idempotency(IdempotencyMismatch),
    #[error("the tenant has its {0} webhooks already")]
    WebhookQuota(u32),
    #[error("the tenant's patterns would weigh {total}, past {limit}")]
    PatternWeight { total: u64, limit: u32 },
    #[error("delivery {0} is leased to another worker now")]
    LeaseLost(String),
}

/// A request that reuses idempotency keys for other events: the index of
/// the first event whose key was stored with another body, or which is new
/// beside repeated ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "event {index} reuses an idempotency key with a different event; a retry must send the same events"
)]
pub struct IdempotencyMismatch {
    /// The event's index in the request.
    pub index: usize,
}

/// How many deliveries a claim may take per webhook: what the dispatcher
/// can start now, so that it never leases rows it would have to give back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    /// For a webhook not listed.
    pub default: u32,
    /// Webhooks with other room: fewer free slots, or none (0) when at
    /// their limit or behind an open circuit breaker.
    pub webhooks: HashMap<String, u32>,
    /// For a tenant not listed.
    pub tenant_default: u32,
    /// Tenants with other room: fewer free slots.
    pub tenants: HashMap<String, u32>,
}

impl Room {
    /// `default` for every webhook, no limit per tenant.
    pub fn new(default: u32) -> Self {
        Self {
            default,
            webhooks: HashMap::new(),
            tenant_default: u32::MAX,
            tenants: HashMap::new(),
        }
    }

    /// With `room` for `tenant`.
    #[must_use]
    pub fn with_tenant(mut self, tenant: &str, room: u32) -> Self {
        self.tenants.insert(tenant.to_owned(), room);
        self
    }

    /// The room of `tenant`.
    pub fn of_tenant(&self, tenant: &str) -> u32 {
        self.tenants
            .get(tenant)
            .copied()
            .unwrap_or(self.tenant_default)
    }

    /// With `room` for `webhook`.
    #[must_use]
    pub fn with(mut self, webhook: &str, room: u32) -> Self {
        self.webhooks.insert(webhook.to_owned(), room);
        self
    }

    /// The room of `webhook`.
    pub fn of(&self, webhook: &str) -> u32 {
        self.webhooks.get(webhook).copied().unwrap_or(self.default)
    }
}

/// A delivery a worker has leased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// `msg_…`.
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The webhook.
    pub webhook_id: String,
    /// Its URL now; `None` when the webhook was deleted.
    pub url: Option<String>,
    /// Whether the webhook is enabled now.
    pub enabled: bool,
    /// The secrets that sign it now, the current one first (sealed).
    pub secrets: Vec<String>,
    /// The client certificate the webhook presents, if any.
    pub client_tls: Option<ClientTls>,
    /// The exact body.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The lease's token: [`Store::finish`] and [`Store::release`] take
    /// the delivery only with it, so that a worker whose lease ran out and
    /// was taken by another records nothing over the other's work. Empty
    /// for a delivery stored without a lease.
    pub lease: String,
    /// Not to be sent before then: its slot in its webhook's rate limit
    /// (see [`Store::claim`]); `None` for at once.
    pub not_before: Option<Millis>,
}

/// How far ahead of its time a claim gives a rate-limited webhook's
/// deliveries their slots, in milliseconds.
pub const PACE_AHEAD: Millis = 1_000;

/// How many of a ticket's deliveries to one webhook [`Store::finish`]
/// hands on at most: its new head and those waiting behind it, leased
/// together, for one worker to send one after another. A busy ticket's
/// stream then waits for one commit per run, not one per delivery.
pub const HAND_ON: usize = 16;

/// What recording an attempt did ([`Store::finish`]).
#[derive(Debug, Default)]
pub struct Finished {
    /// The attempt disabled the webhook.
    pub disabled: bool,
    /// The ticket's next deliveries to the webhook, in order, leased to
    /// the caller: at most [`HAND_ON`], empty when none was handed on.
    pub next: Vec<Claimed>,
}

impl Claimed {
    /// A delivery leased by the ingest write that stored it: its target
    /// (URL, state, secrets) is filled in before the write commits.
    pub(super) fn at_ingest(tenant_id: &str, delivery: &NewDelivery, lease: &str) -> Self {
        Self {
            id: delivery.id.clone(),
            tenant_id: tenant_id.to_owned(),
            webhook_id: delivery.webhook_id.clone(),
            url: None,
            enabled: false,
            secrets: Vec::new(),
            client_tls: None,
            payload: delivery.payload.clone(),
            attempts: 0,
            lease: lease.to_owned(),
            not_before: None,
        }
    }
}

/// One attempt's record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When it started.
    pub started_at: Millis,
    /// How long it took.
    pub duration_ms: i64,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// The first 1 KiB of its answer.
    pub response: Option<String>,
    /// Why it failed (`timeout`, `connect`, `refused_target`, …).
    pub error_kind: Option<String>,
    /// The failure, in words.
    pub error: Option<String>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Delivered.
    Succeeded,
    /// Try again at this time.
    RetryAt(Millis),
    /// No more attempts.
    Failed,
    /// Not sent: the webhook is gone or disabled.
    Cancelled,
}

/// What an attempt says about its webhook's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The receiver accepted: its run of failures is over.
    Healthy,
    /// It failed: disable the webhook once it has failed without a break
    /// for longer than this.
    Failing {
        /// How long a run of failures may last.
        disable_after: Millis,
    },
    /// It answered `410 Gone`: disable the webhook now.
    Gone,
    /// Nothing to learn (the attempt was not made).
    Unchanged,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `msg_…`.
    pub id: String,
    /// Its place in commit order (the page cursor).
    pub seq: i64,
    /// The webhook.
    pub webhook_id: String,
    /// The event.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The ticket.
    pub ticket_id: String,
    /// The body.
    pub payload: String,
    /// The engine's explanation when it matched.
    pub explanation: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Millis>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was made.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// The receiver's status at the last attempt, when it answered.
    pub last_status: Option<u16>,
    /// How long the last attempt took.
    pub last_duration_ms: Option<i64>,
}

/// Which deliveries the log shows ([`Store::delivery_log`]): every filter
/// given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// One webhook's.
    pub webhook_id: Option<String>,
    /// In this state.
    pub state: Option<String>,
    /// Of this event type.
    pub event_type: Option<String>,
    /// Of this ticket.
    pub ticket_id: Option<String>,
    /// Created at or after.
    pub since: Option<Millis>,
    /// Created before.
    pub until: Option<Millis>,
}

/// A page of the delivery log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The deliveries, without their explanations (empty).
    pub deliveries: Vec<DeliveryRecord>,
    /// Where the next page starts (its deliveries come before this `seq`),
    /// or `None` when nothing older matches. A page may come short of its
    /// limit and still have a next one: each page examines at most
    /// [`LOG_SCAN`] deliveries, however few of them match.
    pub before: Option<i64>,
}

/// How many deliveries one page of the log examines at most, to find
/// those its filters match: what bounds the work of a filter that matches
/// little.
pub const LOG_SCAN: u32 = 5_000;

/// Which of a tenant's stored events to read ([`Store::history`]): the
/// events it ingested (not test events) of some types, received in a
/// window, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The event types.
    pub types: Vec<String>,
    /// Received at or after.
    pub since: Millis,
    /// Received before.
    pub until: Millis,
    /// Past this event, in the query's order: where the last read stopped.
    pub after: Option<EventPlace>,
    /// Newest first (else oldest first).
    pub newest_first: bool,
    /// At most this many events.
    pub limit: u32,
    /// At most this many bytes of event bodies together, the first event
    /// aside (it is read whatever its size).
    pub max_bytes: u64,
}

/// An event's place in time order: when it was received, then its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventPlace {
    /// When it was received.
    pub received_at: Millis,
    /// `evt_…`.
    pub id: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Where it stands in time order.
    pub place: EventPlace,
    /// The ingest event as received.
    pub body: String,
}

/// A delivery a replay creates: the delivery, for the stored event it
/// carries.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The event.
    pub event_id: String,
    /// The delivery (never leased: it waits for a claim).
    pub delivery: NewDelivery,
}

/// One attempt, as the health chart counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptPoint {
    /// When it started.
    pub started_at: Millis,
    /// How long it took.
    pub duration_ms: i64,
    /// What became of the delivery after it: `succeeded`, `retrying`,
    /// `failed` or `cancelled`.
    pub outcome: String,
}

/// The delivery queue at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending deliveries.
    pub depth: i64,
    /// When the oldest pending one was made.
    pub oldest: Option<Millis>,
}

/// Every query the server makes.
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes every connection, waiting for work in flight.
    async fn close(&self);
    /// Completes once the store takes no more writes: it was closed, or
    /// the writer failed (its thread died). The server then shuts down.
    async fn stopped(&self);

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

    /// Stores a new webhook (with its client certificate, if any) and its
    /// first signing secret (sealed), unless that takes its tenant past
    /// `quota`.
    async fn create_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: &str,
        quota: Quota,
    ) -> Result<(), StoreError>;
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
    /// `webhook.revision - 1`; `false` when it does not (or is gone). A
    /// write that makes the webhook weigh more is refused when it takes the
    /// tenant past `quota`'s pattern weight (one that does not, such as
    /// disabling it, never is, even over a lowered quota).
    async fn update_webhook(
        &self,
        webhook: &WebhookRecord,
        quota: Quota,
    ) -> Result<bool, StoreError>;
    /// Records the pattern weights of webhooks stored without one (by an
    /// earlier version); a webhook weighed meanwhile keeps its weight.
    async fn set_pattern_weights(&self, weights: Vec<(String, u32)>) -> Result<(), StoreError>;
    /// Deletes a webhook and its secrets; `false` when there was none.
    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Makes `secret` (sealed) the webhook's signing secret; the current
    /// one keeps signing until `old_until` (not at all when that is not
    /// after now), and any older one goes: at most two sign at once.
    /// `false` when there is no such webhook.
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
    /// Every secret stored: signing secrets and client keys.
    async fn stored_secrets(&self) -> Result<Vec<StoredSecret>, StoreError>;
    /// Writes secrets back in place (sealed ones over clear ones), in one
    /// transaction.
    async fn rewrite_secrets(&self, secrets: Vec<StoredSecret>) -> Result<(), StoreError>;
    /// How many webhooks there are, over every tenant.
    async fn webhook_counts(&self) -> Result<WebhookCounts, StoreError>;
    /// Every webhook of every tenant, for loading the rule sets.
    async fn all_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError>;
    /// Every webhook's tenant, id and revision: what a process compares
    /// its rule sets with to catch up on changes it did not hear of.
    async fn revisions(&self) -> Result<Vec<(String, String, i64)>, StoreError>;
    /// What other processes change, as they commit it: `None` for a store
    /// no other process writes (SQLite). The feed sends
    /// [`Change::Missed`] whenever changes may have been lost (a lost
    /// connection) and every few seconds besides, for a check by revision.
    fn follow(&self) -> Option<tokio::sync::mpsc::Receiver<Change>>;

    /// Stores events and their deliveries in one transaction; an event
    /// whose idempotency key was seen before with the same body (as JSON:
    /// key order and spacing aside) is not stored again. A key seen with
    /// another body, or new events beside repeated ones, store nothing and
    /// fail with [`StoreError::IdempotencyMismatch`].
    async fn ingest(
        &self,
        tenant_id: &str,
        events: Vec<NewEvent>,
        at: Millis,
    ) -> Result<Vec<Ingested>, StoreError>;
    /// How many deliveries these events caused.
    async fn deliveries_of(&self, event_ids: &[String]) -> Result<i64, StoreError>;
    /// Leases up to `limit` due deliveries until `lease_until`: pending,
    /// due, not leased (or the lease expired), the oldest pending one of
    /// their webhook and ticket, and no more per webhook or per tenant
    /// than its [`Room`]. Tenants take turns (one delivery each, the tenant
    /// with the oldest due delivery first), each tenant's oldest due first:
    /// one tenant's backlog never fills a claim while another waits.
    ///
    /// A webhook with a rate limit of `r` a second has its attempts paced
    /// `1/r` s apart, whichever process claims them: each delivery claimed
    /// gets the next free slot ([`Claimed::not_before`]), and a claim takes
    /// only slots that start within [`PACE_AHEAD`] of `at`. Its deliveries
    /// are leased by claims alone: ingest and [`Store::finish`] hand none
    /// of them on.
    async fn claim(
        &self,
        at: Millis,
        lease_until: Millis,
        limit: u32,
        room: &Room,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Records an attempt and what follows it, in one transaction, for the
    /// holder of the delivery's `lease` ([`Claimed::lease`]).
    /// [`StoreError::LeaseLost`], recording nothing, when the delivery is
    /// leased to someone else now.
    ///
    /// When the delivery leaves the pending state, its ticket's next
    /// delivery to the webhook becomes the one a claim may take; with
    /// `chain` (a lease's end), that delivery, if due, unleased and not
    /// held back by an open breaker, is leased to the caller in the same
    /// transaction and returned in [`Finished::next`], with the deliveries
    /// waiting behind it (up to [`HAND_ON`] in all, as far as each is due
    /// and unleased): a busy ticket's stream goes on at the receiver's
    /// pace, with no claim in between. Those behind the head are sent only
    /// after it succeeded; a run cut short gives the rest back.
    async fn finish(
        &self,
        delivery_id: &str,
        lease: &str,
        attempt: Option<&Attempt>,
        next: Next,
        health: Health,
        chain: Option<Millis>,
    ) -> Result<Finished, StoreError>;
    /// Records that the webhook's circuit breaker is open until `until`
    /// (`None`: closed): every process's claims leave its deliveries until
    /// then, and a restart keeps the pause.
    async fn pause_webhook(
        &self,
        webhook_id: &str,
        until: Option<Millis>,
    ) -> Result<(), StoreError>;
    /// Gives a lease back without an attempt (the worker could not start);
    /// nothing when the delivery is leased to someone else now.
    async fn release(&self, delivery_id: &str, lease: &str) -> Result<(), StoreError>;
    /// A page of the tenant's deliveries that `filter` matches, newest
    /// first, before `before` (a `seq`): at most `limit`, found among at
    /// most [`LOG_SCAN`] deliveries. Without their explanations (empty),
    /// which [`Store::delivery`] has.
    async fn delivery_log(
        &self,
        tenant_id: &str,
        filter: &LogFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<LogPage, StoreError>;
    /// One delivery with its attempts, oldest first.
    async fn delivery(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<(DeliveryRecord, Vec<Attempt>)>, StoreError>;
    /// Makes a delivery due now, whatever its state; `false` when there is
    /// no such delivery.
    async fn redeliver(&self, tenant_id: &str, id: &str, at: Millis) -> Result<bool, StoreError>;
    /// The tenant's stored events `query` asks for, in its order.
    async fn history(
        &self,
        tenant_id: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Stores the deliveries a replay of `webhook_id` creates, pending and
    /// due at `at`, in order, each one unless its event has a delivery to
    /// the webhook already; how many were stored.
    async fn replay(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        deliveries: Vec<Replayed>,
        at: Millis,
    ) -> Result<u64, StoreError>;
    /// Which of `event_ids` have a delivery to `webhook_id` already.
    async fn delivered(
        &self,
        webhook_id: &str,
        event_ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError>;
    /// How many of the webhook's deliveries failed for good at or after
    /// `since` (what [`Store::recover`] would send again), counting at most
    /// `limit`, and whether more did.
    async fn failed_since(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: Millis,
        limit: u32,
    ) -> Result<(u64, bool), StoreError>;
    /// Makes the webhook's deliveries that failed for good at or after
    /// `since` pending and due at `at` again (same body, same id), oldest
    /// first, at most `limit`; how many, and whether more remain.
    async fn recover(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: Millis,
        limit: u32,
        at: Millis,
    ) -> Result<(u64, bool), StoreError>;
    /// The webhook's attempts that started in `[since, until)`, oldest
    /// first, at most `limit`.
    async fn attempt_points(
        &self,
        webhook_id: &str,
        since: Millis,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<AttemptPoint>, StoreError>;
    /// The queue's depth and its oldest pending delivery.
    async fn queue(&self) -> Result<QueueStats, StoreError>;
    /// Deletes attempts, finished deliveries and events older than
    /// `before` (an event only once it has no pending delivery); how many
    /// rows went.
    async fn prune(&self, before: Millis) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests;
