//! The dispatcher's bookkeeping of deliveries claimed ahead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::{AHEAD_FOR, Dispatcher, Run, admission, lock};
use crate::api::AppState;
use crate::config::Config;
use crate::store::{Claimed, NewDelivery, NewEvent, Room, now};

async fn state(dir: &tempfile::TempDir) -> AppState {
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    crate::server::state(&config).await.expect("state")
}

/// Two deliveries to `wh_x` (which need not exist), leased for a minute.
async fn claimed(state: &AppState) -> Vec<Claimed> {
    state.store.create_tenant("a", "A").await.expect("tenant");
    let delivery = |id: &str, ticket: &str| NewDelivery {
        id: id.to_owned(),
        webhook_id: "wh_x".to_owned(),
        event_type: "TicketCreated".to_owned(),
        ticket_id: ticket.to_owned(),
        payload: "{}".to_owned(),
        explanation: "{}".to_owned(),
        due: None,
        lease_until: None,
    };
    let event = |id: &str, delivery: NewDelivery| NewEvent {
        id: id.to_owned(),
        idempotency_key: None,
        body: "{}".to_owned(),
        event_type: "TicketCreated".to_owned(),
        test: false,
        deliveries: vec![delivery],
    };
    let events = vec![
        event("evt_1", delivery("msg_1", "t1")),
        event("evt_2", delivery("msg_2", "t2")),
    ];
    let at = now();
    state.store.ingest("a", events, at).await.expect("ingest");
    let claimed = state
        .store
        .claim(at, at + 60_000, 10, &Room::new(10))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    claimed
}

/// What can be claimed once the dispatcher's background work (the leases
/// it gives back) is done.
async fn claimable_once_given_back(state: &AppState) -> Vec<Claimed> {
    state.dispatcher.recording.close();
    state.dispatcher.recording.wait().await;
    let at = now();
    state
        .store
        .claim(at, at + 60_000, 10, &Room::new(10))
        .await
        .expect("claim")
}

/// Queues each delivery, leased at its instant, as a run of its own.
fn queue(dispatcher: &Dispatcher, deliveries: Vec<(Claimed, Instant)>) {
    lock(&dispatcher.ahead)
        .entry("wh_x".to_owned())
        .or_default()
        .extend(deliveries.into_iter().map(|(delivery, leased)| Run {
            leased,
            ..Run::one(delivery)
        }));
}

#[tokio::test]
async fn a_delivery_claimed_ahead_too_long_ago_is_given_back_not_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state(&dir).await;
    let dispatcher = &state.dispatcher;
    let mut rows = claimed(&state).await.into_iter();
    let (stale, fresh) = (rows.next().expect("one"), rows.next().expect("two"));
    let long_ago = Instant::now()
        .checked_sub(AHEAD_FOR + Duration::from_secs(1))
        .expect("the clock has run that long");
    queue(dispatcher, vec![(stale, long_ago), (fresh, Instant::now())]);

    let mut slot = Some(
        Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("permit"),
    );
    let next = dispatcher
        .next_ahead("wh_x", &mut slot)
        .expect("the fresh one");
    let next: Vec<&str> = next.deliveries.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(next, ["msg_2"]);
    assert!(slot.is_some(), "the worker goes on with its slot");

    // The stale one's lease was given back: it can be claimed again now,
    // while the fresh one stays leased to the worker.
    let again = claimable_once_given_back(&state).await;
    let ids: Vec<_> = again.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["msg_1"]);

    assert!(dispatcher.next_ahead("wh_x", &mut slot).is_none());
    assert!(
        slot.is_none(),
        "with nothing left, the worker gives its slot back"
    );
    assert!(lock(&dispatcher.ahead).is_empty());
}

#[tokio::test]
async fn an_open_breaker_or_a_stop_gives_back_everything_claimed_ahead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state(&dir).await;
    let dispatcher = &state.dispatcher;
    let rows = claimed(&state).await;
    queue(
        dispatcher,
        rows.into_iter().map(|c| (c, Instant::now())).collect(),
    );
    dispatcher
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut slot = Some(
        Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("permit"),
    );
    assert!(dispatcher.next_ahead("wh_x", &mut slot).is_none());
    assert!(slot.is_none());
    let again = claimable_once_given_back(&state).await;
    assert_eq!(again.len(), 2, "both leases were given back");
}

#[tokio::test]
async fn room_counts_free_slots_and_claims_ahead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state(&dir).await;
    let dispatcher = &state.dispatcher;
    let concurrency = u32::try_from(dispatcher.settings.webhook_concurrency).expect("small");
    let slots = dispatcher.webhook_slot("wh_x");
    let _busy = Arc::clone(&slots)
        .try_acquire_many_owned(3)
        .expect("permits");
    let rows = claimed(&state).await;
    queue(
        dispatcher,
        rows.into_iter().map(|c| (c, Instant::now())).collect(),
    );
    let room = dispatcher.room(Instant::now());
    let full = (1 + admission::AHEAD) * concurrency;
    assert_eq!(room.of("wh_x"), full - 3 - 2, "3 slots taken, 2 queued");
    assert_eq!(room.of("wh_other"), full);
    let _idle = dispatcher.webhook_slot("wh_idle");
    let room = dispatcher.room(Instant::now());
    assert!(
        !room.webhooks.contains_key("wh_idle"),
        "a webhook with every slot free has the default room, and is not listed"
    );
    assert_eq!(room.of("wh_idle"), full);
}

#[tokio::test]
async fn slots_no_one_holds_are_forgotten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state(&dir).await;
    let dispatcher = &state.dispatcher;
    let held = dispatcher
        .webhook_slot("wh_busy")
        .try_acquire_owned()
        .expect("permit");
    let tenant = dispatcher
        .tenant_slot("a")
        .try_acquire_owned()
        .expect("permit");
    for n in 0..100 {
        dispatcher.webhook_slot(&format!("wh_gone_{n}"));
        dispatcher.tenant_slot(&format!("tenant_{n}"));
    }
    dispatcher.room(Instant::now());
    let webhooks: Vec<String> = lock(&dispatcher.webhook_slots).keys().cloned().collect();
    let tenants: Vec<String> = lock(&dispatcher.tenant_slots).keys().cloned().collect();
    assert_eq!(
        (webhooks, tenants),
        (vec!["wh_busy".to_owned()], vec!["a".to_owned()])
    );
    drop((held, tenant));
    dispatcher.room(Instant::now());
    assert!(lock(&dispatcher.webhook_slots).is_empty());
    assert!(lock(&dispatcher.tenant_slots).is_empty());
}

#[tokio::test]
async fn ingest_takes_room_only_while_the_claim_loop_runs_and_gives_it_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state(&dir).await;
    let dispatcher = &state.dispatcher;
    let at = now();
    let mut reservation = dispatcher.reserve("a");
    assert_eq!(reservation.take("wh_x", at), None, "no claim loop yet");

    dispatcher
        .running
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let concurrency = u32::try_from(dispatcher.settings.webhook_concurrency).expect("small");
    let lease = at + dispatcher.lease_millis();
    let full = (1 + admission::AHEAD) * concurrency;
    let tenant = u32::try_from(dispatcher.settings.tenant_concurrency).expect("small");
    assert!(
        tenant < full,
        "the tenant's slots are the tighter bound here"
    );
    for _ in 0..tenant {
        assert_eq!(reservation.take("wh_x", at), Some(lease));
    }
    assert_eq!(
        reservation.take("wh_x", at),
        None,
        "every slot of the tenant is promised"
    );
    let room = dispatcher.room(Instant::now());
    assert_eq!(
        room.of("wh_x"),
        full - tenant,
        "claims leave promised room alone"
    );
    let mut other = dispatcher.reserve("a");
    assert_eq!(other.take("wh_y", at), None, "nor any other webhook of it");
    let mut other = dispatcher.reserve("b");
    assert_eq!(other.take("wh_z", at), Some(lease), "another tenant");
    drop(other);

    drop(reservation);
    assert!(lock(&dispatcher.admission).is_empty());
    let room = dispatcher.room(Instant::now());
    assert_eq!(room.of("wh_x"), full);
    let mut again = dispatcher.reserve("a");
    assert_eq!(
        again.take("wh_x", at),
        None,
        "the one refused waits for a claim: nothing overtakes it"
    );
    lock(&dispatcher.admission).claimed(&room, &std::collections::HashMap::new(), false);
    assert_eq!(
        again.take("wh_x", at),
        Some(lease),
        "a claim found none left"
    );

    dispatcher
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(again.take("wh_x", at), None, "nothing once stopping");
}

/// Ingest stores a delivery its webhook has room for already leased and
/// hands it straight to a worker: here no claim loop runs (the dispatcher
/// is only marked as running), yet the delivery gets its attempt (refused:
/// the target is on loopback, which these settings do not allow).
#[tokio::test]
async fn ingest_hands_a_delivery_straight_to_a_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state(&dir).await;
    state.store.create_tenant("a", "A").await.expect("tenant");
    let webhook = serde_json::json!({
        "name": "n", "url": "http://127.0.0.1:9/hook", "events": ["TicketCreated"],
    });
    let serde_json::Value::Object(webhook) = webhook else {
        unreachable!("an object")
    };
    let (written, _secret) = state.webhooks.create("a", webhook).await.expect("webhook");
    state
        .dispatcher
        .running
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let event = serde_json::json!({
        "event": "TicketCreated", "ticketId": "00000000-0000-4000-8000-000000000001",
        "ticket": {"channel": "email"},
    });
    let accepted = state
        .ingestor
        .ingest("a", event, None)
        .await
        .expect("accepted");
    assert_eq!(accepted.deliveries, 1);

    let filter = crate::store::LogFilter {
        webhook_id: Some(written.record.id.clone()),
        ..Default::default()
    };
    let listed = state
        .store
        .delivery_log("a", &filter, None, 10)
        .await
        .expect("deliveries");
    let id = listed.deliveries.first().expect("the delivery").id.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, attempts) = state
            .store
            .delivery("a", &id)
            .await
            .expect("read")
            .expect("stored");
        if let Some(attempt) = attempts.first() {
            assert_eq!(attempt.error_kind.as_deref(), Some("refused_target"));
            break;
        }
        assert!(Instant::now() < deadline, "no attempt within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
