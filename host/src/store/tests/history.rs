//! The conformance suite's tests of a tenant's history: what a backtest
//! and a replay read, what a replay and a recover write, the delivery
//! log's filters and its bounded walk, and the attempts a health chart
//! counts.

use super::{Backend, claim_all, claim_ids, event, open_again, succeed, with_webhook};
use crate::store::{
    EventPlace, Health, HistoryQuery, LOG_SCAN, LogFilter, Millis, NewDelivery, NewEvent, Next,
    Replayed, Store, now,
};

/// An ingested event of `event_type` with a body of about `size` bytes,
/// and no delivery.
fn plain(id: &str, event_type: &str, size: usize) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        idempotency_key: None,
        body: format!(r#"{{"event":"{event_type}","pad":"{}"}}"#, "x".repeat(size)),
        event_type: event_type.to_owned(),
        test: false,
        deliveries: Vec::new(),
    }
}

/// Every event of the tenant's history, newest first.
fn everything(types: &[&str]) -> HistoryQuery {
    HistoryQuery {
        types: types.iter().map(|t| (*t).to_owned()).collect(),
        since: 0,
        until: Millis::MAX,
        after: None,
        newest_first: true,
        limit: 100,
        max_bytes: u64::MAX,
    }
}

async fn read(store: &dyn Store, tenant: &str, query: &HistoryQuery) -> Vec<String> {
    store
        .history(tenant, query)
        .await
        .expect("history")
        .into_iter()
        .map(|e| e.place.id)
        .collect()
}

async fn history_is_a_tenants_ingested_events_by_type_in_time_order(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    store.create_tenant("b", "B").await.expect("tenant b");
    let at = 1_000_000;
    for (id, event_type, offset) in [
        ("evt_1", "TicketCreated", 0),
        ("evt_2", "TicketStatusChanged", 1_000),
        ("evt_3", "TicketCreated", 2_000),
    ] {
        store
            .ingest("a", vec![plain(id, event_type, 10)], at + offset)
            .await
            .expect("ingest");
    }
    let test = NewEvent {
        test: true,
        ..plain("evt_test", "TicketCreated", 10)
    };
    store
        .ingest("a", vec![test], at + 2_500)
        .await
        .expect("test");
    store
        .ingest("b", vec![plain("evt_b", "TicketCreated", 10)], at + 1_500)
        .await
        .expect("b's");

    let store = store.as_ref();
    let created = everything(&["TicketCreated"]);
    assert_eq!(
        read(store, "a", &created).await,
        ["evt_3", "evt_1"],
        "of its types, newest first; not another tenant's, nor a test event"
    );
    let both = everything(&["TicketCreated", "TicketStatusChanged"]);
    assert_eq!(read(store, "a", &both).await, ["evt_3", "evt_2", "evt_1"]);
    let oldest_first = HistoryQuery {
        newest_first: false,
        ..both.clone()
    };
    assert_eq!(
        read(store, "a", &oldest_first).await,
        ["evt_1", "evt_2", "evt_3"]
    );
    let two = HistoryQuery {
        limit: 2,
        ..oldest_first.clone()
    };
    assert_eq!(read(store, "a", &two).await, ["evt_1", "evt_2"]);
    let after = HistoryQuery {
        after: Some(EventPlace {
            received_at: at + 1_000,
            id: "evt_2".to_owned(),
        }),
        ..oldest_first.clone()
    };
    assert_eq!(read(store, "a", &after).await, ["evt_3"]);
    let window = HistoryQuery {
        since: at + 1_000,
        until: at + 2_000,
        ..both.clone()
    };
    assert_eq!(
        read(store, "a", &window).await,
        ["evt_2"],
        "since is in the window, until is not"
    );
    let bodies = store.history("a", &both).await.expect("history");
    assert!(bodies[0].body.contains("TicketCreated"));
    let small = HistoryQuery {
        max_bytes: u64::try_from(bodies[0].body.len() + 10).unwrap_or(0),
        ..both.clone()
    };
    assert_eq!(
        read(store, "a", &small).await,
        ["evt_3"],
        "no more bytes than allowed"
    );
    let none = HistoryQuery {
        max_bytes: 0,
        ..both
    };
    assert_eq!(
        read(store, "a", &none).await,
        ["evt_3"],
        "the first event whatever its size"
    );
}

/// A replay's delivery of `event_id` to `wh_1` for `ticket`.
fn replayed(event_id: &str, message: &str, ticket: &str) -> Replayed {
    Replayed {
        event_id: event_id.to_owned(),
        delivery: NewDelivery {
            id: message.to_owned(),
            webhook_id: "wh_1".to_owned(),
            event_type: "TicketCreated".to_owned(),
            ticket_id: ticket.to_owned(),
            payload: format!(r#"{{"msg":"{message}"}}"#),
            explanation: "{}".to_owned(),
            due: None,
            lease_until: None,
        },
    }
}

async fn a_replay_stores_each_events_delivery_once_in_its_tickets_queue(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    store.create_tenant("b", "B").await.expect("tenant b");
    let at = now();
    let mut events: Vec<NewEvent> = ["evt_1", "evt_2"]
        .iter()
        .map(|id| plain(id, "TicketCreated", 1))
        .collect();
    // evt_3 matched wh_1 when it came in.
    events.push(event("evt_3", None, &[("msg_3", "wh_1", "t2")]));
    store.ingest("a", events, at).await.expect("ingest");
    store
        .ingest("b", vec![plain("evt_b", "TicketCreated", 1)], at)
        .await
        .expect("b's");

    let replay = || {
        vec![
            replayed("evt_1", "msg_r1", "t1"),
            replayed("evt_2", "msg_r2", "t1"),
            replayed("evt_3", "msg_r3", "t2"),
            replayed("evt_b", "msg_rb", "t3"),
        ]
    };
    let created = store
        .replay("a", "wh_1", replay(), at)
        .await
        .expect("replay");
    assert_eq!(
        created, 2,
        "evt_3 has its delivery already; evt_b is another tenant's"
    );
    let again: Vec<Replayed> = replay()
        .into_iter()
        .map(|r| Replayed {
            delivery: NewDelivery {
                id: format!("{}_again", r.delivery.id),
                ..r.delivery
            },
            ..r
        })
        .collect();
    assert_eq!(
        store.replay("a", "wh_1", again, at).await.expect("again"),
        0
    );
    assert!(store.delivery("b", "msg_rb").await.expect("get").is_none());
    let ids: Vec<String> = ["evt_1", "evt_2", "evt_3", "evt_b", "evt_x"]
        .iter()
        .map(|id| (*id).to_owned())
        .collect();
    let mut delivered: Vec<String> = store
        .delivered("wh_1", &ids)
        .await
        .expect("delivered")
        .into_iter()
        .collect();
    delivered.sort();
    assert_eq!(delivered, ["evt_1", "evt_2", "evt_3"]);

    // t1's queue: msg_r1 first, msg_r2 behind it; msg_3 heads t2's.
    let claimed = claim_all(store.as_ref(), at, at + 1_000).await;
    let ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["msg_3", "msg_r1"]);
    let first = claimed.iter().find(|c| c.id == "msg_r1").expect("msg_r1");
    assert_eq!(first.payload, r#"{"msg":"msg_r1"}"#);
    succeed(store.as_ref(), first).await;
    assert_eq!(claim_ids(store.as_ref(), at, at + 1_000).await, ["msg_r2"]);
}

/// Sends `delivery` and records that it failed for good.
async fn fail(store: &dyn Store, delivery: &crate::store::Claimed) {
    store
        .finish(
            &delivery.id,
            &delivery.lease,
            None,
            Next::Failed,
            Health::Unchanged,
            None,
        )
        .await
        .expect("finish");
}

async fn a_recover_sends_failed_deliveries_again_oldest_first(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let at = now();
    let events = vec![
        event("evt_1", None, &[("msg_1", "wh_1", "t1")]),
        event("evt_2", None, &[("msg_2", "wh_1", "t1")]),
        event("evt_3", None, &[("msg_3", "wh_1", "t2")]),
    ];
    store.ingest("a", events, at).await.expect("ingest");
    let store = store.as_ref();
    for claimed in claim_all(store, at, at + 1_000).await {
        match claimed.id.as_str() {
            "msg_1" => fail(store, &claimed).await,
            _ => succeed(store, &claimed).await,
        }
    }
    let next = claim_all(store, at, at + 1_000).await;
    assert_eq!(next.len(), 1);
    fail(store, &next[0]).await;
    assert!(claim_all(store, at, at + 1_000).await.is_empty());

    assert_eq!(
        store.failed_since("a", "wh_1", 0, 1).await.expect("count"),
        (1, true)
    );
    assert_eq!(
        store.failed_since("a", "wh_1", 0, 10).await.expect("count"),
        (2, false)
    );
    assert_eq!(
        store.failed_since("b", "wh_1", 0, 10).await.expect("count"),
        (0, false)
    );
    assert_eq!(
        store.recover("b", "wh_1", 0, 10, at).await.expect("b"),
        (0, false),
        "not another tenant's"
    );
    assert_eq!(
        store
            .recover("a", "wh_1", now() + 60_000, 10, at)
            .await
            .expect("later"),
        (0, false),
        "none failed since then"
    );
    assert_eq!(
        store.recover("a", "wh_1", 0, 1, at).await.expect("one"),
        (1, true)
    );
    assert_eq!(
        store.recover("a", "wh_1", 0, 10, at).await.expect("rest"),
        (1, false)
    );
    let (record, _) = store
        .delivery("a", "msg_1")
        .await
        .expect("get")
        .expect("msg_1");
    assert_eq!(record.state, "pending");
    // Each ticket's queue keeps its order: msg_2 waits behind msg_1.
    let again = claim_all(store, at, at + 1_000).await;
    assert_eq!(
        again.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["msg_1"]
    );
    assert_eq!(again[0].payload, r#"{"msg":"msg_1"}"#);
    succeed(store, &again[0]).await;
    assert_eq!(claim_ids(store, at, at + 1_000).await, ["msg_2"]);
}

async fn log(
    store: &dyn Store,
    filter: &LogFilter,
    before: Option<i64>,
    limit: u32,
) -> (Vec<String>, Option<i64>) {
    let page = store
        .delivery_log("a", filter, before, limit)
        .await
        .expect("log");
    (
        page.deliveries.into_iter().map(|d| d.id).collect(),
        page.before,
    )
}

async fn the_delivery_log_filters_newest_first(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let mut other = super::record("a", "wh_2");
    other.definition = r#"{"id":"wh_2","url":"https://y.example/h"}"#.to_owned();
    store
        .create_webhook(&other, "whsec_y", super::QUOTA)
        .await
        .expect("wh_2");
    store.create_tenant("b", "B").await.expect("tenant b");
    let at = now();
    let events = vec![
        event(
            "evt_1",
            None,
            &[("msg_1", "wh_1", "t1"), ("msg_2", "wh_2", "t1")],
        ),
        event("evt_2", None, &[("msg_3", "wh_1", "t2")]),
    ];
    store.ingest("a", events, at).await.expect("ingest");
    store
        .ingest(
            "b",
            vec![event("evt_b", None, &[("msg_b", "wh_b", "t1")])],
            at,
        )
        .await
        .expect("b's");
    let claimed = claim_all(store.as_ref(), at, at + 1_000).await;
    let first = claimed.iter().find(|c| c.id == "msg_1").expect("msg_1");
    let attempt = crate::store::Attempt {
        started_at: at,
        duration_ms: 42,
        status: Some(200),
        response: None,
        error_kind: None,
        error: None,
    };
    store
        .finish(
            &first.id,
            &first.lease,
            Some(&attempt),
            Next::Succeeded,
            Health::Healthy,
            None,
        )
        .await
        .expect("finish");

    let store = store.as_ref();
    let all = LogFilter::default();
    assert_eq!(
        log(store, &all, None, 10).await,
        (vec!["msg_3".into(), "msg_2".into(), "msg_1".into()], None)
    );
    let ticket = LogFilter {
        ticket_id: Some("t1".to_owned()),
        ..LogFilter::default()
    };
    assert_eq!(
        log(store, &ticket, None, 10).await.0,
        ["msg_2", "msg_1"],
        "not b's"
    );
    let webhook = LogFilter {
        webhook_id: Some("wh_1".to_owned()),
        ..LogFilter::default()
    };
    assert_eq!(log(store, &webhook, None, 10).await.0, ["msg_3", "msg_1"]);
    let succeeded = LogFilter {
        state: Some("succeeded".to_owned()),
        ..LogFilter::default()
    };
    assert_eq!(log(store, &succeeded, None, 10).await.0, ["msg_1"]);
    let both = LogFilter {
        ticket_id: Some("t1".to_owned()),
        webhook_id: Some("wh_2".to_owned()),
        ..LogFilter::default()
    };
    assert_eq!(log(store, &both, None, 10).await.0, ["msg_2"]);
    let other_type = LogFilter {
        event_type: Some("TicketStatusChanged".to_owned()),
        ..LogFilter::default()
    };
    assert!(log(store, &other_type, None, 10).await.0.is_empty());
    let later = LogFilter {
        since: Some(at + 1),
        ..LogFilter::default()
    };
    assert!(log(store, &later, None, 10).await.0.is_empty());

    let (page, before) = log(store, &all, None, 2).await;
    assert_eq!(page, ["msg_3", "msg_2"]);
    assert_eq!(
        log(store, &all, before, 2).await,
        (vec!["msg_1".into()], None)
    );

    let page = store
        .delivery_log("a", &succeeded, None, 1)
        .await
        .expect("log");
    let shown = &page.deliveries[0];
    assert_eq!(
        (shown.last_status, shown.last_duration_ms),
        (Some(200), Some(42))
    );
    assert_eq!(shown.ticket_id, "t1");
    assert!(
        shown.explanation.is_empty(),
        "a page leaves explanations out"
    );
}

async fn a_log_page_walks_a_bounded_number_of_deliveries(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let at = now();
    // The oldest delivery is the only one of its type, behind more than a
    // walk examines.
    let mut events = vec![event("evt_0", None, &[("msg_0", "wh_1", "t")])];
    events[0].deliveries[0].event_type = "TicketStatusChanged".to_owned();
    for n in 1..=LOG_SCAN {
        events.push(event(
            &format!("evt_{n}"),
            None,
            &[(&format!("msg_{n}"), "wh_1", "t")],
        ));
    }
    store.ingest("a", events, at).await.expect("ingest");
    let filter = LogFilter {
        event_type: Some("TicketStatusChanged".to_owned()),
        ..LogFilter::default()
    };
    let (page, before) = log(store.as_ref(), &filter, None, 10).await;
    assert!(page.is_empty(), "none in the first walk");
    let before = before.expect("where the walk stopped");
    let (page, after) = log(store.as_ref(), &filter, Some(before), 10).await;
    assert_eq!((page, after), (vec!["msg_0".to_owned()], None));
}

async fn attempts_record_their_webhook_and_outcome(backend: Backend) {
    let (db, store) = with_webhook(backend).await;
    let at = now();
    store
        .ingest(
            "a",
            vec![event("evt_1", None, &[("msg_1", "wh_1", "t")])],
            at,
        )
        .await
        .expect("ingest");
    let attempt = |started_at: Millis, status: Option<u16>| crate::store::Attempt {
        started_at,
        duration_ms: 5,
        status,
        response: None,
        error_kind: status.is_none().then(|| "timeout".to_owned()),
        error: None,
    };
    let claimed = claim_all(store.as_ref(), at, at + 1_000).await;
    store
        .finish(
            "msg_1",
            &claimed[0].lease,
            Some(&attempt(at, None)),
            Next::RetryAt(at),
            Health::Unchanged,
            None,
        )
        .await
        .expect("retrying");
    let claimed = claim_all(store.as_ref(), at, at + 1_000).await;
    store
        .finish(
            "msg_1",
            &claimed[0].lease,
            Some(&attempt(at + 10, Some(204))),
            Next::Succeeded,
            Health::Healthy,
            None,
        )
        .await
        .expect("succeeded");
    let store = open_again(&db).await;
    let points = store
        .attempt_points("wh_1", at, at + 11, 10)
        .await
        .expect("points");
    let outcomes: Vec<(Millis, &str)> = points
        .iter()
        .map(|p| (p.started_at, p.outcome.as_str()))
        .collect();
    assert_eq!(outcomes, [(at, "retrying"), (at + 10, "succeeded")]);
    assert!(
        store
            .attempt_points("wh_2", at, at + 11, 10)
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        store
            .attempt_points("wh_1", at, at + 11, 1)
            .await
            .expect("one")
            .len(),
        1
    );
    assert!(
        store
            .attempt_points("wh_1", at + 11, at + 20, 10)
            .await
            .expect("later")
            .is_empty()
    );
}

/// A database of the version before history: its events and attempts
/// gain what history reads (types, test events, webhooks, outcomes).
async fn an_upgrade_fills_in_the_history_of_earlier_versions(backend: Backend) {
    let (db, store) = with_webhook(backend).await;
    let at = now();
    let created = plain("evt_1", "TicketCreated", 1);
    let test = NewEvent {
        test: true,
        ..event("evt_test", None, &[("msg_test", "wh_1", "t")])
    };
    store
        .ingest("a", vec![created, test], at)
        .await
        .expect("ingest");
    let claimed = claim_all(store.as_ref(), at, at + 1_000).await;
    let attempt = crate::store::Attempt {
        started_at: at,
        duration_ms: 5,
        status: Some(500),
        response: None,
        error_kind: Some("status".to_owned()),
        error: None,
    };
    store
        .finish(
            &claimed[0].id,
            &claimed[0].lease,
            Some(&attempt),
            Next::RetryAt(at),
            Health::Unchanged,
            None,
        )
        .await
        .expect("finish");
    store.close().await;
    // The schema as it was, with the test delivery's explanation as that
    // version stored it.
    let version = match backend {
        Backend::Sqlite => 9,
        Backend::Postgres => 3,
    };
    for sql in [
        "UPDATE deliveries SET explanation = '{\"test\":true}' WHERE id = 'msg_test'",
        "DROP INDEX events_history",
        "DROP INDEX deliveries_by_event_webhook",
        "DROP INDEX deliveries_by_tenant",
        "DROP INDEX deliveries_by_tenant_ticket",
        "DROP INDEX deliveries_failed",
        "DROP INDEX attempts_by_webhook",
        "ALTER TABLE events DROP COLUMN event_type",
        "ALTER TABLE events DROP COLUMN test",
        "ALTER TABLE attempts DROP COLUMN webhook_id",
        "ALTER TABLE attempts DROP COLUMN outcome",
        "ALTER TABLE webhooks DROP COLUMN rate_limit",
        "ALTER TABLE webhooks DROP COLUMN next_send_at",
        "CREATE INDEX deliveries_by_event ON deliveries (event_id)",
        &format!("DELETE FROM _sqlx_migrations WHERE version = {version}"),
    ] {
        db.execute(sql).await;
    }
    let store = open_again(&db).await;
    assert_eq!(
        read(store.as_ref(), "a", &everything(&["TicketCreated"])).await,
        ["evt_1"],
        "typed from its body; the test event left out"
    );
    let points = store
        .attempt_points("wh_1", at, at + 1, 10)
        .await
        .expect("points");
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].outcome, "retrying", "read from its status");
}

async fn claims_pace_a_rate_limited_webhook_across_processes(backend: Backend) {
    let (db, first) = with_webhook(backend).await;
    let mut paced = super::record("a", "wh_1");
    paced.revision = 2;
    paced.definition = r#"{"id":"wh_1","url":"https://x.example/h","rateLimit":2}"#.to_owned();
    assert!(
        first
            .update_webhook(&paced, super::QUOTA)
            .await
            .expect("update")
    );
    let second = open_again(&db).await;
    let at = now();
    let mut events = vec![
        event("evt_1", None, &[("msg_1", "wh_1", "t1")]),
        event("evt_2", None, &[("msg_2", "wh_1", "t1")]),
        event("evt_3", None, &[("msg_3", "wh_1", "t2")]),
        event("evt_4", None, &[("msg_4", "wh_1", "t3")]),
    ];
    for delivery in events.iter_mut().flat_map(|e| &mut e.deliveries) {
        delivery.lease_until = Some(at + 1_000);
    }
    let ingested = first.ingest("a", events, at).await.expect("ingest");
    assert!(
        ingested.iter().all(|i| i.leased.is_empty()),
        "a paced webhook's deliveries are leased by claims alone"
    );

    // Two a second: the slots within a second of now, half a second apart.
    let slots = |claimed: &[crate::store::Claimed]| -> Vec<(String, Option<Millis>)> {
        claimed
            .iter()
            .map(|c| (c.id.clone(), c.not_before))
            .collect()
    };
    let claimed = claim_all(first.as_ref(), at, at + 5_000).await;
    assert_eq!(
        slots(&claimed),
        [
            ("msg_1".to_owned(), Some(at)),
            ("msg_3".to_owned(), Some(at + 500))
        ]
    );
    assert!(
        claim_all(second.as_ref(), at, at + 5_000).await.is_empty(),
        "another process finds the slots taken"
    );
    let first_one = &claimed[0];
    let handed =
        super::finish_chained(first.as_ref(), first_one, Next::Succeeded, at + 5_000).await;
    assert!(handed.is_empty(), "nothing is handed on past the pace");
    let later = claim_all(second.as_ref(), at + 600, at + 5_000).await;
    assert_eq!(
        slots(&later),
        [
            ("msg_2".to_owned(), Some(at + 1_000)),
            ("msg_4".to_owned(), Some(at + 1_500))
        ]
    );
}

conformance!(
    history_is_a_tenants_ingested_events_by_type_in_time_order,
    a_replay_stores_each_events_delivery_once_in_its_tickets_queue,
    a_recover_sends_failed_deliveries_again_oldest_first,
    the_delivery_log_filters_newest_first,
    a_log_page_walks_a_bounded_number_of_deliveries,
    attempts_record_their_webhook_and_outcome,
    an_upgrade_fills_in_the_history_of_earlier_versions,
    claims_pace_a_rate_limited_webhook_across_processes,
);
