//! A tenant's compiled webhooks, living inside one guest instance.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::guest::{InboxRules, IntakeRefusal, Refusal};
use super::instance::Instance;
use super::runtime::GuestState;
use super::{Budget, Error, Runtime};

/// Why a rule set refused a webhook.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// The webhook is invalid; the engine's report, as JSON.
    #[error("invalid webhook: {0}")]
    Invalid(String),
    /// The call itself failed.
    #[error(transparent)]
    Engine(#[from] Error),
}

/// What a rule set made of a batch of events ([`TenantRules::ingest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The engine's intake (`inbox_rules::Intake`), JSON.
    Intake(String),
    /// The events would fire this many webhooks together, more than the
    /// call allowed; nothing was explained.
    TooMany(u64),
}

/// A tenant's compiled webhooks in the guest (`rule-set`), and each
/// webhook's JSON: the way to rebuild the guest's set on a fresh instance
/// after a failed call.
#[derive(Debug)]
pub struct TenantRules {
    instance: Instance,
    /// The guest's set, and the instance it lives in.
    set: Option<(u64, ResourceAny)>,
    /// Every webhook the set holds, by id.
    webhooks: BTreeMap<String, String>,
}

impl TenantRules {
    /// An empty set on `runtime`, with its budget.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        Self::in_instance(Instance::new(runtime, None))
    }

    /// An empty set with a budget of its own.
    pub fn with_budget(runtime: Arc<Runtime>, budget: Budget) -> Self {
        Self::in_instance(Instance::new(runtime, Some(budget)))
    }

    fn in_instance(instance: Instance) -> Self {
        Self {
            instance,
            set: None,
            webhooks: BTreeMap::new(),
        }
    }

    /// How many webhooks the set holds.
    pub fn len(&self) -> usize {
        self.webhooks.len()
    }

    /// Whether the set holds no webhook.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty()
    }

    /// Adds a webhook (JSON), replacing the one with the same id; returns
    /// its warnings (a JSON list of diagnostics).
    pub fn insert(&mut self, webhook: &str) -> Result<String, InsertError> {
        let answer = self.with(|store, guest, set| {
            guest
                .cloudcx_inbox_rules_engine()
                .rule_set()
                .call_insert(store, set, webhook)
        })?;
        match answer {
            Ok(warnings) => {
                /// The guest accepted the webhook, so it is JSON with an id.
                #[derive(serde::Deserialize)]
                struct Id {
                    id: String,
                }
                let Id { id } = serde_json::from_str(webhook)
                    .map_err(|e| Error::Trap(format!("an accepted webhook has no id: {e}")))?;
                self.webhooks.insert(id, webhook.to_owned());
                Ok(warnings)
            }
            Err(Refusal::Invalid(report)) => Err(InsertError::Invalid(report)),
            Err(Refusal::Malformed(message)) => Err(Error::Input(message).into()),
        }
    }

    /// Removes the webhook with this id; whether it was there. Removal
    /// cannot fail: should the guest call fail, the instance is gone and
    /// the next call rebuilds the set without the webhook.
    pub fn remove(&mut self, id: &str) -> bool {
        if self.webhooks.remove(id).is_none() {
            return false;
        }
        if self.live_set().is_some() {
            // A failed call has dropped the instance; nothing else to undo.
            drop(self.with(|store, guest, set| {
                guest
                    .cloudcx_inbox_rules_engine()
                    .rule_set()
                    .call_remove(store, set, id)
            }));
        }
        true
    }

    /// Takes in a batch of ingest events (a JSON array), in one guest
    /// call: the engine's intake (`inbox_rules::Intake`) as JSON, or, when
    /// the events would fire more than `max_fired` webhooks together, how
    /// many they would (and nothing is explained).
    pub fn ingest(&mut self, events: &str, max_fired: u32) -> Result<Taken, Error> {
        let answer = self.with(|store, guest, set| {
            guest
                .cloudcx_inbox_rules_engine()
                .rule_set()
                .call_ingest(store, set, events, max_fired)
        })?;
        match answer {
            Ok(intake) => Ok(Taken::Intake(intake)),
            Err(IntakeRefusal::TooMany(fired)) => Ok(Taken::TooMany(fired)),
            Err(IntakeRefusal::Malformed(message)) => Err(Error::Input(message)),
        }
    }

    /// The guest's set, when it lives in the live instance.
    fn live_set(&self) -> Option<ResourceAny> {
        match (self.set, self.instance.live()) {
            (Some((made, set)), Some(live)) if made == live => Some(set),
            _ => None,
        }
    }

    /// Runs `call` against the guest's set, rebuilding it on a fresh
    /// instance first when the live one does not hold it.
    fn with<R>(
        &mut self,
        call: impl FnOnce(&mut Store<GuestState>, &InboxRules, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let set = match self.live_set() {
            Some(set) => set,
            None => self.rebuild()?,
        };
        self.instance.call(|store, guest| call(store, guest, set))
    }

    /// A new guest set holding every webhook of this one.
    fn rebuild(&mut self) -> Result<ResourceAny, Error> {
        self.instance.discard();
        let set = self.instance.call(|store, guest| {
            guest
                .cloudcx_inbox_rules_engine()
                .rule_set()
                .call_constructor(store)
        })?;
        for webhook in self.webhooks.values() {
            let accepted = self.instance.call(|store, guest| {
                guest
                    .cloudcx_inbox_rules_engine()
                    .rule_set()
                    .call_insert(store, set, webhook)
            })?;
            // Every webhook here was accepted once; the same engine accepts
            // it again.
            if accepted.is_err() {
                self.instance.discard();
                return Err(Error::Trap("a webhook accepted before was refused".into()));
            }
        }
        self.set = self.instance.live().map(|made| (made, set));
        Ok(set)
    }
}
