//! Every tenant's webhooks, compiled inside the engine in wasmtime, kept in
//! step with the store.
//!
//! At start every tenant's [`RuleSet`] is loaded from the store. A webhook
//! write updates the set after its transaction commits and before the API
//! answers, so the next event matches against the new definition; so does
//! the delivery worker when it disables a webhook. Matching a batch of
//! events is one guest call, and each match is explained (which conditions
//! held) so that its delivery can keep the record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::rules::{Error, RuleSet, Runtime};
use crate::store::{Store, StoreError};

/// One tenant's set, used from blocking threads.
type Shared = Arc<Mutex<RuleSet>>;

/// A webhook an event matched, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The webhook's id.
    pub webhook_id: String,
    /// The engine's explanation (JSON): each check, each condition's result.
    pub explanation: String,
}

/// The rule sets of every tenant.
#[derive(Debug)]
pub struct Matcher {
    runtime: Arc<Runtime>,
    sets: Mutex<HashMap<String, Shared>>,
}

impl Matcher {
    /// Loads every tenant's webhooks from the store.
    pub async fn load(runtime: Arc<Runtime>, store: &dyn Store) -> Result<Arc<Self>, StoreError> {
        let matcher = Arc::new(Self {
            runtime,
            sets: Mutex::default(),
        });
        for webhook in store.all_webhooks().await? {
            matcher.upsert(&webhook.tenant_id, webhook.definition).await;
        }
        Ok(matcher)
    }

    fn set(&self, tenant: &str) -> Shared {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            sets.entry(tenant.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(RuleSet::new(Arc::clone(&self.runtime))))),
        )
    }

    /// Runs `work` on a tenant's set on a blocking thread.
    async fn with<R: Send + 'static>(
        &self,
        tenant: &str,
        work: impl FnOnce(&mut RuleSet) -> R + Send + 'static,
    ) -> Result<R, Error> {
        let set = self.set(tenant);
        tokio::task::spawn_blocking(move || {
            let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut set)
        })
        .await
        .map_err(|e| Error::Trap(format!("rule set task failed: {e}")))
    }

    /// Adds or replaces a webhook (its stored definition). A definition the
    /// engine refuses (it validated it before it was stored, so only a
    /// change of engine could) is logged and left out: it never fires.
    pub async fn upsert(&self, tenant: &str, definition: String) {
        let outcome = self
            .with(tenant, move |set| set.insert(&definition).map(drop))
            .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => tracing::warn!(%refused, tenant, "webhook left out of matching"),
            Err(error) => tracing::error!(%error, tenant, "rule set update failed"),
        }
    }

    /// Removes a webhook.
    pub async fn remove(&self, tenant: &str, id: &str) {
        let id = id.to_owned();
        if let Err(error) = self.with(tenant, move |set| set.remove(&id)).await {
            tracing::error!(%error, tenant, "rule set update failed");
        }
    }

    /// Reloads one webhook from the store (after the store changed it).
    pub async fn refresh(
        &self,
        store: &dyn Store,
        tenant: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        match store.webhook(tenant, id).await? {
            Some(webhook) => self.upsert(tenant, webhook.definition).await,
            None => self.remove(tenant, id).await,
        }
        Ok(())
    }

    /// Checks a batch of events with the engine (`admit_event`) and, when
    /// every one is admitted, matches them in one guest call: the engine's
    /// admissions (JSON), and per event the webhooks that fire with their
    /// explanations, in id order. One blocking hop for the whole request.
    pub async fn admit_and_match(
        &self,
        tenant: &str,
        events: Vec<String>,
    ) -> Result<(Vec<serde_json::Value>, Option<Vec<Vec<Match>>>), Error> {
        self.with(tenant, move |set| {
            let batch = format!("[{}]", events.join(","));
            let admissions: Vec<serde_json::Value> =
                serde_json::from_str(&set.call("events", &batch)?).map_err(|e| {
                    Error::Trap(format!("the engine's admissions are not JSON: {e}"))
                })?;
            if admissions.iter().any(|a| a["valid"] != true) {
                return Ok((admissions, None));
            }
            // Owned, so that the set can explain them.
            let matched: Vec<Vec<String>> = set
                .match_batch(&batch)?
                .into_iter()
                .map(|ids| ids.into_iter().map(str::to_owned).collect())
                .collect();
            let matches = events
                .iter()
                .zip(matched)
                .map(|(event, ids)| {
                    ids.into_iter()
                        .map(|webhook_id| {
                            let explanation = set
                                .explain(&webhook_id, event)?
                                .unwrap_or_else(|| "null".to_owned());
                            Ok(Match {
                                webhook_id,
                                explanation,
                            })
                        })
                        .collect::<Result<Vec<_>, Error>>()
                })
                .collect::<Result<Vec<_>, Error>>()?;
            Ok((admissions, Some(matches)))
        })
        .await?
    }
}
