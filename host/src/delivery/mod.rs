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
//!   [`admission`]) and no earlier pending delivery of its ticket is
//!   stored already leased to this process and handed to the dispatcher
//!   after the commit, with no claim: one write fewer per delivery, and no
//!   wait for the claim loop. Its lease works as a claim's does: should the
//!   process die first, the delivery is claimed once the lease ends.
//! - **Retries** follow [`Schedule`]; `410 Gone` disables the webhook; a
//!   webhook whose attempts all failed for `disable_after` is disabled.

pub mod admission;
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

use self::admission::{Admission, Ask, Busy, Limits, Reservation};
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
/// The longest a delivery claimed ahead waits for a worker, or one handed
/// on waits in its run; after that it is given back, so that its lease
/// (the attempt's timeout and 10 s) still covers the attempt when one
/// sends it.
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
    ahead: Mutex<HashMap<String, VecDeque<Run>>>,
    /// Attempt slots per tenant (`tenant_concurrency`), so that one
    /// tenant's slow receivers never hold every slot.
    tenant_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Room promised at ingest, and the counting of room.
    admission: Mutex<Admission>,
    /// Set while the claim loop runs: only then does ingest hand
    /// deliveries over.
    running: AtomicBool,
    /// Set once the claim loop has ended: workers take nothing more.
    stopping: AtomicBool,
    /// Attempts being recorded, waited for at shutdown.
    recording: TaskTracker,
    metrics: Arc<Metrics>,
}

/// A count of slots or deliveries, as admission counts them.
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

/// Deliveries of one webhook that one worker sends one after another, in
/// order, each only once the one before it succeeded: a delivery claimed
/// or stored leased by ingest, or a ticket's deliveries a finished attempt
/// handed on ([`Store::finish`]).
#[derive(Debug)]
struct Run {
    webhook: String,
    deliveries: VecDeque<Claimed>,
    /// When they were leased: a delivery not started within [`AHEAD_FOR`]
    /// is given back, so that its lease still covers a whole attempt.
    leased: Instant,
}

impl Run {
    fn new(deliveries: Vec<Claimed>) -> Self {
        Self {
            webhook: deliveries
                .first()
                .map(|d| d.webhook_id.clone())
                .unwrap_or_default(),
            deliveries: deliveries.into(),
            leased: Instant::now(),
        }
    }

    fn one(delivery: Claimed) -> Self {
        Self::new(vec![delivery])
    }
}

/// How many deliveries wait in a webhook's queue of runs.
fn queued(queue: &VecDeque<Run>) -> usize {
    queue.iter().map(|run| run.deliveries.len()).sum()
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

/// Drops the slots no one holds (every permit free, no worker or caller
/// holding the semaphore), so that the maps keep only webhooks and tenants
/// with work in flight, not every one ever seen (or since deleted). A
/// slot dropped is made again, full, on next use.
fn forget_idle(slots: &Mutex<HashMap<String, Arc<Semaphore>>>) {
    lock(slots).retain(|_, slot| Arc::strong_count(slot) > 1);
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
            admission: Mutex::new(Admission::new(Limits {
                webhook: count(settings.webhook_concurrency),
                tenant: count(settings.tenant_concurrency),
                ahead: admission::AHEAD,
            })),
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
                .flat_map(|(_, queue)| queue.into_iter().flat_map(|run| run.deliveries))
                .collect();
            for delivery in left {
                dispatcher.release(&delivery).await;
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

    /// What each webhook and tenant can take in a claim now
    /// ([`Admission::room`]).
    fn room(&self, now: Instant) -> Room {
        forget_idle(&self.tenant_slots);
        forget_idle(&self.webhook_slots);
        let tenants_full = self.settings.tenant_concurrency;
        let tenants = lock(&self.tenant_slots)
            .iter()
            .map(|(tenant, slot)| (tenant.clone(), slot.available_permits()))
            .filter(|&(_, free)| free < tenants_full)
            .map(|(tenant, free)| (tenant, count(free)))
            .collect();
        let webhooks_full = self.settings.webhook_concurrency;
        let webhooks = lock(&self.webhook_slots)
            .iter()
            .map(|(webhook, slot)| (webhook, slot.available_permits()))
            .filter(|&(_, free)| free < webhooks_full)
            .map(|(webhook, free)| (webhook.clone(), count(free)))
            .collect();
        let blocked = self.breakers.blocked_webhooks(now);
        let waiting = lock(&self.ahead);
        let queued = waiting
            .iter()
            .map(|(webhook, queue)| (webhook.clone(), count(queued(queue))))
            .collect();
        lock(&self.admission).room(Busy {
            tenants,
            webhooks,
            queued,
            blocked,
        })
    }

    /// Promises room for one of `tenant`'s deliveries to `webhook`
    /// ([`Admission::promise`]), only while the claim loop runs and the
    /// webhook's breaker lets attempts through.
    fn promise(&self, tenant: &str, webhook: &str) -> bool {
        if !self.running.load(Ordering::SeqCst)
            || self.stopping.load(Ordering::SeqCst)
            || self.breakers.blocked(webhook, Instant::now())
        {
            return false;
        }
        let webhook_free = count(self.webhook_slot(webhook).available_permits());
        let tenant_free = count(self.tenant_slot(tenant).available_permits());
        let all_free = count(self.slots.available_permits());
        // The queue stays locked while room is taken, as a claim and a
        // worker read it: taking room is one step.
        let waiting = lock(&self.ahead);
        let queued = count(waiting.get(webhook).map_or(0, queued));
        lock(&self.admission).promise(&Ask {
            webhook,
            tenant,
            webhook_free,
            queued,
            tenant_free,
            all_free,
        })
    }

    /// An empty reservation, for ingest to take room in before it stores
    /// `tenant`'s deliveries leased to this process ([`Reservation::take`])
    /// and to hand them over with once stored.
    pub fn reserve(self: &Arc<Self>, tenant: &str) -> Reservation {
        Reservation::new(Arc::clone(self), tenant)
    }

    /// Starts a run leased to this process (stored so by ingest, or
    /// handed on), or gives its leases back once the dispatcher is
    /// stopping.
    async fn start_or_release(self: &Arc<Self>, run: Run) {
        match self.stopping.load(Ordering::SeqCst) {
            true => self.release_all(run.deliveries).await,
            false => self.start(run).await,
        }
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
                    .claim(at, at + self.lease_millis(), limit, &room)
                    .await
                {
                    Ok(rows) => {
                        let mut taken: HashMap<String, u32> = HashMap::new();
                        for row in &rows {
                            *taken.entry(row.webhook_id.clone()).or_default() += 1;
                        }
                        lock(&self.admission).claimed(&room, &taken, rows.len() == free);
                        claimed = rows;
                    }
                    Err(error) => tracing::error!(%error, "claiming deliveries failed"),
                }
            }
            let full = free > 0 && claimed.len() == free;
            for delivery in claimed {
                self.start(Run::one(delivery)).await;
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

    /// Starts a worker for a run, or queues it for a worker of its webhook
    /// when every slot of the webhook is taken, or gives the leases back
    /// when no attempt can start at all.
    async fn start(self: &Arc<Self>, run: Run) {
        let Some(first) = run.deliveries.front() else {
            return;
        };
        let (tenant, webhook) = (first.tenant_id.clone(), run.webhook.clone());
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return self.release_all(run.deliveries).await;
        };
        let Ok(tenant_slot) = self.tenant_slot(&tenant).try_acquire_owned() else {
            return self.release_all(run.deliveries).await;
        };
        let webhook_slot = {
            // Under the lock a leaving worker checks the queue with: a
            // run queued here is seen by a worker still running.
            let mut ahead = lock(&self.ahead);
            match self.webhook_slot(&webhook).try_acquire_owned() {
                Ok(webhook_slot) => webhook_slot,
                Err(_) => {
                    ahead.entry(webhook).or_default().push_back(run);
                    return;
                }
            }
        };
        if !self.breakers.allow(&webhook, Instant::now()) {
            return self.release_all(run.deliveries).await;
        }
        let slots = Slots {
            _all: slot,
            _tenant: tenant_slot,
        };
        tokio::spawn(Arc::clone(self).work(run, slots, webhook_slot));
    }

    /// [`Self::start_or_release`] for the deliveries a finished attempt
    /// handed on: a future of a named type, since `start` leads to the
    /// worker that records attempts, which calls this.
    fn start_chained(
        self: Arc<Self>,
        handed_on: Vec<Claimed>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move { self.start_or_release(Run::new(handed_on)).await })
    }

    /// Writes a breaker's opening or closing to the store, for every
    /// process's claims (see [`breaker`]).
    async fn pause(&self, webhook: &str, changed: breaker::Transition) {
        let until = match changed {
            breaker::Transition::Opened(pause) => Some(now() + millis(pause)),
            breaker::Transition::Closed => None,
        };
        if let Err(error) = self.store.pause_webhook(webhook, until).await {
            // This process's breaker still holds its own attempts back.
            tracing::warn!(%error, webhook, "recording the circuit breaker failed");
        }
    }

    async fn release(&self, delivery: &Claimed) {
        if let Err(error) = self.store.release(&delivery.id, &delivery.lease).await {
            // The lease runs out by itself.
            tracing::warn!(%error, delivery = %delivery.id, "giving a lease back failed");
        }
    }

    /// Gives back the leases of deliveries that will not be sent now.
    async fn release_all(&self, deliveries: impl IntoIterator<Item = Claimed>) {
        for delivery in deliveries {
            self.release(&delivery).await;
        }
    }

    /// A worker: holds one slot of a webhook and sends its deliveries one
    /// after another, the run it was started with and then the runs
    /// claimed ahead, until none is left. Within a run, a delivery is sent
    /// only after the one before it succeeded; each attempt is recorded in
    /// the background, so the slot goes on to the next delivery while the
    /// record commits (the row stays leased until then, so nothing takes
    /// it twice).
    async fn work(self: Arc<Self>, first: Run, _slots: Slots, webhook_slot: OwnedSemaphorePermit) {
        let mut webhook_slot = Some(webhook_slot);
        let mut run = first;
        loop {
            let mut recorded = Vec::new();
            while let Some(delivery) = run.deliveries.pop_front() {
                let outcome = self.send(&delivery).await;
                let go_on = outcome.as_ref().is_some_and(AttemptResult::succeeded)
                    && !run.deliveries.is_empty()
                    && run.leased.elapsed() <= AHEAD_FOR
                    && !self.stopping.load(Ordering::SeqCst)
                    && self.breakers.allow(&delivery.webhook_id, Instant::now());
                if go_on {
                    // Those behind it are this worker's already: nothing
                    // to hand on.
                    let record = Arc::clone(&self).record(delivery, outcome, false);
                    recorded.push(self.recording.spawn(record));
                } else {
                    let unsent = std::mem::take(&mut run.deliveries);
                    let end = Arc::clone(&self).end_run(delivery, outcome, recorded, unsent);
                    self.recording.spawn(end);
                    break;
                }
            }
            match self.next_ahead(&run.webhook, &mut webhook_slot) {
                Some(next) => run = next,
                None => break,
            }
        }
        self.wake.notify_one();
    }

    /// Records the last attempt of a run once the run's earlier records
    /// (`recorded`) committed and the deliveries left unsent are given
    /// back: the ticket's queue is then in order, and this record hands on
    /// what follows (see [`Store::finish`]).
    async fn end_run(
        self: Arc<Self>,
        last: Claimed,
        outcome: Option<AttemptResult>,
        recorded: Vec<JoinHandle<()>>,
        unsent: VecDeque<Claimed>,
    ) {
        self.release_all(unsent).await;
        for record in recorded {
            // A record that panicked is logged by the runtime; its lease
            // brings the delivery back.
            let _ = record.await;
        }
        self.record(last, outcome, true).await;
    }

    /// The next run claimed ahead for `webhook`, if the worker may go on;
    /// otherwise `None`, and the worker's slot is given back under the
    /// same lock [`Self::start`] queues with. A run that waited longer
    /// than [`AHEAD_FOR`] is given back rather than sent, so that its
    /// leases still cover a whole attempt.
    fn next_ahead(
        self: &Arc<Self>,
        webhook: &str,
        webhook_slot: &mut Option<OwnedSemaphorePermit>,
    ) -> Option<Run> {
        let mut give_back = Vec::new();
        let next = {
            let mut ahead = lock(&self.ahead);
            let go_on = !self.stopping.load(Ordering::SeqCst)
                && ahead.get(webhook).is_some_and(|queue| !queue.is_empty())
                && self.breakers.allow(webhook, Instant::now());
            let queue = ahead.entry(webhook.to_owned()).or_default();
            let mut next = None;
            while let Some(run) = queue.pop_front() {
                if go_on && run.leased.elapsed() <= AHEAD_FOR {
                    next = Some(run);
                    break;
                }
                give_back.extend(run.deliveries);
            }
            if queue.is_empty() {
                ahead.remove(webhook);
            }
            if next.is_none() {
                webhook_slot.take();
            }
            next
        };
        if !give_back.is_empty() {
            let dispatcher = Arc::clone(self);
            self.recording
                .spawn(async move { dispatcher.release_all(give_back).await });
        }
        next
    }

    /// One attempt, or `None` when the webhook is gone or disabled (the
    /// delivery is then cancelled, not sent).
    async fn send(&self, delivery: &Claimed) -> Option<AttemptResult> {
        let url = delivery.url.as_deref().filter(|_| delivery.enabled)?;
        // Its slot in its webhook's rate limit: never before it.
        if let Some(wait) = delivery
            .not_before
            .map(|at| at - now())
            .filter(|ms| *ms > 0)
        {
            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
        let outcome = self.attempt(url, delivery).await;
        self.metrics.attempt(outcome.attempt.duration_ms);
        let changed =
            self.breakers
                .record(&delivery.webhook_id, outcome.succeeded(), Instant::now());
        if let Some(changed) = changed {
            self.pause(&delivery.webhook_id, changed).await;
        }
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

    /// Records an attempt (or a cancellation) and what follows it; with
    /// `hand_on`, the ticket's next deliveries, should this one leave the
    /// queue, come back leased: started at once, not at the next claim.
    async fn record(
        self: Arc<Self>,
        delivery: Claimed,
        outcome: Option<AttemptResult>,
        hand_on: bool,
    ) {
        let chain = hand_on.then(|| now() + self.lease_millis());
        let result = match outcome {
            None => self
                .store
                .finish(
                    &delivery.id,
                    &delivery.lease,
                    None,
                    Next::Cancelled,
                    Health::Unchanged,
                    chain,
                )
                .await
                .map(|finished| ("cancelled", finished.next)),
            Some(outcome) => self.record_attempt(&delivery, &outcome, chain).await,
        };
        match result {
            Ok((label, next)) => {
                self.metrics.delivery(label);
                if !next.is_empty() {
                    Arc::clone(&self).start_chained(next).await;
                }
            }
            // The lease ran out during the attempt and another worker (of
            // this process or another) took the delivery: the outcome is
            // its to record. The receiver may see it twice, under one
            // `webhook-id`.
            Err(error @ crate::store::StoreError::LeaseLost(_)) => {
                tracing::info!(%error, "attempt outlived its lease; not recorded");
            }
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
        chain: Option<Millis>,
    ) -> Result<(&'static str, Vec<Claimed>), crate::store::StoreError> {
        let succeeded = outcome.succeeded();
        let (next, health, label) = self.next(delivery.attempts + 1, outcome);
        let finished = self
            .store
            .finish(
                &delivery.id,
                &delivery.lease,
                Some(&outcome.attempt),
                next,
                health,
                chain,
            )
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
        if finished.disabled {
            tracing::warn!(webhook = %delivery.webhook_id, tenant = %delivery.tenant_id, "webhook disabled by delivery");
            self.matcher
                .refresh(
                    self.store.as_ref(),
                    &delivery.tenant_id,
                    &delivery.webhook_id,
                )
                .await?;
        }
        Ok((label, finished.next))
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

    /// How long a lease of this dispatcher lasts, in milliseconds: an
    /// attempt's timeout and a margin for recording it.
    pub fn lease_millis(&self) -> Millis {
        millis(self.settings.lease())
    }

    /// Sends a delivery stored leased to send now and not retry (a test
    /// event): one attempt, recorded, and its outcome.
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
                &delivery.lease,
                Some(&outcome.attempt),
                next,
                Health::Unchanged,
                None,
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
