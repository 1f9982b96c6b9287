//! Every tenant's webhooks, compiled inside the engine in wasmtime, kept in
//! step with the store.
//!
//! At start every tenant's [`RuleSet`] is loaded from the store. A webhook
//! write updates the set after its transaction commits and before the API
//! answers, so the next event matches against the new definition; so does
//! the delivery worker when it disables a webhook. Taking in an ingest
//! request is one guest call that checks every event, matches each, and
//! explains each match (which conditions held) so that its delivery can
//! keep the record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::rules::{Error, Runtime, Taken, TenantRules};
use crate::store::{Store, StoreError, WebhookRecord};

/// One tenant's set, used from blocking threads.
type Shared = Arc<Mutex<TenantRules>>;

/// A webhook an event matched, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The webhook's id.
    pub webhook_id: String,
    /// The engine's explanation (JSON): each check, each condition's result.
    pub explanation: String,
}

/// What the engine made of an ingest request's events.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every event was admitted: each one's payload and matches, in order.
    Admitted(Vec<AdmittedEvent>),
    /// At least one was not: each event's problems (the engine's
    /// diagnostics, each with its `path`), in order.
    Refused(Vec<Vec<Value>>),
    /// Every event was admitted, but together they would fire this many
    /// webhooks, more than the call allowed: nothing was explained.
    TooMany(u64),
}

/// An admitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedEvent {
    /// The body its deliveries carry (JSON).
    pub payload: String,
    /// The webhooks it fires, in id order.
    pub matches: Vec<Match>,
}

/// The rule sets of every tenant.
#[derive(Debug)]
pub struct Matcher {
    runtime: Arc<Runtime>,
    sets: Mutex<HashMap<String, Shared>>,
    /// The revision of each webhook in the sets, by id, with its tenant:
    /// what [`Matcher::catch_up`] compares with the store's.
    revisions: Mutex<HashMap<String, (String, i64)>>,
}

impl Matcher {
    /// Loads every tenant's webhooks from the store.
    pub async fn load(runtime: Arc<Runtime>, store: &dyn Store) -> Result<Arc<Self>, StoreError> {
        let matcher = Arc::new(Self {
            runtime,
            sets: Mutex::default(),
            revisions: Mutex::default(),
        });
        for webhook in store.all_webhooks().await? {
            matcher.upsert(&webhook).await;
        }
        Ok(matcher)
    }

    /// Brings the sets in step with the store after changes this process
    /// may not have heard of (made by another process, while the
    /// notifications were lost): every webhook whose revision differs, and
    /// every one the store no longer lists, is read again. Read again, not
    /// dropped: one this process wrote since the list was taken stays.
    pub async fn catch_up(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let stored = store.revisions().await?;
        let stale: Vec<(String, String)> = {
            let known = self
                .revisions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut listed = std::collections::HashSet::with_capacity(stored.len());
            let mut stale: Vec<(String, String)> = stored
                .iter()
                .filter(|(tenant, id, revision)| {
                    listed.insert(id.as_str());
                    known.get(id) != Some(&(tenant.clone(), *revision))
                })
                .map(|(tenant, id, _)| (tenant.clone(), id.clone()))
                .collect();
            stale.extend(
                known
                    .iter()
                    .filter(|(id, _)| !listed.contains(id.as_str()))
                    .map(|(id, (tenant, _))| (tenant.clone(), id.clone())),
            );
            stale
        };
        for (tenant, id) in &stale {
            self.refresh(store, tenant, id).await?;
        }
        Ok(stale.len())
    }

    fn set(&self, tenant: &str) -> Shared {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            sets.entry(tenant.to_owned()).or_insert_with(|| {
                Arc::new(Mutex::new(TenantRules::new(Arc::clone(&self.runtime))))
            }),
        )
    }

    /// Runs `work` on a tenant's set on a blocking thread.
    async fn with<R: Send + 'static>(
        &self,
        tenant: &str,
        work: impl FnOnce(&mut TenantRules) -> R + Send + 'static,
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
    pub async fn upsert(&self, webhook: &WebhookRecord) {
        let tenant = webhook.tenant_id.as_str();
        self.revisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(webhook.id.clone(), (tenant.to_owned(), webhook.revision));
        let definition = webhook.definition.clone();
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
        self.revisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
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
            Some(webhook) => self.upsert(&webhook).await,
            None => self.remove(tenant, id).await,
        }
        Ok(())
    }

    /// Takes in a batch of events (a JSON array) for `tenant`: one guest
    /// call on one blocking thread checks, matches and explains them all,
    /// unless they would fire more than `max_fired` webhooks together.
    pub async fn ingest(
        &self,
        tenant: &str,
        events: String,
        max_fired: u32,
    ) -> Result<Verdict, Error> {
        let taken = self
            .with(tenant, move |set| set.ingest(&events, max_fired))
            .await??;
        let intake = match taken {
            Taken::Intake(intake) => intake,
            Taken::TooMany(fired) => return Ok(Verdict::TooMany(fired)),
        };
        let intake: Intake<'_> = serde_json::from_str(&intake)
            .map_err(|e| Error::Trap(format!("the engine's intake is not its shape: {e}")))?;
        if !intake.valid {
            return Ok(Verdict::Refused(
                intake.events.into_iter().map(|e| e.errors).collect(),
            ));
        }
        let admitted = intake.events.into_iter().zip(intake.matched);
        let admitted = admitted.map(|(event, matched)| AdmittedEvent {
            payload: event
                .payload
                .map(|p| p.get().to_owned())
                .unwrap_or_default(),
            matches: matched
                .into_iter()
                .map(|fired| Match {
                    webhook_id: fired.webhook_id,
                    explanation: fired.explanation.get().to_owned(),
                })
                .collect(),
        });
        Ok(Verdict::Admitted(admitted.collect()))
    }
}

/// The engine's `inbox_rules::Intake` as the host reads it: payloads and
/// explanations stay the engine's JSON text, stored as they are.
#[derive(Deserialize)]
struct Intake<'a> {
    valid: bool,
    #[serde(borrow)]
    events: Vec<Admission<'a>>,
    #[serde(borrow)]
    matched: Vec<Vec<Fired<'a>>>,
}

#[derive(Deserialize)]
struct Admission<'a> {
    errors: Vec<Value>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fired<'a> {
    webhook_id: String,
    #[serde(borrow)]
    explanation: &'a RawValue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Budget;
    use crate::store::{Quota, SqliteStore, now};

    const QUOTA: Quota = Quota {
        webhooks: 100,
        pattern_weight: 1_000,
    };

    fn record(id: &str, revision: i64, events: &[&str]) -> WebhookRecord {
        let definition = serde_json::json!({"id": id, "name": "n", "url": "https://x.example/h",
                                            "events": events, "enabled": true});
        WebhookRecord {
            id: id.to_owned(),
            tenant_id: "a".to_owned(),
            definition: definition.to_string(),
            enabled: true,
            revision,
            created_at: now(),
            updated_at: now(),
            disabled_reason: None,
            client_tls: None,
            pattern_weight: Some(0),
            paused_until: None,
        }
    }

    /// The webhooks a ticket creation fires.
    async fn fired(matcher: &Matcher) -> Vec<String> {
        let event =
            r#"[{"event":"TicketCreated","ticketId":"ebcb7b53-6636-4c6b-8023-4a61d6df694c"}]"#;
        match matcher.ingest("a", event.to_owned(), 100).await {
            Ok(Verdict::Admitted(events)) => events[0]
                .matches
                .iter()
                .map(|m| m.webhook_id.clone())
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    /// What another process writes, unheard of: a check by revision finds
    /// a new webhook, a changed one and a deleted one.
    #[tokio::test]
    async fn catching_up_follows_writes_made_behind_the_matchers_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = SqliteStore::open(&url).await.expect("open");
        store.create_tenant("a", "A").await.expect("tenant");
        store
            .create_webhook(&record("wh_1", 1, &["TicketCreated"]), "s", QUOTA)
            .await
            .expect("create");
        let runtime =
            Runtime::new(Budget::default(), Runtime::default_cache_dir()).expect("runtime");
        let matcher = Matcher::load(runtime, &store).await.expect("load");
        assert_eq!(fired(&matcher).await, ["wh_1"]);
        assert_eq!(matcher.catch_up(&store).await.expect("check"), 0);

        store
            .create_webhook(&record("wh_2", 1, &["TicketCreated"]), "s", QUOTA)
            .await
            .expect("create");
        assert!(
            store
                .update_webhook(&record("wh_1", 2, &["TicketFromUserReply"]), QUOTA)
                .await
                .expect("update")
        );
        assert_eq!(fired(&matcher).await, ["wh_1"], "not heard of yet");
        assert_eq!(matcher.catch_up(&store).await.expect("check"), 2);
        assert_eq!(fired(&matcher).await, ["wh_2"]);

        assert!(store.delete_webhook("a", "wh_2").await.expect("delete"));
        assert_eq!(matcher.catch_up(&store).await.expect("check"), 1);
        assert!(fired(&matcher).await.is_empty());
    }
}
