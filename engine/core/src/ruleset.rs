//! A tenant's compiled webhooks, indexed for matching.
//!
//! Compile once, match many: webhooks are validated and compiled when they
//! enter the set (expressions parsed, patterns compiled), and an index by
//! event type, channel and account keeps each event's work to the webhooks
//! that could fire for it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::condition::{CompiledCondition, EventView};
use crate::diagnostic::{Code, Diagnostic, Report};
use crate::event::{Admission, admit};
use crate::explain::{Explanation, explain_compiled};
use crate::model::{Condition, EventType, IngestEvent, Webhook};
use crate::plan::{MAX_NUMBER, Plan};
use crate::webhook::CompiledWebhook;

/// Compiled webhooks, ready to match events.
///
/// # Examples
///
/// ```
/// use inbox_rules::{IngestEvent, RuleSet, Webhook};
///
/// let webhook: Webhook = serde_json::from_str(r#"{
///     "id": "wh_1", "name": "Refunds", "url": "https://crm.example/hook",
///     "events": ["TicketCreated"],
///     "conditions": [{"id": 1, "field": "subject", "operator": "contains", "value": "refund"}]
/// }"#).unwrap();
/// let mut rules = RuleSet::new();
/// rules.insert(&webhook).unwrap();
///
/// let event: IngestEvent = serde_json::from_str(r#"{
///     "event": "TicketCreated", "ticketId": "t1",
///     "ticket": {"channel": "email", "subject": "Refund please"}
/// }"#).unwrap();
/// assert_eq!(rules.matches(&event), ["wh_1"]);
/// ```
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Webhooks by slot; `None` marks a free slot.
    slots: Vec<Option<Entry>>,
    /// What decides each slot's conditions, apart from the rest of its
    /// webhook so that matching reads little memory per candidate; the
    /// empty plan for a free slot.
    plans: Vec<Plan>,
    /// Free slots, reused before the vector grows.
    free: Vec<u32>,
    /// Slot of each webhook id.
    by_id: HashMap<String, u32>,
    /// Per event type (indexed as `EventType::ALL`): enabled webhooks that
    /// could fire for it.
    index: [Bucket; 6],
    /// The webhooks in id order, worked out by the first match after a
    /// change: answers come sorted by id, and sorting the positions of the
    /// webhooks that fire costs far less than sorting their ids as text.
    order: OnceLock<Order>,
    /// The numbered conditions of every webhook, decided at most once per
    /// event.
    shared: Shared,
}

/// Where each webhook stands in id order.
#[derive(Debug, Default)]
struct Order {
    /// Each slot's position (`u32::MAX` for a free slot).
    position: Vec<u32>,
    /// The slot at each position.
    slot: Vec<u32>,
}

#[derive(Debug)]
struct Entry {
    source: Webhook,
    compiled: CompiledWebhook,
    /// The number of each of its conditions in [`Shared`].
    numbers: Vec<u32>,
}

/// A number for each distinct condition of the set: two conditions with the
/// same field, operator and value decide every event alike, whichever
/// webhooks they belong to, so they share a number, and matching decides
/// each number at most once per event. Tenants repeat conditions (`status
/// in [open, pending]`, `priority gte high`) across many webhooks.
#[derive(Debug, Default)]
struct Shared {
    /// The number of each condition, by [`Shared::key`].
    numbers: HashMap<String, u32>,
    /// The condition behind each number; `None` for a free number.
    conditions: Vec<Option<Arc<CompiledCondition>>>,
    /// How many webhooks' conditions use each number; 0 for a free number.
    uses: Vec<u32>,
    free: Vec<u32>,
}

impl Shared {
    /// What makes two conditions decide alike (the id is only a label):
    /// their field, operator and value, as JSON.
    fn key(condition: &Condition) -> String {
        serde_json::to_string(&(&condition.field, &condition.operator, &condition.value))
            .unwrap_or_default()
    }

    /// Whether `count` new numbers can still be given out.
    fn has_room_for(&self, count: usize) -> bool {
        let unused = (MAX_NUMBER as usize + 1).saturating_sub(self.uses.len());
        unused + self.free.len() >= count
    }

    /// A number for `condition` (compiled as `compiled`), now used once
    /// more: the number of an equal condition when the set has one, else a
    /// new number (see [`Self::has_room_for`]).
    fn take(&mut self, condition: &Condition, compiled: &Arc<CompiledCondition>) -> u32 {
        let key = Self::key(condition);
        if let Some(number) = self.numbers.get(&key).copied() {
            if let Some(uses) = self.uses.get_mut(number as usize) {
                *uses += 1;
            }
            return number;
        }
        let number = self.free.pop().unwrap_or_else(|| {
            self.uses.push(0);
            self.conditions.push(None);
            u32::try_from(self.uses.len() - 1).unwrap_or(MAX_NUMBER)
        });
        self.uses[number as usize] = 1;
        self.conditions[number as usize] = Some(Arc::clone(compiled));
        self.numbers.insert(key, number);
        number
    }

    /// Gives back `number`, taken for `condition`; the number is free
    /// again after its last use.
    fn give_back(&mut self, number: u32, condition: &Condition) {
        let Some(uses) = self.uses.get_mut(number as usize) else {
            return;
        };
        *uses = uses.saturating_sub(1);
        if *uses == 0 {
            self.numbers.remove(&Self::key(condition));
            self.conditions[number as usize] = None;
            self.free.push(number);
        }
    }

    /// Whether the condition numbered `number` holds for the event.
    fn holds(&self, number: u32, view: &EventView<'_>) -> bool {
        self.conditions
            .get(number as usize)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.holds(view))
    }
}

/// Enabled webhooks of one event type, by what they subscribe to.
#[derive(Debug, Default)]
struct Bucket {
    /// Subscribed to every channel and account.
    everywhere: Vec<u32>,
    /// Where in `lists` each channel's and each account's webhooks are: the
    /// maps hold positions rather than the lists themselves, so every map
    /// of the rule set is one `HashMap<String, u32>` (one instantiation in
    /// the browser's wasm).
    by_channel: HashMap<String, u32>,
    by_account: HashMap<String, u32>,
    lists: Vec<Vec<u32>>,
}

impl Bucket {
    /// The list of the webhooks subscribed to `key`, a channel or an
    /// account, made empty the first time.
    fn list(&mut self, of: Subscription, key: &str) -> &mut Vec<u32> {
        let map = match of {
            Subscription::Channel => &mut self.by_channel,
            Subscription::Account => &mut self.by_account,
        };
        let lists = &mut self.lists;
        let at = *map.entry(key.to_owned()).or_insert_with(|| {
            lists.push(Vec::new());
            u32::try_from(lists.len() - 1).unwrap_or(u32::MAX)
        });
        &mut lists[at as usize]
    }

    /// The webhooks subscribed to `key`, a channel or an account.
    fn under(&self, of: Subscription, key: Option<&String>) -> &[u32] {
        let map = match of {
            Subscription::Channel => &self.by_channel,
            Subscription::Account => &self.by_account,
        };
        key.and_then(|k| map.get(k))
            .and_then(|&at| self.lists.get(at as usize))
            .map_or(&[], Vec::as_slice)
    }
}

/// What a webhook subscribes to besides event types.
#[derive(Debug, Clone, Copy)]
enum Subscription {
    Channel,
    Account,
}

/// What a rule set makes of a batch of ingest events ([`RuleSet::ingest`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Intake {
    /// Whether every event was admitted. Only then are they matched: one
    /// bad event refuses the whole batch.
    pub valid: bool,
    /// Each event's admission (its problems, or the body its deliveries
    /// carry), in the batch's order.
    pub events: Vec<Admission>,
    /// For each event, in the same order, the webhooks that fire for it in
    /// id order; empty when the batch was refused.
    pub matched: Vec<Vec<Fired>>,
}

/// A webhook that fires for an event, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Fired {
    /// The webhook's id.
    pub webhook_id: String,
    /// Each check and condition as the event met it.
    pub explanation: Explanation,
}

/// A webhook [`RuleSet::from_webhooks`] refused, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Rejected {
    /// The webhook's id.
    pub id: String,
    /// Every problem found.
    pub report: Report,
}

impl RuleSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of every valid webhook given, and the ones refused.
    pub fn from_webhooks<'w>(
        webhooks: impl IntoIterator<Item = &'w Webhook>,
    ) -> (Self, Vec<Rejected>) {
        let mut set = Self::new();
        let rejected = webhooks
            .into_iter()
            .filter_map(|w| {
                set.insert(w).err().map(|report| Rejected {
                    id: w.id.clone(),
                    report,
                })
            })
            .collect();
        (set, rejected)
    }

    /// How many webhooks the set holds, enabled or not.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the set holds no webhook.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Adds a webhook, replacing the one with the same id. Returns its
    /// warnings, or the report of why it was refused (the set unchanged).
    pub fn insert(&mut self, webhook: &Webhook) -> Result<Vec<Diagnostic>, Report> {
        if webhook.id.is_empty() {
            let d = Diagnostic::at(
                "id",
                Code::InvalidValue,
                "a webhook in a rule set needs an id",
            );
            return Err(Report::new(vec![d], Vec::new()));
        }
        let (compiled, warnings) = CompiledWebhook::compile(webhook)?;
        if !self.shared.has_room_for(compiled.conditions.len()) {
            let d = Diagnostic::at(
                "conditions",
                Code::TooManyConditions,
                "the rule set holds as many distinct conditions as it can",
            );
            return Err(Report::new(vec![d], Vec::new()));
        }
        // Compiled conditions come in the webhook's order, one for each.
        let numbers: Vec<u32> = webhook
            .conditions
            .iter()
            .zip(&compiled.conditions)
            .map(|(condition, c)| self.shared.take(condition, c))
            .collect();
        self.remove(&webhook.id);
        self.order.take();
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.plans.push(Plan::default());
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.index_entry(slot, &compiled, |list, slot| list.push(slot));
        self.plans[slot as usize] = compiled.plan(&numbers);
        self.slots[slot as usize] = Some(Entry {
            source: webhook.clone(),
            compiled,
            numbers,
        });
        self.by_id.insert(webhook.id.clone(), slot);
        Ok(warnings)
    }

    /// Removes the webhook with this id; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.by_id.remove(id) else {
            return false;
        };
        self.order.take();
        if let Some(entry) = self.slots[slot as usize].take() {
            self.index_entry(slot, &entry.compiled, |list, slot| {
                list.retain(|s| *s != slot)
            });
            for (number, condition) in entry.numbers.iter().zip(&entry.source.conditions) {
                self.shared.give_back(*number, condition);
            }
        }
        if let Some(plan) = self.plans.get_mut(slot as usize) {
            *plan = Plan::default();
        }
        self.free.push(slot);
        true
    }

    /// Applies `edit` to every index list the webhook belongs in.
    fn index_entry(
        &mut self,
        slot: u32,
        webhook: &CompiledWebhook,
        edit: impl Fn(&mut Vec<u32>, u32),
    ) {
        if !webhook.enabled {
            return;
        }
        for event in webhook.event_types() {
            let bucket = &mut self.index[event.index()];
            if webhook.channels.is_empty() && webhook.accounts.is_empty() {
                edit(&mut bucket.everywhere, slot);
            }
            for channel in &webhook.channels {
                edit(bucket.list(Subscription::Channel, channel), slot);
            }
            for account in &webhook.accounts {
                edit(bucket.list(Subscription::Account, account), slot);
            }
        }
    }

    /// The ids of the webhooks that fire for `event`, sorted.
    pub fn matches(&self, event: &IngestEvent) -> Vec<&str> {
        self.fired(event)
            .into_iter()
            .filter_map(|slot| self.entry(slot))
            .map(|entry| entry.compiled.id.as_str())
            .collect()
    }

    /// Checks each event of a batch ([`crate::admit_event`]) and, when
    /// every one is admitted, matches each and explains every match: all an
    /// ingest request needs, with each event decoded once.
    ///
    /// # Examples
    ///
    /// ```
    /// use inbox_rules::{RuleSet, Webhook};
    ///
    /// let webhook: Webhook = serde_json::from_str(r#"{
    ///     "id": "wh_1", "name": "All new tickets", "url": "https://crm.example/hook",
    ///     "events": ["TicketCreated"]
    /// }"#).unwrap();
    /// let mut rules = RuleSet::new();
    /// rules.insert(&webhook).unwrap();
    ///
    /// let intake = rules.ingest(&[serde_json::json!({
    ///     "event": "TicketCreated", "ticketId": "ebcb7b53-6636-4c6b-8023-4a61d6df694c"
    /// })]);
    /// assert!(intake.valid);
    /// assert_eq!(intake.matched[0][0].webhook_id, "wh_1");
    /// ```
    pub fn ingest(&self, events: &[serde_json::Value]) -> Intake {
        let (events, decoded): (Vec<Admission>, Vec<Option<IngestEvent>>) =
            events.iter().map(admit).unzip();
        let valid = events.iter().all(|admission| admission.valid);
        let matched = match valid {
            true => decoded
                .iter()
                .flatten()
                .map(|e| self.explain_fired(e, &self.fired(e)))
                .collect(),
            false => Vec::new(),
        };
        Intake {
            valid,
            events,
            matched,
        }
    }

    /// [`RuleSet::ingest`] with a bound on its work: when the events would
    /// fire more than `max_fired` webhooks together, nothing is explained
    /// (explaining is what costs) and the answer is how many they would. Admission runs first, so a batch
    /// with a bad event is refused as such whatever it would fire.
    pub fn ingest_at_most(
        &self,
        events: &[serde_json::Value],
        max_fired: usize,
    ) -> Result<Intake, usize> {
        let (events, decoded): (Vec<Admission>, Vec<Option<IngestEvent>>) =
            events.iter().map(admit).unzip();
        let valid = events.iter().all(|admission| admission.valid);
        if !valid {
            return Ok(Intake {
                valid,
                events,
                matched: Vec::new(),
            });
        }
        let fired: Vec<Vec<u32>> = decoded.iter().flatten().map(|e| self.fired(e)).collect();
        let count = fired.iter().map(Vec::len).sum();
        if count > max_fired {
            return Err(count);
        }
        let matched = decoded
            .iter()
            .flatten()
            .zip(&fired)
            .map(|(e, slots)| self.explain_fired(e, slots))
            .collect();
        Ok(Intake {
            valid,
            events,
            matched,
        })
    }

    /// The webhooks at `slots` (those that fire for `event`), each
    /// explained.
    fn explain_fired(&self, event: &IngestEvent, slots: &[u32]) -> Vec<Fired> {
        slots
            .iter()
            .filter_map(|&slot| self.entry(slot))
            .map(|entry| Fired {
                webhook_id: entry.compiled.id.clone(),
                explanation: explain_compiled(&entry.source, &entry.compiled, event),
            })
            .collect()
    }

    /// The slots of the webhooks that fire for `event`, in id order.
    fn fired(&self, event: &IngestEvent) -> Vec<u32> {
        let view = EventView::new(event);
        let order = self.order();
        // What each numbered condition decided for this event: 0 not yet
        // asked, 1 false, 2 true.
        let mut decided = vec![0u8; self.shared.uses.len()];
        let mut holds = |number: u32| {
            let Some(known) = decided.get_mut(number as usize) else {
                return false;
            };
            if *known == 0 {
                *known = 1 + u8::from(self.shared.holds(number, &view));
            }
            *known == 2
        };
        // Bit `p` set: the webhook at position `p` in id order fires. Read
        // in order, the bits give the answer sorted, each webhook once
        // (one listed under its channel and its account is a candidate
        // twice), with no sort.
        let mut fired = vec![0u64; order.slot.len().div_ceil(64)];
        for slot in self.candidates(&view) {
            let fires = self
                .plans
                .get(slot as usize)
                .is_some_and(|plan| plan.decide(&mut holds));
            if fires
                && let Some(position) = order.position.get(slot as usize)
                && let Some(word) = fired.get_mut(*position as usize / 64)
            {
                *word |= 1 << (position % 64);
            }
        }
        let mut slots = Vec::new();
        for (at, word) in (0..).step_by(64).zip(fired) {
            let mut bits = word;
            while bits != 0 {
                let position = at + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                slots.extend(order.slot.get(position));
            }
        }
        slots
    }

    /// Explains the webhook with this id against `event`, or `None` when
    /// the set has no such webhook.
    pub fn explain(&self, id: &str, event: &IngestEvent) -> Option<Explanation> {
        let entry = self.entry(*self.by_id.get(id)?)?;
        Some(explain_compiled(&entry.source, &entry.compiled, event))
    }

    fn entry(&self, slot: u32) -> Option<&Entry> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The webhooks in id order, worked out again after a change.
    fn order(&self) -> &Order {
        self.order.get_or_init(|| {
            let by_id: std::collections::BinaryHeap<(&str, u32)> = self
                .by_id
                .iter()
                .map(|(id, slot)| (id.as_str(), *slot))
                .collect();
            let by_id = by_id.into_sorted_vec();
            let mut order = Order {
                position: vec![u32::MAX; self.slots.len()],
                slot: Vec::with_capacity(by_id.len()),
            };
            for (position, (_, slot)) in (0..).zip(by_id) {
                if let Some(p) = order.position.get_mut(slot as usize) {
                    *p = position;
                }
                order.slot.push(slot);
            }
            order
        })
    }

    /// The slots of the webhooks that might fire for the event: enabled and
    /// subscribed to its type and to its channel, its account, or
    /// everything. A webhook listed under both its channel and its account
    /// comes twice.
    fn candidates<'s>(&'s self, view: &EventView<'_>) -> impl Iterator<Item = u32> + 's {
        let bucket = view.event_type.map(|e: EventType| &self.index[e.index()]);
        let ticket = &view.event.ticket;
        let lists: [&'s [u32]; 3] = match bucket {
            Some(b) => [
                &b.everywhere,
                b.under(Subscription::Channel, ticket.channel.as_ref()),
                b.under(Subscription::Account, ticket.account_id.as_ref()),
            ],
            None => [&[], &[], &[]],
        };
        lists.into_iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn hook(id: &str, extra: Value) -> Webhook {
        let mut value = json!({
            "id": id, "name": id, "url": "https://crm.example/hook",
            "events": ["TicketCreated"], "channels": ["email"],
        });
        if let (Some(base), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(value).expect("webhook shape")
    }

    fn event(channel: &str, account: &str) -> IngestEvent {
        serde_json::from_value(json!({
            "event": "TicketCreated", "ticketId": "t",
            "ticket": {"channel": channel, "accountId": account},
        }))
        .expect("event shape")
    }

    #[test]
    fn ingest_at_most_explains_nothing_past_its_bound() {
        let mut rules = RuleSet::new();
        for id in ["wh_1", "wh_2"] {
            rules.insert(&hook(id, json!({}))).expect("valid");
        }
        let created = json!({"event": "TicketCreated",
                             "ticketId": "ebcb7b53-6636-4c6b-8023-4a61d6df694c",
                             "ticket": {"channel": "email"}});
        let three = [created.clone(), created.clone(), created.clone()];
        // Three events, each firing both webhooks: six together.
        let whole = rules.ingest(&three);
        assert!(whole.valid);
        assert_eq!(whole.matched.concat().len(), 6);
        assert_eq!(rules.ingest_at_most(&three, 6), Ok(whole));
        assert_eq!(rules.ingest_at_most(&three, 5), Err(6));
        // A batch with a bad event is refused as such, however much the
        // others would fire.
        let bad = [created.clone(), created, json!({"event": "Nope"})];
        let refused = rules.ingest_at_most(&bad, 0).expect("refused, not counted");
        assert!(!refused.valid);
        assert!(refused.matched.is_empty());
    }

    #[test]
    fn a_rule_set_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<RuleSet>();
    }

    #[test]
    fn insert_replaces_the_webhook_with_the_same_id() {
        let mut rules = RuleSet::new();
        rules.insert(&hook("wh_1", json!({}))).expect("valid");
        assert_eq!(rules.matches(&event("email", "a")), ["wh_1"]);
        rules
            .insert(&hook("wh_1", json!({"channels": ["chat"]})))
            .expect("valid");
        assert_eq!(rules.len(), 1);
        assert!(rules.matches(&event("email", "a")).is_empty());
        assert_eq!(rules.matches(&event("chat", "a")), ["wh_1"]);
    }

    #[test]
    fn a_refused_webhook_leaves_the_set_unchanged() {
        let mut rules = RuleSet::new();
        rules.insert(&hook("wh_1", json!({}))).expect("valid");
        let refused = rules.insert(&hook("wh_1", json!({"events": ["Nope"]})));
        assert!(refused.is_err());
        assert_eq!(rules.matches(&event("email", "a")), ["wh_1"]);
        assert!(
            rules.insert(&hook("", json!({}))).is_err(),
            "an id is required"
        );
    }

    #[test]
    fn disabling_and_enabling_takes_effect_at_once() {
        let mut rules = RuleSet::new();
        rules
            .insert(&hook("wh_1", json!({"enabled": false})))
            .expect("valid");
        assert!(rules.matches(&event("email", "a")).is_empty());
        assert!(
            rules
                .explain("wh_1", &event("email", "a"))
                .is_some_and(|e| !e.fires)
        );
        rules
            .insert(&hook("wh_1", json!({"enabled": true})))
            .expect("valid");
        assert_eq!(rules.matches(&event("email", "a")), ["wh_1"]);
        rules
            .insert(&hook("wh_1", json!({"enabled": false})))
            .expect("valid");
        assert!(rules.matches(&event("email", "a")).is_empty());
    }

    #[test]
    fn removed_slots_are_reused_without_stale_index_entries() {
        let mut rules = RuleSet::new();
        rules.insert(&hook("wh_1", json!({}))).expect("valid");
        rules
            .insert(&hook("wh_2", json!({"accounts": ["a"]})))
            .expect("valid");
        assert!(rules.remove("wh_1"));
        assert!(!rules.remove("wh_1"));
        rules
            .insert(&hook("wh_3", json!({"channels": ["chat"]})))
            .expect("valid");
        assert_eq!(rules.matches(&event("email", "a")), ["wh_2"]);
        assert_eq!(rules.matches(&event("chat", "b")), ["wh_3"]);
        assert!(rules.explain("wh_1", &event("email", "a")).is_none());
    }

    #[test]
    fn shared_conditions_are_decided_per_event_and_freed_with_their_last_use() {
        let subject = |value: &str| json!({"conditions": [{"id": 1, "field": "subject", "operator": "contains", "value": value}]});
        let about = |subject: &str| {
            let mut e = event("email", "a");
            e.ticket.subject = Some(subject.to_owned());
            e
        };
        let mut rules = RuleSet::new();
        rules
            .insert(&hook("wh_1", subject("refund")))
            .expect("valid");
        rules
            .insert(&hook("wh_2", subject("refund")))
            .expect("valid");
        rules
            .insert(&hook("wh_3", subject("invoice")))
            .expect("valid");
        assert_eq!(rules.shared.numbers.len(), 2);
        assert_eq!(rules.matches(&about("refund now")), ["wh_1", "wh_2"]);
        assert_eq!(rules.matches(&about("an invoice")), ["wh_3"]);

        // One use of `refund` goes; the other still decides.
        assert!(rules.remove("wh_1"));
        assert_eq!(rules.matches(&about("refund now")), ["wh_2"]);
        // The last use goes: its number is free, and the next distinct
        // condition takes it without inheriting anything.
        assert!(rules.remove("wh_2"));
        assert_eq!(rules.shared.numbers.len(), 1);
        rules
            .insert(&hook("wh_4", subject("refund please")))
            .expect("valid");
        assert_eq!(rules.shared.numbers.len(), 2);
        assert!(rules.matches(&about("refund now")).is_empty());
        assert_eq!(
            rules.matches(&about("refund please, an invoice")),
            ["wh_3", "wh_4"]
        );
        // Replacing a webhook gives back its old conditions.
        rules
            .insert(&hook("wh_3", subject("refund please")))
            .expect("valid");
        assert_eq!(rules.shared.numbers.len(), 1);
        assert_eq!(rules.shared.uses.iter().sum::<u32>(), 2);
    }

    #[test]
    fn a_webhook_listed_by_channel_and_account_fires_once() {
        let mut rules = RuleSet::new();
        rules
            .insert(&hook("wh_1", json!({"accounts": ["a"]})))
            .expect("valid");
        assert_eq!(rules.matches(&event("email", "a")), ["wh_1"]);
        assert!(rules.matches(&event("sms", "z")).is_empty());
    }
}
