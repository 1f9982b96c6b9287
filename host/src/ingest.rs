//! Taking events in: check each with the engine, match the batch against
//! the tenant's rule set, and store the events with one delivery per match
//! in one transaction. Only then is the request answered, so an accepted
//! event is never lost (SPEC §6).

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::delivery::Dispatcher;
use crate::matcher::{AdmittedEvent, Matcher, Verdict};
use crate::rules;
use crate::store::{NewDelivery, NewEvent, Store, StoreError, now};

/// The most events one request may carry.
pub const MAX_BATCH: usize = 1_000;

/// Why the ingest service refused or failed a request; `api/` alone turns
/// it into an HTTP answer. Nothing is stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is neither an event nor a non-empty array of events.
    #[error("{0}")]
    NotEvents(&'static str),
    /// More events than one request may carry.
    #[error("a request carries at most {MAX_BATCH} events; this one has {0}")]
    TooMany(usize),
    /// The events would create more deliveries than one request may.
    #[error(
        "this request would create {would_create} deliveries; at most {max} per request (max_deliveries_per_request): send fewer events per request"
    )]
    TooManyDeliveries {
        /// The deliveries the request's events would create.
        would_create: u64,
        /// The most one request may create.
        max: u32,
    },
    /// Some event is invalid: each problem (the engine's diagnostics, and a
    /// `tenantId` that is not the key's), each with the event's `index`.
    #[error("{message}")]
    InvalidEvents {
        /// The first problem, and how many more.
        message: String,
        /// Every problem, as a JSON list.
        problems: Value,
    },
    /// The engine gave no answer.
    #[error(transparent)]
    Engine(#[from] rules::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task that stores the events failed: a bug.
    #[error("storing the events failed: {0}")]
    Internal(String),
}

/// The answer to an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Each event's id, in request order (for a repeated idempotency key,
    /// the id the event got the first time).
    pub event_ids: Vec<String>,
    /// How many deliveries these events caused.
    pub deliveries: i64,
}

/// The ingest service.
#[derive(Debug)]
pub struct Ingestor {
    store: Arc<dyn Store>,
    matcher: Arc<Matcher>,
    dispatcher: Arc<Dispatcher>,
    /// Deliveries one request may create at most.
    max_deliveries: u32,
}

impl Ingestor {
    /// The service over the store and the rule sets (whose engine
    /// instances also check the events). Deliveries the dispatcher has room
    /// for are stored leased and handed to it at once; it is woken for
    /// the others. A request whose events would create more than
    /// `max_deliveries` deliveries is refused whole.
    pub fn new(
        store: Arc<dyn Store>,
        matcher: Arc<Matcher>,
        dispatcher: Arc<Dispatcher>,
        max_deliveries: u32,
    ) -> Self {
        Self {
            store,
            matcher,
            dispatcher,
            max_deliveries,
        }
    }

    /// Takes one event (an object) or a batch (an array) for `tenant`.
    /// `idempotency_key` makes a retried request store nothing twice; an
    /// event's own `id` does the same for that event.
    pub async fn ingest(
        &self,
        tenant: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Receipt, IngestError> {
        let (events, batch) = match body {
            Value::Array(events) => (events, true),
            event @ Value::Object(_) => (vec![event], false),
            _ => {
                return Err(IngestError::NotEvents(
                    "send one event (an object) or an array of events",
                ));
            }
        };
        if events.is_empty() {
            return Err(IngestError::NotEvents("the array has no events"));
        }
        if events.len() > MAX_BATCH {
            return Err(IngestError::TooMany(events.len()));
        }
        let texts: Vec<String> = events.iter().map(Value::to_string).collect();
        let array = format!("[{}]", texts.join(","));
        // Each event's problem with its `tenantId`, reported beside the
        // engine's problems with it.
        let foreign: Vec<Vec<Value>> = events.iter().map(|e| claimed(tenant, e)).collect();
        // The engine explains no match past the quota: a request over it
        // costs its matching alone.
        let admitted = match self
            .matcher
            .ingest(tenant, array, self.max_deliveries)
            .await?
        {
            Verdict::Refused(mut found) => {
                for (problems, claim) in found.iter_mut().zip(foreign) {
                    problems.extend(claim);
                }
                return Err(invalid_events(found, batch));
            }
            _ if foreign.iter().any(|claim| !claim.is_empty()) => {
                return Err(invalid_events(foreign, batch));
            }
            Verdict::TooMany(would_create) => {
                return Err(IngestError::TooManyDeliveries {
                    would_create,
                    max: self.max_deliveries,
                });
            }
            Verdict::Admitted(admitted) => admitted,
        };

        let at = now();
        let mut reservation = self.dispatcher.reserve(tenant);
        let mut stored = Vec::with_capacity(events.len());
        // Event ids rise in the request's order, even within a millisecond:
        // history reads (a backtest, a replay) keep a batch's order.
        let mut ids = ulid::Generator::new();
        for (i, ((event, text), AdmittedEvent { payload, matches })) in
            events.iter().zip(texts).zip(admitted).enumerate()
        {
            let key = match (idempotency_key, event.get("id").and_then(Value::as_str)) {
                (Some(key), _) => Some(format!("request:{key}#{i}")),
                (None, Some(id)) => Some(format!("event:{id}")),
                (None, None) => None,
            };
            let field = |name: &str| {
                event
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            stored.push(NewEvent {
                id: format!(
                    "evt_{}",
                    ids.generate().unwrap_or_else(|_| ulid::Ulid::new())
                ),
                idempotency_key: key,
                body: text,
                event_type: field("event"),
                test: false,
                deliveries: matches
                    .into_iter()
                    .map(|m| NewDelivery {
                        id: format!("msg_{}", ulid::Ulid::new()),
                        lease_until: reservation.take(&m.webhook_id, at),
                        webhook_id: m.webhook_id,
                        event_type: field("event"),
                        ticket_id: field("ticketId"),
                        payload: payload.clone(),
                        explanation: m.explanation,
                        due: None,
                    })
                    .collect(),
            });
        }
        // Once stored, the deliveries leased to this process must reach the
        // dispatcher even if the request is dropped (its client gone), or
        // they would wait for their lease to run out: the write and the
        // hand-over run in a task of their own.
        let (store, dispatcher) = (Arc::clone(&self.store), Arc::clone(&self.dispatcher));
        let owner = tenant.to_owned();
        let stored = tokio::spawn(async move {
            let mut ingested = store.ingest(&owner, stored, at).await?;
            let leased: Vec<_> = ingested
                .iter_mut()
                .flat_map(|i| std::mem::take(&mut i.leased))
                .collect();
            if leased.len() < ingested.iter().map(|i| i.stored).sum() {
                dispatcher.wake();
            }
            reservation.hand_over(leased).await;
            Ok::<_, StoreError>(ingested)
        });
        let ingested = stored
            .await
            .map_err(|e| IngestError::Internal(e.to_string()))??;
        let event_ids: Vec<String> = ingested.iter().map(|i| i.event_id.clone()).collect();
        let deliveries = if ingested.iter().all(|i| i.new) {
            let stored: usize = ingested.iter().map(|i| i.stored).sum();
            i64::try_from(stored).unwrap_or(i64::MAX)
        } else {
            self.store.deliveries_of(&event_ids).await?
        };
        Ok(Receipt {
            event_ids,
            deliveries,
        })
    }
}

/// The problem of an event whose `tenantId` is not the key's tenant.
fn claimed(tenant: &str, event: &Value) -> Vec<Value> {
    match event.get("tenantId") {
        Some(Value::String(claimed)) if claimed != tenant => vec![serde_json::json!({
            "code": "invalid_value",
            "message": format!("this ingest key belongs to tenant `{tenant}`, not `{claimed}`"),
            "path": "tenantId",
        })],
        _ => Vec::new(),
    }
}

/// The refusal of invalid events, from each event's problems: the message
/// names the first problem (with its index in a batch), `diagnostics` lists
/// them all, each with its `index`.
fn invalid_events(per_event: Vec<Vec<Value>>, batch: bool) -> IngestError {
    let mut problems = Vec::new();
    for (i, errors) in per_event.into_iter().enumerate() {
        for mut error in errors {
            if let Value::Object(map) = &mut error {
                map.insert("index".to_owned(), Value::from(i));
            }
            problems.push(error);
        }
    }
    let text = |problem: &Value, key: &str| {
        problem
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let first = problems
        .first()
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let mut message = match batch {
        true => format!("event {}: ", first.get("index").unwrap_or(&Value::Null)),
        false => String::new(),
    };
    let path = text(&first, "path");
    if !path.is_empty() {
        message.push_str(&format!("`{path}`: "));
    }
    message.push_str(&text(&first, "message"));
    if problems.len() > 1 {
        message.push_str(&format!(" (and {} more)", problems.len() - 1));
    }
    IngestError::InvalidEvents {
        message,
        problems: Value::Array(problems),
    }
}
