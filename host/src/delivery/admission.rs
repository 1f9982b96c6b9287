//! Admission: how many deliveries each webhook and tenant may take on now.
//!
//! Two ways take work on, and both count against the same slots:
//!
//! - a **claim** takes due rows from the store, no more per webhook and
//!   tenant than its [`Room`];
//! - **ingest** stores a delivery already leased to this process when its
//!   webhook has room, promising that room with a [`Reservation`] until
//!   the delivery is handed over (or the reservation is dropped).
//!
//! A webhook's room is its free slots and room to wait ahead ([`AHEAD`]
//! per slot), less what waits for it and what ingest promised; a tenant's
//! is its free slots less what ingest promised it.
//!
//! Once ingest has had to store one of a webhook's deliveries for a claim,
//! it promises that webhook nothing until a claim has found none of its
//! deliveries left. Otherwise, under sustained load, each slot that comes
//! free goes to the newest event's hand-over, and the stored delivery
//! waits until the load stops: seconds, measured. Deliveries of one
//! webhook then go out roughly in the order they were accepted.
//!
//! [`Admission`] does the counting and nothing else, so it is tested here
//! without a store, a runtime or a clock; the dispatcher reads its slots
//! and queues and asks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Dispatcher, lock};
use crate::store::{Claimed, Millis, Room};

/// Deliveries that may wait in the dispatcher per slot of a webhook for
/// one of its workers, claimed ahead or handed over by ingest: a worker
/// goes from one POST to the next without waiting for a claim to commit.
/// Four per slot lets one group commit of ingest (every request waiting for
/// the writer) be handed over whole rather than partly stored for a claim,
/// and lets one claim take a webhook's backlog 64 at a time (at the default
/// 16 slots), which is what keeps pace once ingest sends it through claims.
pub(super) const AHEAD: u32 = 4;

/// The slots admission counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// Attempts in flight per webhook (`webhook_concurrency`).
    pub(super) webhook: u32,
    /// Attempts in flight per tenant (`tenant_concurrency`).
    pub(super) tenant: u32,
    /// Deliveries that may wait for a worker per slot of a webhook
    /// ([`AHEAD`]).
    pub(super) ahead: u32,
}

impl Limits {
    /// Room to wait ahead for a worker of one webhook.
    fn ahead(self) -> u32 {
        self.webhook.saturating_mul(self.ahead)
    }
}

/// What is free when ingest asks room for one delivery.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ask<'a> {
    pub(super) webhook: &'a str,
    pub(super) tenant: &'a str,
    /// Free slots of the webhook.
    pub(super) webhook_free: u32,
    /// Deliveries claimed ahead waiting for a worker of the webhook.
    pub(super) queued: u32,
    /// Free slots of the tenant.
    pub(super) tenant_free: u32,
    /// Free slots over every webhook.
    pub(super) all_free: u32,
}

/// What differs from an idle dispatcher when a claim's room is worked out.
#[derive(Debug, Default)]
pub(super) struct Busy {
    /// Tenants with a slot taken, with how many of theirs are free.
    pub(super) tenants: Vec<(String, u32)>,
    /// Webhooks with a slot taken, with how many of theirs are free.
    pub(super) webhooks: Vec<(String, u32)>,
    /// Deliveries claimed ahead, per webhook, waiting for a worker.
    pub(super) queued: HashMap<String, u32>,
    /// Webhooks whose circuit breaker refuses attempts now.
    pub(super) blocked: Vec<String>,
}

/// The room promised at ingest and not handed over yet, and the counting
/// that turns slots, queues and promises into room.
#[derive(Debug)]
pub(super) struct Admission {
    limits: Limits,
    /// Promised deliveries per webhook.
    webhooks: HashMap<String, u32>,
    /// The same deliveries, counted per tenant.
    tenants: HashMap<String, u32>,
    /// Webhooks with deliveries ingest stored for a claim (there was no
    /// room to promise): none of theirs is promised until a claim leaves
    /// room unused ([`Self::claimed`]).
    stored: HashSet<String>,
}

impl Admission {
    /// Nothing promised.
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            limits,
            webhooks: HashMap::new(),
            tenants: HashMap::new(),
            stored: HashSet::new(),
        }
    }

    /// What `webhook` can take now, with `free` of its slots free and
    /// `queued` deliveries waiting for them.
    pub(super) fn headroom(&self, webhook: &str, free: u32, queued: u32) -> u32 {
        free.saturating_add(self.limits.ahead())
            .saturating_sub(queued)
            .saturating_sub(promised(&self.webhooks, webhook))
    }

    /// Promises room for one delivery, or says there is none (the
    /// delivery is then stored for a claim): the webhook must have
    /// headroom and no delivery stored for a claim, and neither its tenant
    /// nor the dispatcher as a whole may have promised all of its free
    /// slots already.
    pub(super) fn promise(&mut self, ask: &Ask<'_>) -> bool {
        if self.stored.contains(ask.webhook) {
            return false;
        }
        let all_promised: u32 = self.webhooks.values().sum();
        if self.headroom(ask.webhook, ask.webhook_free, ask.queued) == 0
            || ask.all_free <= all_promised
            || ask.tenant_free <= promised(&self.tenants, ask.tenant)
        {
            self.stored.insert(ask.webhook.to_owned());
            return false;
        }
        *self.webhooks.entry(ask.webhook.to_owned()).or_default() += 1;
        *self.tenants.entry(ask.tenant.to_owned()).or_default() += 1;
        true
    }

    /// Gives back what `tenant`'s reservation took, per webhook.
    pub(super) fn give_back(&mut self, tenant: &str, taken: HashMap<String, u32>) {
        let mut all = 0;
        for (webhook, count) in taken {
            all += count;
            subtract(&mut self.webhooks, &webhook, count);
        }
        subtract(&mut self.tenants, tenant, all);
    }

    /// What a claim may take now: a webhook not listed has every slot free
    /// and nothing waiting or promised; one behind an open breaker has
    /// none. A tenant not listed has every slot free.
    pub(super) fn room(&self, busy: Busy) -> Room {
        let mut room = Room::new(self.limits.webhook.saturating_add(self.limits.ahead()));
        room.tenant_default = self.limits.tenant;
        for (tenant, free) in busy.tenants {
            let left = free.saturating_sub(promised(&self.tenants, &tenant));
            room.tenants.insert(tenant, left);
        }
        for (tenant, promised) in &self.tenants {
            room.tenants
                .entry(tenant.clone())
                .or_insert_with(|| self.limits.tenant.saturating_sub(*promised));
        }
        // A webhook with every slot free differs from the default only by
        // what ingest promised it: rows wait ahead only while every slot
        // of their webhook is taken.
        let idle_promised: Vec<(String, u32)> = self
            .webhooks
            .keys()
            .filter(|webhook| !busy.webhooks.iter().any(|(busy, _)| busy == *webhook))
            .map(|webhook| (webhook.clone(), self.limits.webhook))
            .collect();
        for (webhook, free) in busy.webhooks.into_iter().chain(idle_promised) {
            let queued = busy.queued.get(&webhook).copied().unwrap_or(0);
            let left = self.headroom(&webhook, free, queued);
            room.webhooks.insert(webhook, left);
        }
        for webhook in busy.blocked {
            room.webhooks.insert(webhook, 0);
        }
        room
    }

    /// After a claim with `room` took `taken` deliveries per webhook
    /// (`full`: as many as it asked for in all): a webhook that had
    /// deliveries stored for a claim has none left when the claim took
    /// fewer of its than its room, and ingest may promise it room again.
    /// (A claim cut short by its tenant's room clears it too early; the
    /// next delivery ingest cannot promise marks it again.)
    pub(super) fn claimed(&mut self, room: &Room, taken: &HashMap<String, u32>, full: bool) {
        if full {
            return;
        }
        self.stored
            .retain(|webhook| taken.get(webhook).copied().unwrap_or(0) >= room.of(webhook));
    }

    /// Whether nothing is promised.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.tenants.is_empty()
    }
}

fn promised(counts: &HashMap<String, u32>, key: &str) -> u32 {
    counts.get(key).copied().unwrap_or(0)
}

fn subtract(counts: &mut HashMap<String, u32>, key: &str, taken: u32) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(taken);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// Room ingest took for deliveries it stores leased to this process and
/// then hands over to the dispatcher ([`Reservation::hand_over`]), which
/// starts them at once: a delivery that needs no claim costs the store no
/// claim's queries and update, and reaches its receiver sooner. Room is
/// taken only while the claim loop runs and the webhook's breaker lets
/// attempts through. Dropped, it gives back what it took.
#[derive(Debug)]
pub struct Reservation {
    dispatcher: Arc<Dispatcher>,
    /// The tenant whose deliveries these are.
    tenant: String,
    /// Promised deliveries per webhook.
    taken: HashMap<String, u32>,
}

impl Reservation {
    /// An empty reservation for `tenant`'s deliveries.
    pub(super) fn new(dispatcher: Arc<Dispatcher>, tenant: &str) -> Self {
        Self {
            dispatcher,
            tenant: tenant.to_owned(),
            taken: HashMap::new(),
        }
    }

    /// Takes room for one delivery to `webhook`, to be stored at `at`:
    /// the end of its lease, or `None` when there is no room (it is then
    /// stored for a claim).
    pub fn take(&mut self, webhook: &str, at: Millis) -> Option<Millis> {
        if !self.dispatcher.promise(&self.tenant, webhook) {
            return None;
        }
        *self.taken.entry(webhook.to_owned()).or_default() += 1;
        Some(at + self.dispatcher.lease_millis())
    }

    /// Starts the deliveries ingest stored leased to this process, within
    /// the room taken for them; the rest of the room is given back.
    pub async fn hand_over(self, leased: Vec<Claimed>) {
        for delivery in leased {
            self.dispatcher
                .start_or_release(super::Run::one(delivery))
                .await;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let taken = std::mem::take(&mut self.taken);
        lock(&self.dispatcher.admission).give_back(&self.tenant, taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        webhook: 4,
        tenant: 10,
        ahead: 1,
    };

    fn ask<'a>(webhook: &'a str, tenant: &'a str) -> Ask<'a> {
        Ask {
            webhook,
            tenant,
            webhook_free: LIMITS.webhook,
            queued: 0,
            tenant_free: LIMITS.tenant,
            all_free: 100,
        }
    }

    #[test]
    fn headroom_is_free_slots_and_room_ahead_less_queued_and_promised() {
        let mut admission = Admission::new(LIMITS);
        assert_eq!(admission.headroom("wh_a", 4, 0), 8);
        assert_eq!(admission.headroom("wh_a", 1, 3), 2);
        assert_eq!(admission.headroom("wh_a", 0, 9), 0, "never below zero");
        assert!(admission.promise(&ask("wh_a", "t")));
        assert_eq!(admission.headroom("wh_a", 4, 0), 7);
        assert_eq!(admission.headroom("wh_b", 4, 0), 8, "per webhook");
    }

    #[test]
    fn a_webhook_is_promised_its_headroom_and_no_more() {
        let mut admission = Admission::new(LIMITS);
        let busy = Ask {
            webhook_free: 1,
            queued: 2,
            ..ask("wh_a", "t")
        };
        // 1 free + 4 ahead - 2 queued.
        for _ in 0..3 {
            assert!(admission.promise(&busy));
        }
        assert!(!admission.promise(&busy));
        assert!(admission.promise(&ask("wh_b", "t")), "another webhook");
    }

    #[test]
    fn a_tenant_is_promised_no_more_than_its_free_slots() {
        let mut admission = Admission::new(LIMITS);
        let tight = |webhook| Ask {
            tenant_free: 3,
            ..ask(webhook, "t")
        };
        assert!(admission.promise(&tight("wh_a")));
        assert!(admission.promise(&tight("wh_b")));
        assert!(admission.promise(&tight("wh_c")));
        assert!(!admission.promise(&tight("wh_d")), "over every webhook");
        assert!(admission.promise(&ask("wh_e", "other")), "another tenant");
    }

    #[test]
    fn nothing_is_promised_past_the_free_slots_of_the_whole() {
        let mut admission = Admission::new(LIMITS);
        let scarce = |webhook, tenant| Ask {
            all_free: 2,
            ..ask(webhook, tenant)
        };
        assert!(admission.promise(&scarce("wh_a", "t")));
        assert!(admission.promise(&scarce("wh_b", "u")));
        assert!(!admission.promise(&scarce("wh_c", "v")));
    }

    #[test]
    fn a_webhook_with_a_delivery_stored_for_a_claim_is_promised_nothing_until_none_is_left() {
        let mut admission = Admission::new(LIMITS);
        let no_room = Ask {
            webhook_free: 0,
            queued: 4,
            ..ask("wh_a", "t")
        };
        assert!(!admission.promise(&no_room), "stored for a claim");
        assert!(
            !admission.promise(&ask("wh_a", "t")),
            "room again, but an older delivery waits for a claim"
        );
        assert!(admission.promise(&ask("wh_b", "t")), "another webhook");
        let room = Room::new(8);
        let took = |n| HashMap::from([("wh_a".to_owned(), n)]);
        admission.claimed(&room, &took(8), false);
        assert!(
            !admission.promise(&ask("wh_a", "t")),
            "a claim that took all its room may have left some"
        );
        admission.claimed(&room, &took(2), true);
        assert!(
            !admission.promise(&ask("wh_a", "t")),
            "nor does a claim that took all it asked for tell"
        );
        admission.claimed(&room, &took(2), false);
        assert!(
            admission.promise(&ask("wh_a", "t")),
            "a claim that left room unused found none left"
        );
    }

    #[test]
    fn giving_back_forgets_what_was_taken() {
        let mut admission = Admission::new(LIMITS);
        assert!(admission.promise(&ask("wh_a", "t")));
        assert!(admission.promise(&ask("wh_a", "t")));
        assert!(admission.promise(&ask("wh_b", "t")));
        assert!(admission.promise(&ask("wh_b", "u")));
        admission.give_back("t", HashMap::from([("wh_a".into(), 2), ("wh_b".into(), 1)]));
        assert_eq!(admission.headroom("wh_a", 4, 0), 8);
        assert_eq!(admission.headroom("wh_b", 4, 0), 7, "u's is still promised");
        admission.give_back("u", HashMap::from([("wh_b".into(), 1)]));
        assert!(admission.is_empty());
        admission.give_back("u", HashMap::from([("wh_b".into(), 1)]));
        assert!(admission.is_empty(), "giving back twice takes nothing");
    }

    #[test]
    fn an_idle_dispatcher_gives_every_webhook_and_tenant_the_default() {
        let room = Admission::new(LIMITS).room(Busy::default());
        assert!(room.webhooks.is_empty() && room.tenants.is_empty());
        assert_eq!(room.of("wh_a"), 8);
        assert_eq!(room.tenant_default, 10);
    }

    #[test]
    fn room_counts_busy_slots_queues_promises_and_breakers() {
        let mut admission = Admission::new(LIMITS);
        assert!(admission.promise(&ask("wh_idle", "t")));
        assert!(admission.promise(&ask("wh_busy", "t")));
        let room = admission.room(Busy {
            tenants: vec![("u".into(), 6)],
            webhooks: vec![("wh_busy".into(), 1)],
            queued: HashMap::from([("wh_busy".into(), 2)]),
            blocked: vec!["wh_open".into()],
        });
        assert_eq!(room.of("wh_busy"), 1 + 4 - 2 - 1);
        assert_eq!(room.of("wh_idle"), 4 + 4 - 1, "idle but promised");
        assert_eq!(room.of("wh_open"), 0, "behind an open breaker");
        assert_eq!(room.of("wh_other"), 8);
        assert_eq!(room.tenants.get("u"), Some(&6), "busy, nothing promised");
        assert_eq!(room.tenants.get("t"), Some(&8), "idle, two promised");
        assert_eq!(room.tenants.get("v"), None);
    }
}
