//! Test deliveries: a sample event of a chosen type, sent to one webhook
//! now. The engine says what a delivery of the event carries; the delivery
//! is stored and logged like any other, sent once by the dispatcher's
//! sender, and not retried. (Should the process die before the attempt is
//! recorded, the delivery's lease runs out and the dispatcher sends it as
//! it sends any delivery.)

use std::sync::Arc;

use serde_json::Value;

use crate::delivery::Dispatcher;
use crate::rules::{self, Op, Pool};
use crate::store::{Claimed, NewDelivery, NewEvent, Store, StoreError, now};
use crate::webhooks::{WebhookError, Webhooks};

/// The event type sent when none is chosen.
pub const DEFAULT_EVENT: &str = "TicketCreated";

/// Why a test delivery was not sent; `api/` turns it into an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The webhook could not be read (it does not exist, say).
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The chosen event type does not exist: the engine's diagnostics.
    #[error("there is no event `{kind}` to test with")]
    NoSuchEvent {
        /// The type asked for.
        kind: String,
        /// The engine's errors about the sample event (a JSON list).
        errors: Value,
    },
    /// The engine gave no answer.
    #[error(transparent)]
    Engine(#[from] rules::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine's answer was not its shape: a bug.
    #[error("{0}")]
    Internal(String),
}

/// A test delivery that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Whether the receiver accepted it (a 2xx in time).
    pub delivered: bool,
    /// The delivery's id (`msg_…`), to read it with its attempt.
    pub delivery_id: String,
}

/// The test-delivery service.
#[derive(Debug)]
pub struct TestDeliveries {
    store: Arc<dyn Store>,
    engine: Arc<Pool>,
    webhooks: Arc<Webhooks>,
    dispatcher: Arc<Dispatcher>,
}

impl TestDeliveries {
    /// The service over the store, the engine, the webhooks and the
    /// dispatcher that sends.
    pub fn new(
        store: Arc<dyn Store>,
        engine: Arc<Pool>,
        webhooks: Arc<Webhooks>,
        dispatcher: Arc<Dispatcher>,
    ) -> Self {
        Self {
            store,
            engine,
            webhooks,
            dispatcher,
        }
    }

    /// Sends the tenant's webhook a sample event of type `kind` (by
    /// default [`DEFAULT_EVENT`]) now, once.
    pub async fn send(
        &self,
        tenant: &str,
        webhook_id: &str,
        kind: Option<String>,
    ) -> Result<Sent, TestError> {
        let webhook = self.webhooks.get(tenant, webhook_id).await?;
        let kind = kind.unwrap_or_else(|| DEFAULT_EVENT.to_owned());
        let event = serde_json::json!({
            "event": kind,
            "ticketId": uuid(),
            "messageId": uuid(),
            "ticket": {"subject": "Test event from Inbox Tickets Webhooks"},
        });
        // The engine says what a delivery of this event carries.
        let input = format!("[{event}]");
        let answer = self
            .engine
            .run_for(tenant, move |s| s.call(Op::Events, &input))
            .await?;
        let admission: Vec<Value> =
            serde_json::from_str(&answer).map_err(|e| TestError::Internal(e.to_string()))?;
        let Some(payload) = admission.first().and_then(|a| a.get("payload")) else {
            let errors = admission.first().and_then(|a| a.get("errors")).cloned();
            return Err(TestError::NoSuchEvent {
                kind,
                errors: errors.unwrap_or_default(),
            });
        };
        let at = now();
        let delivery = NewDelivery {
            id: format!("msg_{}", ulid::Ulid::new()),
            webhook_id: webhook.id.clone(),
            event_type: kind,
            ticket_id: event["ticketId"].as_str().unwrap_or_default().to_owned(),
            payload: payload.to_string(),
            explanation: r#"{"test":true}"#.to_owned(),
            // Sent by this request, under a lease as a claim would hold
            // it: should the process die before the attempt is recorded,
            // the lease runs out and the dispatcher sends it like any
            // other delivery, so it is never left pending for good.
            due: None,
            lease_until: Some(at + self.dispatcher.lease_millis()),
        };
        let mut claimed = Claimed {
            id: delivery.id.clone(),
            tenant_id: webhook.tenant_id.clone(),
            webhook_id: webhook.id.clone(),
            url: serde_json::from_str::<Value>(&webhook.definition)
                .ok()
                .and_then(|d| d.get("url").and_then(Value::as_str).map(str::to_owned)),
            enabled: true,
            secrets: self.store.signing_secrets(&webhook.id, now()).await?,
            client_tls: webhook.client_tls.clone(),
            payload: delivery.payload.clone(),
            attempts: 0,
            lease: String::new(),
            // A test is sent at once, whatever the webhook's rate limit.
            not_before: None,
        };
        let stored = NewEvent {
            id: format!("evt_{}", ulid::Ulid::new()),
            idempotency_key: None,
            body: event.to_string(),
            event_type: delivery.event_type.clone(),
            test: true,
            deliveries: vec![delivery],
        };
        let ingested = self.store.ingest(tenant, vec![stored], at).await?;
        // Its lease, unless an earlier delivery of its ticket waits (then
        // it was stored unleased, and is sent now all the same).
        if let Some(leased) = ingested
            .iter()
            .flat_map(|i| &i.leased)
            .find(|l| l.id == claimed.id)
        {
            claimed.lease.clone_from(&leased.lease);
        }
        let outcome = self.dispatcher.send_once(&claimed).await?;
        Ok(Sent {
            delivered: outcome.succeeded(),
            delivery_id: claimed.id,
        })
    }
}

/// A random (version 4) UUID for sample events.
fn uuid() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
