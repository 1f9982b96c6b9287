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
//! - **Retries** follow [`Schedule`]; `410 Gone` disables the webhook; a
//!   webhook whose attempts all failed for `disable_after` is disabled.

pub mod breaker;
pub mod guard;
pub mod schedule;
pub mod sender;
pub mod signing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use self::breaker::Breakers;
use self::guard::Guard;
use self::schedule::Schedule;
use self::sender::{Outcome, Sender};
use crate::config::Config;
use crate::matcher::Matcher;
use crate::metrics::Metrics;
use crate::store::{Claimed, Health, Millis, Next, Room, Store, now};

/// Deliveries claimed at once at most.
const CLAIM_BATCH: usize = 64;
/// How often the queue is looked at when nothing wakes the dispatcher
/// (retries that come due, leases that expire).
const POLL: Duration = Duration::from_millis(250);
/// While attempts are in flight, how long a wake-up waits for more
/// completions and commits, so that one claim takes many rows instead of
/// one claim per finished attempt.
const COALESCE: Duration = Duration::from_millis(2);
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
    metrics: Arc<Metrics>,
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
    ) -> anyhow::Result<Arc<Self>> {
        let settings = Settings::new(config);
        let guard = Guard::new(config.allow_private_targets, config.allowed_targets.clone());
        Ok(Arc::new(Self {
            store,
            sender: Sender::new(settings.timeout, guard)?,
            matcher,
            breakers: Arc::default(),
            slots: Arc::new(Semaphore::new(settings.delivery_concurrency)),
            webhook_slots: Mutex::default(),
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
        tokio::spawn(async move {
            let pruning = tokio::spawn(Arc::clone(&dispatcher).prune(stop.clone()));
            Arc::clone(&dispatcher).claim_loop(stop).await;
            pruning.abort();
            // Let the attempts in flight finish: take back every slot.
            let all = u32::try_from(dispatcher.settings.delivery_concurrency).unwrap_or(u32::MAX);
            let drained = dispatcher.slots.acquire_many(all);
            let _ = tokio::time::timeout(
                dispatcher.settings.timeout + Duration::from_secs(1),
                drained,
            )
            .await;
        })
    }

    fn webhook_slot(&self, webhook: &str) -> Arc<Semaphore> {
        let mut slots = self
            .webhook_slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            slots
                .entry(webhook.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.settings.webhook_concurrency))),
        )
    }

    /// What each webhook can start now: its free slots, none behind an
    /// open breaker, all of them for a webhook not seen yet.
    fn room(&self, now: Instant) -> Room {
        let mut room =
            Room::new(u32::try_from(self.settings.webhook_concurrency).unwrap_or(u32::MAX));
        {
            let slots = self
                .webhook_slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (webhook, slot) in slots.iter() {
                let free = u32::try_from(slot.available_permits()).unwrap_or(u32::MAX);
                room.webhooks.insert(webhook.clone(), free);
            }
        }
        for webhook in self.breakers.blocked_webhooks(now) {
            room.webhooks.insert(webhook, 0);
        }
        room
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

    /// Starts an attempt for a claimed delivery, or gives the lease back
    /// when its webhook cannot take one now.
    async fn start(self: &Arc<Self>, delivery: Claimed) {
        let global = Arc::clone(&self.slots).try_acquire_owned();
        let local = self.webhook_slot(&delivery.webhook_id).try_acquire_owned();
        let (Ok(global), Ok(local)) = (global, local) else {
            return self.release(&delivery.id).await;
        };
        if !self.breakers.allow(&delivery.webhook_id, Instant::now()) {
            return self.release(&delivery.id).await;
        }
        tokio::spawn(Arc::clone(self).deliver(delivery, [global, local]));
    }

    async fn release(&self, id: &str) {
        if let Err(error) = self.store.release(id).await {
            // The lease runs out by itself.
            tracing::warn!(%error, delivery = id, "giving a lease back failed");
        }
    }

    /// One attempt, recorded, and what follows it.
    async fn deliver(self: Arc<Self>, delivery: Claimed, _slots: [OwnedSemaphorePermit; 2]) {
        let (url, enabled) = (delivery.url.clone(), delivery.enabled);
        let result = match url.filter(|_| enabled) {
            None => self
                .store
                .finish(&delivery.id, None, Next::Cancelled, Health::Unchanged)
                .await
                .map(|_| "cancelled"),
            Some(url) => self.attempt(&delivery, &url).await,
        };
        match result {
            Ok(outcome) => self.metrics.delivery(outcome),
            Err(error) => {
                tracing::error!(%error, delivery = %delivery.id, "recording an attempt failed; the lease will bring it back")
            }
        }
        self.wake.notify_one();
    }

    async fn attempt(
        &self,
        delivery: &Claimed,
        url: &str,
    ) -> Result<&'static str, crate::store::StoreError> {
        let outcome = self
            .sender
            .send(url, &delivery.id, &delivery.payload, &delivery.secrets)
            .await;
        self.metrics.attempt(outcome.attempt.duration_ms);
        let succeeded = outcome.succeeded();
        self.breakers
            .record(&delivery.webhook_id, succeeded, Instant::now());
        let (next, health, label) = self.next(delivery.attempts + 1, &outcome);
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
    fn next(&self, attempts: u32, outcome: &Outcome) -> (Next, Health, &'static str) {
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
    pub async fn send_once(&self, delivery: &Claimed) -> Result<Outcome, crate::store::StoreError> {
        let url = delivery.url.clone().unwrap_or_default();
        let outcome = self
            .sender
            .send(&url, &delivery.id, &delivery.payload, &delivery.secrets)
            .await;
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
