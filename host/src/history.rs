//! What a webhook did and would do with the tenant's history: a draft
//! rule tried on stored events (backtest), the events of a window sent to
//! a webhook that missed them (replay), failed deliveries sent again
//! (recover), and the attempts a health chart counts.
//!
//! The engine decides every match, with the `backtest` operation that the
//! panel and the npm package run too; this module reads the history,
//! hands it to the engine in bounded batches, and stores what it answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::delivery::Dispatcher;
use crate::rules::{self, Op, Pool};
use crate::store::{
    AttemptPoint, EventPlace, HistoryQuery, Millis, NewDelivery, Replayed, Store, StoreError,
    StoredEvent, now,
};
use crate::webhooks::{WebhookError, Webhooks};

/// The most events one backtest scans.
pub const MAX_BACKTEST_EVENTS: u32 = 10_000;
/// The events a backtest scans when the request does not say.
pub const DEFAULT_BACKTEST_EVENTS: u32 = 1_000;
/// How many matches a backtest shows, each explained.
pub const BACKTEST_SAMPLES: u32 = 20;
/// The most events one replay request scans; a longer window is replayed
/// by calling again from where the answer says it stopped.
pub const MAX_REPLAY_EVENTS: u32 = 10_000;
/// The most failed deliveries one recover request sends again.
pub const MAX_RECOVER: u32 = 10_000;
/// The most bytes of stored events one engine call is handed: what bounds
/// the memory of a backtest over large events.
const BATCH_BYTES: u64 = 16 << 20;
/// Events per engine call, in a backtest and a replay: the engine holds a
/// call's events decoded at once, and a thousand stay well inside the
/// memory an instance keeps between calls (a larger call would have it
/// thrown away and a fresh one grown again).
const BATCH: usize = 1_000;

/// Why a history request failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The webhook (draft or stored) is invalid, or missing.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The engine gave no answer.
    #[error(transparent)]
    Engine(#[from] rules::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A replay of a disabled webhook, which would only cancel what it
    /// created.
    #[error("the webhook is disabled: enable it before replaying events to it")]
    Disabled,
    /// The engine's answer could not be read: a bug.
    #[error("the engine's answer could not be read: {0}")]
    Internal(String),
}

/// A time window of stored events: received at or after `since`, before
/// `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Its start.
    pub since: Millis,
    /// Its end.
    pub until: Millis,
}

/// What a draft would have done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backtested {
    /// Events looked at, newest first.
    pub scanned: u32,
    /// How many of them it fires for.
    pub matched: u32,
    /// The matches by event type.
    pub by_event: BTreeMap<String, u32>,
    /// The first matches (the newest), each with the engine's explanation.
    pub samples: Vec<Sample>,
    /// The oldest and the newest event scanned, when any was.
    pub span: Option<(Millis, Millis)>,
}

/// A stored event the draft fires for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// `evt_…`.
    pub event_id: String,
    /// When it happened: its `occurredAt`, or when it was received.
    pub occurred_at: Option<String>,
    /// When it was received.
    pub received_at: Millis,
    /// Its ticket.
    pub ticket_id: String,
    /// The engine's explanation (JSON).
    pub explanation: String,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Events looked at.
    pub scanned: u32,
    /// How many of them the webhook fires for now.
    pub matched: u32,
    /// Deliveries created: the matches that had none yet.
    pub created: u64,
    /// Where to go on from, when the window held more than one request
    /// scans.
    pub next: Option<EventPlace>,
}

/// One bucket of a health chart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Where it starts.
    pub start: Millis,
    /// Attempts after which the delivery had succeeded.
    pub succeeded: u32,
    /// Attempts after which it failed for good.
    pub failed: u32,
    /// Attempts that failed and left it to a retry.
    pub retrying: u32,
    /// Attempts that found the webhook gone or disabled.
    pub cancelled: u32,
    /// The attempts' duration, median and 95th percentile (nearest rank),
    /// when there were any.
    pub latency: Option<(i64, i64)>,
}

/// The most attempts one health chart reads: past it, the chart covers
/// the window's first attempts and says it is not complete.
pub const MAX_CHART_ATTEMPTS: u32 = 200_000;

/// Counts `points` (oldest first) into buckets of `bucket` milliseconds
/// that cover `window`, the last one ending at the window's end.
pub fn chart(points: &[AttemptPoint], window: Window, bucket: Millis) -> Vec<Bucket> {
    let bucket = bucket.max(1);
    let span = (window.until - window.since).max(0);
    let count = usize::try_from((span + bucket - 1) / bucket).unwrap_or(0);
    let first = window.until - bucket * i64::try_from(count).unwrap_or(0);
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start: first + bucket * i64::try_from(i).unwrap_or(0),
            ..Bucket::default()
        })
        .collect();
    let mut durations: Vec<Vec<i64>> = vec![Vec::new(); count];
    for point in points {
        let Ok(i) = usize::try_from((point.started_at - first).div_euclid(bucket)) else {
            continue;
        };
        let Some(b) = buckets.get_mut(i) else {
            continue;
        };
        match point.outcome.as_str() {
            "succeeded" => b.succeeded += 1,
            "failed" => b.failed += 1,
            "cancelled" => b.cancelled += 1,
            _ => b.retrying += 1,
        }
        durations[i].push(point.duration_ms);
    }
    for (b, mut d) in buckets.iter_mut().zip(durations) {
        if d.is_empty() {
            continue;
        }
        d.sort_unstable();
        let rank = |p: usize| d[(d.len() * p).div_ceil(100).clamp(1, d.len()) - 1];
        b.latency = Some((rank(50), rank(95)));
    }
    buckets
}

/// The engine's `backtest` answer, its explanations and payloads kept as
/// the engine wrote them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    scanned: u32,
    matched: u32,
    by_event: BTreeMap<String, u32>,
    #[serde(borrow)]
    samples: Vec<AnswerMatch<'a>>,
}

#[derive(Debug, Deserialize)]
struct AnswerMatch<'a> {
    index: usize,
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(borrow)]
    explanation: &'a RawValue,
}

/// The history service.
#[derive(Debug)]
pub struct History {
    store: Arc<dyn Store>,
    engine: Arc<Pool>,
    webhooks: Arc<Webhooks>,
    dispatcher: Arc<Dispatcher>,
}

impl History {
    /// The service over these parts.
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

    /// Runs a draft (a create's body, never stored) over the tenant's
    /// newest `limit` events of its types in `window`.
    pub async fn backtest(
        &self,
        tenant: &str,
        draft: Map<String, Value>,
        window: Window,
        limit: u32,
    ) -> Result<Backtested, HistoryError> {
        let definition = self.webhooks.draft(tenant, draft).await?;
        let query = HistoryQuery {
            types: event_types(&definition)?,
            since: window.since,
            until: window.until,
            after: None,
            newest_first: true,
            limit,
            max_bytes: BATCH_BYTES,
        };
        let events = self.store.history(tenant, &query).await?;
        let mut done = Backtested {
            scanned: 0,
            matched: 0,
            by_event: BTreeMap::new(),
            samples: Vec::new(),
            span: events
                .last()
                .zip(events.first())
                .map(|(oldest, newest)| (oldest.place.received_at, newest.place.received_at)),
        };
        // One engine call a batch; the answers add up (the first matches
        // are the samples, in the events' order).
        for batch in events.chunks(BATCH) {
            let wanted = BACKTEST_SAMPLES.saturating_sub(done.samples.len() as u32);
            let answer = self.run(tenant, &definition, batch, wanted).await?;
            let answer: Answer<'_> = read(&answer)?;
            done.scanned += answer.scanned;
            done.matched += answer.matched;
            for (event, n) in answer.by_event {
                *done.by_event.entry(event).or_default() += n;
            }
            done.samples.extend(answer.samples.iter().filter_map(|m| {
                let event = batch.get(m.index)?;
                let body: Value = serde_json::from_str(&event.body).ok()?;
                let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
                Some(Sample {
                    event_id: event.place.id.clone(),
                    occurred_at: text("occurredAt"),
                    received_at: event.place.received_at,
                    ticket_id: text("ticketId").unwrap_or_default(),
                    explanation: m.explanation.get().to_owned(),
                })
            }));
        }
        Ok(done)
    }

    /// Gives the webhook a delivery for each stored event of `window` it
    /// fires for now and has none for yet, oldest first, scanning at most
    /// [`MAX_REPLAY_EVENTS`] from `after` (or the window's start).
    ///
    /// A dry run stores nothing: `created` is then how many it would.
    pub async fn replay(
        &self,
        tenant: &str,
        webhook_id: &str,
        window: Window,
        after: Option<EventPlace>,
        dry_run: bool,
    ) -> Result<Replay, HistoryError> {
        let webhook = self.webhooks.get(tenant, webhook_id).await?;
        if !webhook.enabled {
            return Err(HistoryError::Disabled);
        }
        let types = event_types(&webhook.definition)?;
        let mut replay = Replay {
            scanned: 0,
            matched: 0,
            created: 0,
            next: after,
        };
        while replay.scanned < MAX_REPLAY_EVENTS {
            let query = HistoryQuery {
                types: types.clone(),
                since: window.since,
                until: window.until,
                after: replay.next.clone(),
                newest_first: false,
                limit: (BATCH as u32).min(MAX_REPLAY_EVENTS - replay.scanned),
                max_bytes: BATCH_BYTES,
            };
            let events = self.store.history(tenant, &query).await?;
            let Some(last) = events.last() else {
                replay.next = None;
                break;
            };
            replay.next = Some(last.place.clone());
            let samples = u32::try_from(events.len()).unwrap_or(u32::MAX);
            let answer = self
                .run(tenant, &webhook.definition, &events, samples)
                .await?;
            let answer: Answer<'_> = read(&answer)?;
            replay.scanned += answer.scanned;
            replay.matched += answer.matched;
            let deliveries: Vec<Replayed> = answer
                .samples
                .iter()
                .filter_map(|m| {
                    let event = events.get(m.index)?;
                    let payload: Value = serde_json::from_str(m.payload.get()).ok()?;
                    let field = |key: &str| payload.get(key)?.as_str().map(str::to_owned);
                    Some(Replayed {
                        event_id: event.place.id.clone(),
                        delivery: NewDelivery {
                            id: format!("msg_{}", ulid::Ulid::new()),
                            webhook_id: webhook.id.clone(),
                            event_type: field("event")?,
                            ticket_id: field("ticketId")?,
                            payload: m.payload.get().to_owned(),
                            explanation: m.explanation.get().to_owned(),
                            due: None,
                            lease_until: None,
                        },
                    })
                })
                .collect();
            replay.created += match dry_run {
                false => {
                    self.store
                        .replay(tenant, &webhook.id, deliveries, now())
                        .await?
                }
                true => {
                    let ids: Vec<String> = deliveries.iter().map(|r| r.event_id.clone()).collect();
                    let delivered = self.store.delivered(&webhook.id, &ids).await?;
                    ids.iter().filter(|id| !delivered.contains(*id)).count() as u64
                }
            };
        }
        if replay.scanned < MAX_REPLAY_EVENTS {
            replay.next = None;
        }
        if replay.created > 0 && !dry_run {
            self.dispatcher.wake();
        }
        Ok(replay)
    }

    /// Sends the webhook's deliveries that failed for good since `since`
    /// again, oldest first, at most [`MAX_RECOVER`]; how many, and whether
    /// more remain (call again).
    ///
    /// A dry run sends nothing: how many it would, and whether more.
    pub async fn recover(
        &self,
        tenant: &str,
        webhook_id: &str,
        since: Millis,
        dry_run: bool,
    ) -> Result<(u64, bool), HistoryError> {
        let webhook = self.webhooks.get(tenant, webhook_id).await?;
        if dry_run {
            return Ok(self
                .store
                .failed_since(tenant, &webhook.id, since, MAX_RECOVER)
                .await?);
        }
        let recovered = self
            .store
            .recover(tenant, &webhook.id, since, MAX_RECOVER, now())
            .await?;
        if recovered.0 > 0 {
            self.dispatcher.wake();
        }
        Ok(recovered)
    }

    /// The webhook's attempts in `window`, at most `limit`.
    pub async fn attempts(
        &self,
        tenant: &str,
        webhook_id: &str,
        window: Window,
        limit: u32,
    ) -> Result<Vec<AttemptPoint>, HistoryError> {
        let webhook = self.webhooks.get(tenant, webhook_id).await?;
        Ok(self
            .store
            .attempt_points(&webhook.id, window.since, window.until, limit)
            .await?)
    }

    /// The engine's `backtest` of `definition` over `events`, explaining
    /// the first `samples` matches.
    async fn run(
        &self,
        tenant: &str,
        definition: &str,
        events: &[StoredEvent],
        samples: u32,
    ) -> Result<String, HistoryError> {
        let mut input = String::with_capacity(
            definition.len() + events.iter().map(|e| e.body.len() + 1).sum::<usize>() + 64,
        );
        input.push_str(r#"{"webhook":"#);
        input.push_str(definition);
        input.push_str(r#","events":["#);
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                input.push(',');
            }
            input.push_str(&event.body);
        }
        input.push_str(&format!(r#"],"samples":{samples}}}"#));
        Ok(self
            .engine
            .run_for(tenant, move |s| s.call(Op::Backtest, &input))
            .await?)
    }
}

/// The event types a stored definition listens to.
fn event_types(definition: &str) -> Result<Vec<String>, HistoryError> {
    let webhook: inbox_rules::Webhook =
        serde_json::from_str(definition).map_err(|e| HistoryError::Internal(e.to_string()))?;
    Ok(webhook.events)
}

/// The engine's backtest answer; a report here means the definition the
/// engine validated a moment ago is now refused, which is a bug.
fn read(answer: &str) -> Result<Answer<'_>, HistoryError> {
    serde_json::from_str(answer).map_err(|e| HistoryError::Internal(format!("{e}: {answer:.200}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(started_at: Millis, duration_ms: i64, outcome: &str) -> AttemptPoint {
        AttemptPoint {
            started_at,
            duration_ms,
            outcome: outcome.to_owned(),
        }
    }

    #[test]
    fn a_chart_counts_each_attempt_in_its_bucket_with_its_latency() {
        // Three buckets of 10 ending at 100: [70, 80), [80, 90), [90, 100).
        let window = Window {
            since: 70,
            until: 100,
        };
        let points = [
            point(69, 1, "succeeded"), // before the window
            point(70, 10, "succeeded"),
            point(75, 30, "retrying"),
            point(79, 20, "failed"),
            point(95, 7, "cancelled"),
            point(100, 1, "succeeded"), // at its end: outside
        ];
        let buckets = chart(&points, window, 10);
        assert_eq!(
            buckets.iter().map(|b| b.start).collect::<Vec<_>>(),
            [70, 80, 90]
        );
        let first = &buckets[0];
        assert_eq!(
            (
                first.succeeded,
                first.retrying,
                first.failed,
                first.cancelled
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(first.latency, Some((20, 30)));
        assert_eq!(
            buckets[1],
            Bucket {
                start: 80,
                ..Bucket::default()
            }
        );
        assert_eq!(
            (buckets[2].cancelled, buckets[2].latency),
            (1, Some((7, 7)))
        );
    }

    #[test]
    fn a_chart_percentile_is_the_nearest_rank() {
        let window = Window {
            since: 0,
            until: 10,
        };
        let points: Vec<_> = (1..=100).map(|d| point(5, d, "succeeded")).collect();
        assert_eq!(chart(&points, window, 10)[0].latency, Some((50, 95)));
    }

    #[test]
    fn an_answer_keeps_the_engines_bytes() {
        let text = r#"{"scanned":2,"matched":1,"byEvent":{"TicketCreated":1},"refused":0,
            "samples":[{"index":1,"payload":{"event":"TicketCreated","ticketId":"t"},
            "explanation":{"fires":true}}]}"#;
        let answer = read(text).expect("an answer");
        assert_eq!(answer.samples[0].index, 1);
        assert_eq!(
            answer.samples[0].payload.get(),
            r#"{"event":"TicketCreated","ticketId":"t"}"#
        );
        let report = r#"{"valid":false,"errors":[],"warnings":[]}"#;
        assert!(matches!(read(report), Err(HistoryError::Internal(_))));
    }
}
