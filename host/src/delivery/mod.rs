//! Delivery: claim due deliveries from the store with a lease, POST each
//! one signed, record the attempt, and schedule the next or finish.
//!
//! - **At least once.** A delivery is leased (`leased_until`) while a worker
//!   holds it; a crashed process's leases expire and the rows are claimed
//!   again. The payload and `webhook-id` were fixed at ingest, so every
//!   attempt sends the same bytes under the same id.
//! - **Isolation.** Attempts run concurrently (`delivery_concurrency` in
//!   all, `webhook_concurrency` per webhook), each with its own timeout. A
//!   claim takes per webhook no more than it can start, and nothing of a
//!   webhook at its limit or with an open circuit breaker, so a backlog
//!   never takes the slots of others (and costs the claim one index seek,
//!   not a scan).
//! - **Order.** Only the oldest pending delivery of a (webhook, ticket) can
//!   be claimed, so a later event of a ticket is never delivered to a
//!   webhook before an earlier one that is still pending.
//! - **Straight from ingest.** A delivery whose webhook has room (see
//!   [`Reservation`]) and no earlier pending delivery of its ticket is
//!   stored already leased to this process and handed to the dispatcher
//!   after the commit, with no claim: one write fewer per delivery, and no
//!   wait for the claim loop. Its lease works as a claim's does: should the
//!   process die first, the delivery is claimed once the lease ends.
//! - **Retries** follow [`Schedule`]; `410 Gone` disables the webhook; a
//!   webhook whose attempts all failed for `disable_after` is disabled.

pub mod breaker;
pub mod guard;
pub mod schedule;
pub mod sender;
pub mod signing;
pub mod tls;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use self::breaker::Breakers;
use self::guard::Guard;
use self::schedule::Schedule;
use self::sender::{AttemptResult, Identity, Network, Sender};
use crate::config::Config;
use crate::matcher::Matcher;
use crate::metrics::Metrics;
use crate::store::{Attempt, Claimed, Health, Millis, Next, Room, Store, now};
use crate::vault::Vault;

/// Deliveries claimed at once at most.
const CLAIM_BATCH: usize = 64;
/// How often the queue is looked at when nothing wakes the dispatcher
/// (retries that come due, leases that expire).
const POLL: Duration = Duration::from_millis(250);
/// While attempts are in flight, how long a wake-up waits for more
/// completions and commits, so that one claim takes many rows instead of
/// one claim per finished attempt.
const COALESCE: Duration = Duration::from_millis(2);
/// Deliveries a claim may take ahead per slot of a webhook: they wait in
/// the dispatcher for one of its workers, so a worker goes from one POST to
/// the next without waiting for a claim to commit.
const AHEAD: u32 = 1;
/// The longest a delivery claimed ahead waits for a worker; after that it
/// is given back, so that its lease (the attempt's timeout and 10 s) still
/// covers the attempt when one sends it.
const AHEAD_FOR: Duration = Duration::from_secs(5);
/// How often old records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// What the dispatcher is told by the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// When to retry.
    pub schedule: Schedule,
    /// How long a receiver has per attempt.
    pub timeout: Duration,
    /// A webhook failing without a break this long is disabled.
    pub disable_after: Duration,
    /// Attempts in flight per webhook.
    pub webhook_concurrency: usize,
    /// Attempts in flight in all.
    pub delivery_concurrency: usize,
    /// Attempts in flight per tenant.
    pub tenant_concurrency: usize,
    /// How long records are kept.
    pub retention: Duration,
}

impl Settings {
    /// The delivery settings of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            schedule: Schedule::new(config.retry_schedule.clone(), config.retry_jitter),
            timeout: config.delivery_timeout,
            disable_after: config.disable_after,
            webhook_concurrency: config.webhook_concurrency as usize,
            delivery_concurrency: config.delivery_concurrency as usize,
            tenant_concurrency: config.tenant_concurrency() as usize,
            retention: config.retention,
        }
    }

    /// How long a claim holds: an attempt's timeout and a margin for
    /// recording it. After a crash, the deliveries it held wait this long.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(10)
    }
}

/// Claims and sends deliveries.
#[derive(Debug)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    /// Opens the signing secrets and client keys deliveries carry sealed.
    vault: Arc<Vault>,
    sender: Sender,
    matcher: Arc<Matcher>,
    /// Every webhook's circuit breaker.
    pub breakers: Arc<Breakers>,
    settings: Settings,
    /// Notified when there may be deliveries to claim.
    wake: Arc<Notify>,
    /// Attempt slots over every webhook.
    slots: Arc<Semaphore>,
    /// Attempt slots per webhook.
    webhook_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Deliveries claimed ahead, per webhook, waiting for one of its slots
    /// (see [`Dispatcher::work`]).
    ahead: Mutex<HashMap<String, VecDeque<(Claimed, Instant)>>>,
    /// Attempt slots per tenant (`tenant_concurrency`), so that one
    /// tenant's slow receivers never hold every slot.
    tenant_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Deliveries promised at ingest ([`Reservation`]): room taken before
    /// they are stored, until they are handed over.
    promised: Mutex<Promised>,
    /// Set while the claim loop runs: only then does ingest hand
    /// deliveries over.
    running: AtomicBool,
    /// Set once the claim loop has ended: workers take nothing more.
    stopping: AtomicBool,
    /// Attempts being recorded, waited for at shutdown.
    recording: TaskTracker,
    metrics: Arc<Metrics>,
}

/// Room ingest took for deliveries it stores leased to this process and
/// then hands over to the dispatcher ([`Dispatcher::hand_over`]), which
/// starts them at once: a delivery that needs no claim costs the store no
/// claim's queries and update, and reaches its receiver sooner. Room is
/// what a claim would give the webhook (free slots and room to wait ahead,
/// less what waits and what is promised), only while the claim loop runs
/// and the webhook's breaker lets attempts through. Dropped, it gives
/// back what it took.
#[derive(Debug)]
pub struct Reservation {
    dispatcher: Arc<Dispatcher>,
    /// The tenant whose deliveries these are.
    tenant: String,
    taken: HashMap<String, u32>,
}

impl Reservation {
    /// Takes room for one delivery to `webhook`, to be stored at `at`:
    /// the end of its lease, or `None` when there is no room (it is then
    /// stored for a claim). The tenant's free slots bound it too.
    pub fn take(&mut self, webhook: &str, at: Millis) -> Option<Millis> {
        let dispatcher = &self.dispatcher;
        if !dispatcher.running.load(Ordering::SeqCst)
            || dispatcher.stopping.load(Ordering::SeqCst)
            || dispatcher.breakers.blocked(webhook, Instant::now())
        {
            return None;
        }
        let free = dispatcher.webhook_slot(webhook).available_permits();
        let tenant_free = dispatcher.tenant_slot(&self.tenant).available_permits();
        let waiting = lock(&dispatcher.ahead);
        let mut promised = lock(&dispatcher.promised);
        let all_promised: u32 = promised.webhooks.values().sum();
        let tenant_promised = promised.tenants.get(&self.tenant).copied().unwrap_or(0);
        let slots = u32::try_from(dispatcher.slots.available_permits()).unwrap_or(u32::MAX);
        if dispatcher.headroom(webhook, free, &waiting, &promised) == 0
            || slots <= all_promised
            || count(tenant_free) <= tenant_promised
        {
            return None;
        }
        *promised.webhooks.entry(webhook.to_owned()).or_default() += 1;
        *promised.tenants.entry(self.tenant.clone()).or_default() += 1;
        *self.taken.entry(webhook.to_owned()).or_default() += 1;
        Some(at + millis(dispatcher.settings.lease()))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut promised = lock(&self.dispatcher.promised);
        let mut given_back = 0;
        for (webhook, taken) in self.taken.drain() {
            given_back += taken;
            give_back(&mut promised.webhooks, &webhook, taken);
        }
        give_back(&mut promised.tenants, &self.tenant, given_back);
    }
}

/// Room promised at ingest and not handed over yet.
#[derive(Debug, Default)]
struct Promised {
    /// Per webhook.
    webhooks: HashMap<String, u32>,
    /// Per tenant (the same deliveries, counted by tenant).
    tenants: HashMap<String, u32>,
}

fn give_back(counts: &mut HashMap<String, u32>, key: &str, taken: u32) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(taken);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The slots a worker holds besides its webhook's: one of all, one of its
/// tenant's. Its deliveries all go to one webhook, so to one tenant.
#[derive(Debug)]
struct Slots {
    _all: OwnedSemaphorePermit,
    _tenant: OwnedSemaphorePermit,
}

/// The slots of `key` in `slots`, made with `size` permits on first use.
fn slot(slots: &Mutex<HashMap<String, Arc<Semaphore>>>, key: &str, size: usize) -> Arc<Semaphore> {
    let mut slots = lock(slots);
    Arc::clone(
        slots
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(size))),
    )
}

/// Locks a mutex, whose data stays usable should a holder have panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

impl Dispatcher {
    /// A dispatcher over the store; `wake` is notified by ingest.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        matcher: Arc<Matcher>,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
        vault: Arc<Vault>,
    ) -> anyhow::Result<Arc<Self>> {
        let settings = Settings::new(config);
        let network = Network {
            timeout: settings.timeout,
            guard: Guard::new(config.allow_private_targets, config.allowed_targets.clone()),
            extra_roots: tls::extra_roots(config.extra_ca_file.as_deref())?,
            proxy: config.delivery_proxy()?,
        };
        Ok(Arc::new(Self {
            store,
            vault,
            sender: Sender::new(network).context("building the HTTP client for deliveries")?,
            matcher,
            breakers: Arc::default(),
            slots: Arc::new(Semaphore::new(settings.delivery_concurrency)),
            webhook_slots: Mutex::default(),
            tenant_slots: Mutex::default(),
            ahead: Mutex::default(),
            promised: Mutex::default(),
            running: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            recording: TaskTracker::new(),
            settings,
            wake,
            metrics,
        }))
    }

    /// Starts the claim loop and the pruning; both end when `stop` turns
    /// true, after the attempts in flight have finished (or their timeout
    /// has passed).
    pub fn spawn(self: &Arc<Self>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let dispatcher = Arc::clone(self);
        dispatcher.running.store(true, Ordering::SeqCst);
        tokio::spawn(async move {
            let pruning = tokio::spawn(Arc::clone(&dispatcher).prune(stop.clone()));
            Arc::clone(&dispatcher).claim_loop(stop).await;
            pruning.abort();
            dispatcher.stopping.store(true, Ordering::SeqCst);
            // Let the attempts in flight finish: take back every slot.
            let all = u32::try_from(dispatcher.settings.delivery_concurrency).unwrap_or(u32::MAX);
            let drained = dispatcher.slots.acquire_many(all);
            let _ = tokio::time::timeout(
                dispatcher.settings.timeout + Duration::from_secs(1),
                drained,
            )
            .await;
            // Give back what was claimed ahead and not sent.
            let left: Vec<Claimed> = lock(&dispatcher.ahead)
                .drain()
                .flat_map(|(_, queue)| queue.into_iter().map(|(delivery, _)| delivery))
                .collect();
            for delivery in left {
                dispatcher.release(&delivery.id).await;
            }
            dispatcher.recording.close();
            let _ =
                tokio::time::timeout(Duration::from_secs(10), dispatcher.recording.wait()).await;
        })
    }

    fn webhook_slot(&self, webhook: &str) -> Arc<Semaphore> {
        slot(
            &self.webhook_slots,
            webhook,
            self.settings.webhook_concurrency,
        )
    }

    fn tenant_slot(&self, tenant: &str) -> Arc<Semaphore> {
        slot(&self.tenant_slots, tenant, self.settings.tenant_concurrency)
    }

    /// What each webhook can take in a claim: its free slots and room to
    /// claim ahead ([`AHEAD`] per slot), less what is already claimed
    /// ahead; nothing behind an open breaker. And what each tenant can
    /// take: its free slots, less what ingest promised it.
    fn room(&self, now: Instant) -> Room {
        let concurrency = count(self.settings.webhook_concurrency);
        let ahead = concurrency.saturating_mul(AHEAD);
        let mut room = Room::new(concurrency.saturating_add(ahead));
        room.tenant_default = count(self.settings.tenant_concurrency);
        let tenants_full = self.settings.tenant_concurrency;
        let tenants: Vec<(String, usize)> = lock(&self.tenant_slots)
            .iter()
            .map(|(tenant, slot)| (tenant.clone(), slot.available_permits()))
            .filter(|&(_, free)| free < tenants_full)
            .collect();
        // Only webhooks with a slot taken differ from the default (rows are
        // claimed ahead only while every slot of their webhook is taken, and
        // the last worker leaves only once none is left).
        let full = self.settings.webhook_concurrency;
        let free: Vec<(String, usize)> = lock(&self.webhook_slots)
            .iter()
            .map(|(webhook, slot)| (webhook, slot.available_permits()))
            .filter(|&(_, free)| free < full)
            .map(|(webhook, free)| (webhook.clone(), free))
            .collect();
        {
            let waiting = lock(&self.ahead);
            let promised = lock(&self.promised);
            for (tenant, free) in tenants {
                let promised = promised.tenants.get(&tenant).copied().unwrap_or(0);
                room.tenants
                    .insert(tenant, count(free).saturating_sub(promised));
            }
            for (tenant, promised) in &promised.tenants {
                room.tenants
                    .entry(tenant.clone())
                    .or_insert_with(|| room.tenant_default.saturating_sub(*promised));
            }
            // Webhooks with every slot free differ from the default only
            // by what ingest promised them.
            let promised_only = promised
                .webhooks
                .keys()
                .filter(|webhook| !free.iter().any(|(w, _)| w == *webhook))
                .map(|webhook| (webhook.clone(), full))
                .collect::<Vec<_>>();
            for (webhook, free) in free.into_iter().chain(promised_only) {
                let left = self.headroom(&webhook, free, &waiting, &promised);
                room.webhooks.insert(webhook, left);
            }
        }
        for webhook in self.breakers.blocked_webhooks(now) {
            room.webhooks.insert(webhook, 0);
        }
        room
    }

    /// What `webhook` can take now, with `free` of its slots free: those
    /// slots and room to wait ahead ([`AHEAD`] per slot), less what waits
    /// for them and what ingest promised. `waiting` and `promised` are the
    /// locked queues and promises, so that taking room is one step.
    fn headroom(
        &self,
        webhook: &str,
        free: usize,
        waiting: &HashMap<String, VecDeque<(Claimed, Instant)>>,
        promised: &Promised,
    ) -> u32 {
        let concurrency = count(self.settings.webhook_concurrency);
        let queued = waiting.get(webhook).map_or(0, VecDeque::len);
        count(free)
            .saturating_add(concurrency.saturating_mul(AHEAD))
            .saturating_sub(count(queued))
            .saturating_sub(promised.webhooks.get(webhook).copied().unwrap_or(0))
    }

    /// An empty reservation, for ingest to take room in before it stores
    /// `tenant`'s deliveries leased to this process ([`Reservation::take`]).
    pub fn reserve(self: &Arc<Self>, tenant: &str) -> Reservation {
        Reservation {
            dispatcher: Arc::clone(self),
            tenant: tenant.to_owned(),
            taken: HashMap::new(),
        }
    }

    /// Starts deliveries ingest stored leased to this process, within the
    /// room `reservation` took for them; the rest of its room is given up.
    pub async fn hand_over(self: &Arc<Self>, reservation: Reservation, leased: Vec<Claimed>) {
        for delivery in leased {
            match self.stopping.load(Ordering::SeqCst) {
                true => self.release(&delivery.id).await,
                false => self.start(delivery).await,
            }
        }
        drop(reservation);
    }

    /// Says there may be deliveries to claim.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn claim_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let free = self.slots.available_permits().min(CLAIM_BATCH);
            let mut claimed = Vec::new();
            if free > 0 {
                let room = self.room(Instant::now());
                let at = now();
                let limit = u32::try_from(free).unwrap_or(u32::MAX);
                match self
                    .store
                    .claim(at, at + millis(self.settings.lease()), limit, &room)
                    .await
                {
                    Ok(rows) => claimed = rows,
                    Err(error) => tracing::error!(%error, "claiming deliveries failed"),
                }
            }
            let full = free > 0 && claimed.len() == free;
            for delivery in claimed {
                self.start(delivery).await;
            }
            if !full {
                tokio::select! {
                    () = self.wake.notified() => {
                        if self.slots.available_permits() < self.settings.delivery_concurrency {
                            tokio::time::sleep(COALESCE).await;
                        }
                    }
                    () = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Starts a worker for a claimed delivery, or queues it for a worker of
    /// its webhook when every slot of the webhook is taken, or gives the
    /// lease back when no attempt can start at all.
    async fn start(self: &Arc<Self>, delivery: Claimed) {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return self.release(&delivery.id).await;
        };
        let Ok(tenant_slot) = self.tenant_slot(&delivery.tenant_id).try_acquire_owned() else {
            return self.release(&delivery.id).await;
        };
        let webhook_slot = {
            // Under the lock a leaving worker checks the queue with: a
            // delivery queued here is seen by a worker still running.
            let mut ahead = lock(&self.ahead);
            match self.webhook_slot(&delivery.webhook_id).try_acquire_owned() {
                Ok(webhook_slot) => webhook_slot,
                Err(_) => {
                    let queue = ahead.entry(delivery.webhook_id.clone()).or_default();
                    queue.push_back((delivery, Instant::now()));
                    return;
                }
            }
        };
        if !self.breakers.allow(&delivery.webhook_id, Instant::now()) {
            return self.release(&delivery.id).await;
        }
        let slots = Slots {
            _all: slot,
            _tenant: tenant_slot,
        };
        tokio::spawn(Arc::clone(self).work(delivery, slots, webhook_slot));
    }

    async fn release(&self, id: &str) {
        if let Err(error) = self.store.release(id).await {
            // The lease runs out by itself.
            tracing::warn!(%error, delivery = id, "giving a lease back failed");
        }
    }

    /// A worker: holds one slot of a webhook and sends its deliveries one
    /// after another, the first claimed for it and then those claimed
    /// ahead, until none is left. Each attempt is recorded in the
    /// background, so the slot goes on to the next delivery while the
    /// record commits (the row stays leased until then, so nothing takes it
    /// twice, and the ticket's next event waits for it).
    async fn work(
        self: Arc<Self>,
        first: Claimed,
        _slots: Slots,
        webhook_slot: OwnedSemaphorePermit,
    ) {
        let mut webhook_slot = Some(webhook_slot);
        let mut delivery = first;
        loop {
            let outcome = self.send(&delivery).await;
            let webhook = delivery.webhook_id.clone();
            self.recording
                .spawn(Arc::clone(&self).record(delivery, outcome));
            match self.next_ahead(&webhook, &mut webhook_slot) {
                Some(next) => delivery = next,
                None => break,
            }
        }
        self.wake.notify_one();
    }

    /// The next delivery claimed ahead for `webhook`, if the worker may go
    /// on; otherwise `None`, and the worker's slot is given back under the
    /// same lock [`Self::start`] queues with. A delivery that waited longer
    /// than [`AHEAD_FOR`] is given back rather than sent, so that its lease
    /// still covers a whole attempt.
    fn next_ahead(
        self: &Arc<Self>,
        webhook: &str,
        webhook_slot: &mut Option<OwnedSemaphorePermit>,
    ) -> Option<Claimed> {
        let mut give_back = Vec::new();
        let next = {
            let mut ahead = lock(&self.ahead);
            let go_on = !self.stopping.load(Ordering::SeqCst)
                && ahead.get(webhook).is_some_and(|queue| !queue.is_empty())
                && self.breakers.allow(webhook, Instant::now());
            let queue = ahead.entry(webhook.to_owned()).or_default();
            let mut next = None;
            while let Some((delivery, queued_at)) = queue.pop_front() {
                if go_on && queued_at.elapsed() <= AHEAD_FOR {
                    next = Some(delivery);
                    break;
                }
                give_back.push(delivery);
            }
            if queue.is_empty() {
                ahead.remove(webhook);
            }
            if next.is_none() {
                webhook_slot.take();
            }
            next
        };
        for delivery in give_back {
            let dispatcher = Arc::clone(self);
            self.recording
                .spawn(async move { dispatcher.release(&delivery.id).await });
        }
        next
    }

    /// One attempt, or `None` when the webhook is gone or disabled (the
    /// delivery is then cancelled, not sent).
    async fn send(&self, delivery: &Claimed) -> Option<AttemptResult> {
        let url = delivery.url.as_deref().filter(|_| delivery.enabled)?;
        let outcome = self.attempt(url, delivery).await;
        self.metrics.attempt(outcome.attempt.duration_ms);
        self.breakers
            .record(&delivery.webhook_id, outcome.succeeded(), Instant::now());
        Some(outcome)
    }

    /// One attempt to `url`, signed with the delivery's secrets and
    /// presenting its webhook's client certificate, both opened here.
    async fn attempt(&self, url: &str, delivery: &Claimed) -> AttemptResult {
        let opened = delivery
            .secrets
            .iter()
            .map(|secret| self.vault.open(secret))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|secrets| {
                let identity = delivery
                    .client_tls
                    .as_ref()
                    .map(|tls| {
                        Ok(Identity {
                            certificate: tls.certificate.clone(),
                            key: self.vault.open(&tls.key)?,
                        })
                    })
                    .transpose()?;
                Ok((secrets, identity))
            });
        match opened {
            Ok((secrets, identity)) => {
                self.sender
                    .send(
                        url,
                        &delivery.id,
                        &delivery.payload,
                        &secrets,
                        identity.as_ref(),
                    )
                    .await
            }
            Err(error) => {
                tracing::error!(%error, webhook = %delivery.webhook_id, "a stored secret cannot be opened");
                AttemptResult {
                    attempt: Attempt {
                        started_at: now(),
                        duration_ms: 0,
                        status: None,
                        response: None,
                        error_kind: Some("secret".to_owned()),
                        error: Some(
                            "the webhook's stored secrets cannot be read; rotate its secret"
                                .to_owned(),
                        ),
                    },
                    retry_after: None,
                }
            }
        }
    }

    /// Records an attempt (or a cancellation) and what follows it.
    async fn record(self: Arc<Self>, delivery: Claimed, outcome: Option<AttemptResult>) {
        let result = match outcome {
            None => self
                .store
                .finish(&delivery.id, None, Next::Cancelled, Health::Unchanged)
                .await
                .map(|_| "cancelled"),
            Some(outcome) => self.record_attempt(&delivery, &outcome).await,
        };
        match result {
            Ok(label) => self.metrics.delivery(label),
            Err(error) => {
                tracing::error!(%error, delivery = %delivery.id, "recording an attempt failed; the lease will bring it back")
            }
        }
        self.wake.notify_one();
    }

    async fn record_attempt(
        &self,
        delivery: &Claimed,
        outcome: &AttemptResult,
    ) -> Result<&'static str, crate::store::StoreError> {
        let succeeded = outcome.succeeded();
        let (next, health, label) = self.next(delivery.attempts + 1, outcome);
        let disabled = self
            .store
            .finish(&delivery.id, Some(&outcome.attempt), next, health)
            .await?;
        if !succeeded {
            tracing::info!(
                delivery = %delivery.id,
                webhook = %delivery.webhook_id,
                tenant = %delivery.tenant_id,
                kind = outcome.attempt.error_kind.as_deref().unwrap_or_default(),
                error = outcome.attempt.error.as_deref().unwrap_or_default(),
                "attempt failed"
            );
        }
        if disabled {
            tracing::warn!(webhook = %delivery.webhook_id, tenant = %delivery.tenant_id, "webhook disabled by delivery");
            self.matcher
                .refresh(
                    self.store.as_ref(),
                    &delivery.tenant_id,
                    &delivery.webhook_id,
                )
                .await?;
        }
        Ok(label)
    }

    /// What follows an attempt that was the `attempts`-th.
    fn next(&self, attempts: u32, outcome: &AttemptResult) -> (Next, Health, &'static str) {
        if outcome.succeeded() {
            return (Next::Succeeded, Health::Healthy, "succeeded");
        }
        if outcome.gone() {
            return (Next::Failed, Health::Gone, "failed");
        }
        let health = Health::Failing {
            disable_after: millis(self.settings.disable_after),
        };
        match self
            .settings
            .schedule
            .after(attempts, outcome.retry_after, schedule::random())
        {
            Some(wait) => (Next::RetryAt(now() + millis(wait)), health, "retrying"),
            None => (Next::Failed, health, "failed"),
        }
    }

    /// Sends a delivery that was stored to be sent now and not retried (a
    /// test event): one attempt, recorded, and its outcome.
    pub async fn send_once(
        &self,
        delivery: &Claimed,
    ) -> Result<AttemptResult, crate::store::StoreError> {
        let url = delivery.url.clone().unwrap_or_default();
        let outcome = self.attempt(&url, delivery).await;
        let next = match outcome.succeeded() {
            true => Next::Succeeded,
            false => Next::Failed,
        };
        self.store
            .finish(
                &delivery.id,
                Some(&outcome.attempt),
                next,
                Health::Unchanged,
            )
            .await?;
        Ok(outcome)
    }

    /// Deletes old records now and then.
    async fn prune(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let before = now() - millis(self.settings.retention);
            match self.store.prune(before).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "pruned records past their retention"),
                Err(error) => tracing::warn!(%error, "pruning failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests;
