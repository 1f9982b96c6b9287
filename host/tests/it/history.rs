//! A webhook and the tenant's history, end to end: backtests of drafts
//! over stored events, replays and recovers delivered to a receiver on
//! 127.0.0.1, the delivery log's filters and details, and the health
//! chart.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Keys, Receiver, Reply, TestServer, webhook};
use crate::delivery::{hook, ingest, server_with, until, verify};
use crate::ingest::{matching_event, other_event};

const PATIENCE: Duration = Duration::from_secs(15);
const LONG_AGO: &str = "2000-01-01T00:00:00Z";

/// `event` on ticket `n`.
fn on_ticket(mut event: Value, n: u32) -> Value {
    event["ticketId"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
    event
}

/// Three events `webhook()` fires for (tickets 1 to 3), two it does not
/// (tickets 4 and 5), and one of a type it does not listen to.
fn history() -> Value {
    let mut events: Vec<Value> = (1..=3).map(|n| on_ticket(matching_event(), n)).collect();
    events.extend((4..=5).map(|n| on_ticket(other_event(), n)));
    let mut status = on_ticket(matching_event(), 6);
    status["event"] = json!("TicketStatusChanged");
    events.push(status);
    Value::Array(events)
}

async fn backtest(server: &TestServer, keys: &Keys, query: &str, draft: &Value) -> (u16, Value) {
    server
        .call(
            Method::POST,
            &format!("/v1/webhooks/backtest{query}"),
            &keys.admin,
            Some(draft),
        )
        .await
}

#[tokio::test]
async fn a_backtest_counts_what_a_draft_would_have_fired_for() {
    let server = TestServer::start().await;
    let acme = server.tenant("Acme").await;
    let other = server.tenant("Other").await;
    ingest(&server, &acme, history()).await;
    ingest(&server, &other, json!([matching_event()])).await;

    let (status, answer) = backtest(&server, &acme, "", &webhook()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["scanned"], 5, "Acme's events of the draft's types");
    assert_eq!(answer["matched"], 3);
    assert_eq!(answer["byEvent"], json!({"TicketCreated": 3}));
    let samples = answer["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 3);
    let tickets: Vec<&str> = samples
        .iter()
        .map(|s| s["ticketId"].as_str().expect("ticketId"))
        .collect();
    assert_eq!(
        tickets,
        [
            "00000000-0000-4000-8000-000000000003",
            "00000000-0000-4000-8000-000000000002",
            "00000000-0000-4000-8000-000000000001",
        ],
        "newest first"
    );
    let sample = &samples[0];
    assert!(sample["eventId"].as_str().expect("id").starts_with("evt_"));
    assert!(sample["occurredAt"].as_str().expect("time").ends_with('Z'));
    assert_eq!(sample["explanation"]["fires"], true);
    assert_eq!(
        sample["explanation"]["conditions"][0]["actual"],
        "Refund please"
    );
    assert!(answer["from"].is_string() && answer["to"].is_string());

    // The count follows the rule.
    let mut stricter = webhook();
    stricter["expression"] = json!("1 and 2");
    let (_, answer) = backtest(&server, &acme, "", &stricter).await;
    assert_eq!(
        (answer["scanned"].clone(), answer["matched"].clone()),
        (json!(5), json!(0))
    );
    let mut wider = webhook();
    wider["events"] = json!(["TicketCreated", "TicketStatusChanged"]);
    let (_, answer) = backtest(&server, &acme, "", &wider).await;
    assert_eq!(answer["matched"], 4);
    assert_eq!(
        answer["byEvent"],
        json!({"TicketCreated": 3, "TicketStatusChanged": 1})
    );
    // The newest two are the two it does not fire for.
    let (_, answer) = backtest(&server, &acme, "?limit=2", &webhook()).await;
    assert_eq!(
        (answer["scanned"].clone(), answer["matched"].clone()),
        (json!(2), json!(0))
    );
    let (_, answer) = backtest(&server, &acme, "?limit=3", &webhook()).await;
    assert_eq!(answer["matched"], 1);
    let (_, answer) = backtest(&server, &acme, "?until=2001-01-01T00:00:00Z", &webhook()).await;
    assert_eq!(answer["scanned"], 0, "nothing was received before then");
    assert!(answer["from"].is_null());

    // Another tenant's history is its own.
    let (_, answer) = backtest(&server, &other, "", &webhook()).await;
    assert_eq!(
        (answer["scanned"].clone(), answer["matched"].clone()),
        (json!(1), json!(1))
    );

    // A draft is never stored.
    let (_, list) = server
        .call(Method::GET, "/v1/webhooks", &acme.admin, None)
        .await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn a_backtest_refuses_an_invalid_draft_or_window() {
    let server = TestServer::start().await;
    let acme = server.tenant("Acme").await;
    let mut invalid = webhook();
    invalid["expression"] = json!("1 and");
    let (status, answer) = backtest(&server, &acme, "", &invalid).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "invalid_webhook");
    assert_eq!(answer["diagnostics"][0]["path"], "expression");

    for (query, code) in [
        ("?limit=0", "invalid_query"),
        ("?limit=10001", "invalid_query"),
        ("?since=yesterday", "invalid_time"),
        (
            "?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "invalid_window",
        ),
        ("?limits=5", "invalid_query"),
    ] {
        let (status, answer) = backtest(&server, &acme, query, &webhook()).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["error"], code, "{query}");
        assert!(!answer["message"].as_str().expect("message").is_empty());
    }
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/webhooks/backtest",
            "not-a-key",
            Some(&webhook()),
        )
        .await;
    assert_eq!(status, 401);
}

async fn replay(server: &TestServer, keys: &Keys, id: &str, body: &Value) -> (u16, Value) {
    server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/replay"),
            &keys.admin,
            Some(body),
        )
        .await
}

#[tokio::test]
async fn a_replay_creates_exactly_the_missing_deliveries() {
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let acme = server.tenant("Acme").await;
    // History from before the webhook existed: three events it fires for.
    ingest(&server, &acme, history()).await;
    let (id, secret) = hook(&server, &acme, &receiver.url("/hooks")).await;
    // One more, delivered live.
    ingest(&server, &acme, json!([on_ticket(matching_event(), 7)])).await;
    receiver.wait_for(1, PATIENCE).await;

    // A dry run says what a replay would create, and creates nothing.
    let (status, dry) = replay(
        &server,
        &acme,
        &id,
        &json!({"since": LONG_AGO, "dryRun": true}),
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        dry,
        json!({"scanned": 6, "matched": 4, "created": 3, "next": null})
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);

    let (status, answer) = replay(&server, &acme, &id, &json!({"since": LONG_AGO})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"scanned": 6, "matched": 4, "created": 3, "next": null})
    );
    let got = receiver.wait_for(4, PATIENCE).await;
    for received in &got {
        verify(&secret, received);
    }
    let mut ids: Vec<&str> = got
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().expect("id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "one delivery per event");
    assert!(
        got.iter().any(|r| r.body
            == r#"{"event":"TicketCreated","ticketId":"00000000-0000-4000-8000-000000000001"}"#),
        "the contract's body"
    );

    // However often it is called.
    let (_, again) = replay(&server, &acme, &id, &json!({"since": LONG_AGO})).await;
    assert_eq!(again["created"], 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 4);

    // A window before anything happened replays nothing.
    let (_, none) = replay(
        &server,
        &acme,
        &id,
        &json!({"since": LONG_AGO, "until": "2001-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(none["scanned"], 0);

    let (status, answer) = replay(
        &server,
        &acme,
        &id,
        &json!({"since": LONG_AGO, "cursor": "x"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (400, json!("invalid_cursor"))
    );
    let (status, _) = replay(&server, &acme, &id, &json!({"until": LONG_AGO})).await;
    assert_eq!(status, 422, "since is required");
    let other = server.tenant("Other").await;
    let (status, _) = replay(&server, &other, &id, &json!({"since": LONG_AGO})).await;
    assert_eq!(status, 404, "another tenant's webhook");
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/disable"),
            &acme.admin,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = replay(&server, &acme, &id, &json!({"since": LONG_AGO})).await;
    assert_eq!(
        (status, answer["error"].clone()),
        (409, json!("webhook_disabled"))
    );
}

#[tokio::test]
async fn a_recover_sends_a_failed_delivery_again() {
    // Three attempts fail (the first and two retries), then the receiver
    // is back.
    let receiver = Receiver::start(vec![Reply::Status(500, Vec::new()); 3], Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let acme = server.tenant("Acme").await;
    let (id, secret) = hook(&server, &acme, &receiver.url("/hooks")).await;
    ingest(&server, &acme, json!([matching_event()])).await;
    let failed = until(
        &server,
        &acme.admin,
        &format!("/v1/deliveries?webhookId={id}&state=failed"),
        |page| page["data"].as_array().is_some_and(|d| d.len() == 1),
    )
    .await;
    let message = failed["data"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(receiver.received().len(), 3);

    let recover = |body: Value| {
        let path = format!("/v1/webhooks/{id}/recover");
        let server = &server;
        let key = acme.admin.clone();
        async move { server.call(Method::POST, &path, &key, Some(&body)).await }
    };
    let (status, answer) = recover(json!({"since": "2999-01-01T00:00:00Z"})).await;
    assert_eq!(
        (status, answer),
        (200, json!({"recovered": 0, "more": false}))
    );
    let (status, answer) = recover(json!({"since": LONG_AGO, "dryRun": true})).await;
    assert_eq!(
        (status, answer),
        (200, json!({"recovered": 1, "more": false}))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3, "a dry run sends nothing");
    let (status, answer) = recover(json!({"since": LONG_AGO})).await;
    assert_eq!(
        (status, answer),
        (200, json!({"recovered": 1, "more": false}))
    );
    let got = receiver.wait_for(4, PATIENCE).await;
    assert_eq!(
        got[3].headers["webhook-id"],
        message.as_str(),
        "the same message"
    );
    assert_eq!(got[3].body, got[0].body, "the same body");
    verify(&secret, &got[3]);
    until(
        &server,
        &acme.admin,
        &format!("/v1/deliveries/{message}"),
        |d| d["state"] == "succeeded",
    )
    .await;
    let (_, answer) = recover(json!({"since": LONG_AGO})).await;
    assert_eq!(answer["recovered"], 0, "nothing failed any more");
    let other = server.tenant("Other").await;
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/recover"),
            &other.admin,
            Some(&json!({"since": LONG_AGO})),
        )
        .await;
    assert_eq!(status, 404, "another tenant's webhook");
    let (status, answer) = recover(json!({"since": "soon"})).await;
    assert_eq!(
        (status, answer["error"].clone()),
        (400, json!("invalid_time"))
    );
}

#[tokio::test]
async fn the_delivery_log_filters_and_shows_what_was_sent() {
    let receiver = Receiver::start(vec![Reply::Status(503, Vec::new())], Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let acme = server.tenant("Acme").await;
    let (id, _) = hook(&server, &acme, &receiver.url("/hooks")).await;
    ingest(
        &server,
        &acme,
        json!([
            on_ticket(matching_event(), 1),
            on_ticket(matching_event(), 2)
        ]),
    )
    .await;
    let got = receiver.wait_for(3, PATIENCE).await;
    let all = until(&server, &acme.admin, "/v1/deliveries", |page| {
        page["data"]
            .as_array()
            .is_some_and(|d| d.len() == 2 && d.iter().all(|d| d["state"] == "succeeded"))
    })
    .await;
    let row = &all["data"][0];
    for field in [
        "createdAt",
        "eventType",
        "ticketId",
        "state",
        "attempts",
        "lastStatus",
        "lastDurationMs",
    ] {
        assert!(!row[field].is_null(), "{field}: {row}");
    }
    assert_eq!(row["lastStatus"], 200);
    assert_eq!(all["nextCursor"], Value::Null);

    let ticket = "00000000-0000-4000-8000-000000000002";
    let (_, page) = server
        .call(
            Method::GET,
            &format!("/v1/deliveries?ticketId={ticket}"),
            &acme.admin,
            None,
        )
        .await;
    let rows = page["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["ticketId"], ticket);
    for (query, expected) in [
        (format!("webhookId={id}"), 2),
        ("state=succeeded".to_owned(), 2),
        ("state=pending".to_owned(), 0),
        ("event=TicketCreated".to_owned(), 2),
        ("event=TicketAgentReply".to_owned(), 0),
        ("until=2001-01-01T00:00:00Z".to_owned(), 0),
        ("limit=1".to_owned(), 1),
    ] {
        let (status, page) = server
            .call(
                Method::GET,
                &format!("/v1/deliveries?{query}"),
                &acme.admin,
                None,
            )
            .await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(
            page["data"].as_array().map(Vec::len),
            Some(expected),
            "{query}"
        );
    }
    for query in [
        "state=done",
        "event=Nope",
        "since=today",
        "limit=101",
        "cursor=x",
        "colour=red",
    ] {
        let (status, answer) = server
            .call(
                Method::GET,
                &format!("/v1/deliveries?{query}"),
                &acme.admin,
                None,
            )
            .await;
        assert_eq!(status, 400, "{query}: {answer}");
    }
    let other = server.tenant("Other").await;
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/v1/deliveries?webhookId={id}"),
            &other.admin,
            None,
        )
        .await;
    assert_eq!(status, 404, "another tenant's webhook");
    let (_, theirs) = server
        .call(Method::GET, "/v1/deliveries", &other.admin, None)
        .await;
    assert_eq!(theirs["data"], json!([]), "not another tenant's deliveries");

    // The detail: the headers each attempt was sent with, the signature
    // elided, as the receiver got them.
    let retried = all["data"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|d| d["attempts"] == 2)
        .expect("the delivery that was retried");
    let message = retried["id"].as_str().expect("id");
    let (_, detail) = server
        .call(
            Method::GET,
            &format!("/v1/deliveries/{message}"),
            &acme.admin,
            None,
        )
        .await;
    let attempts = detail["attemptsLog"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status"], 503);
    let sent: Vec<_> = got
        .iter()
        .filter(|r| r.headers["webhook-id"] == message)
        .collect();
    assert_eq!(sent.len(), 2);
    for (attempt, received) in attempts.iter().zip(&sent) {
        let headers = &attempt["headers"];
        assert_eq!(headers["webhook-signature"], "(elided)");
        for name in [
            "webhook-id",
            "webhook-timestamp",
            "content-type",
            "user-agent",
        ] {
            assert_eq!(
                headers[name].as_str(),
                received.headers[name].to_str().ok(),
                "{name}"
            );
        }
    }
    assert_eq!(detail["matched"]["fires"], true);
    assert!(detail["payload"].is_object());
}

#[tokio::test]
async fn the_health_chart_counts_attempts_by_outcome() {
    let receiver = Receiver::start(vec![Reply::Status(500, Vec::new())], Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let acme = server.tenant("Acme").await;
    let (id, _) = hook(&server, &acme, &receiver.url("/hooks")).await;
    ingest(
        &server,
        &acme,
        json!([
            on_ticket(matching_event(), 1),
            on_ticket(matching_event(), 2)
        ]),
    )
    .await;
    receiver.wait_for(3, PATIENCE).await;
    let path = format!("/v1/webhooks/{id}/stats?window=1h&bucket=1m");
    let stats = until(&server, &acme.admin, &path, |s| {
        s["buckets"].as_array().is_some_and(|b| {
            b.iter()
                .map(|b| b["succeeded"].as_u64().unwrap_or(0))
                .sum::<u64>()
                == 2
        })
    })
    .await;
    let buckets = stats["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 60);
    assert_eq!(stats["bucketSeconds"], 60);
    assert_eq!(stats["complete"], true);
    let total = |key: &str| {
        buckets
            .iter()
            .map(|b| b[key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        (total("succeeded"), total("retrying"), total("failed")),
        (2, 1, 0)
    );
    let busy: Vec<&Value> = buckets
        .iter()
        .filter(|b| b["succeeded"].as_u64() > Some(0))
        .collect();
    assert!(busy.iter().all(|b| b["latencyP95Ms"].is_number()));
    assert!(
        buckets.iter().any(|b| b["latencyP50Ms"].is_null()),
        "an empty bucket has no latency"
    );

    let (status, stats) = server
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}/stats"),
            &acme.admin,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        stats["buckets"].as_array().map(Vec::len),
        Some(24),
        "24 hours by default"
    );
    for query in [
        "window=8days",
        "bucket=10s",
        "window=1h&bucket=2h",
        "window=7days&bucket=1m",
        "window=soon",
    ] {
        let (status, answer) = server
            .call(
                Method::GET,
                &format!("/v1/webhooks/{id}/stats?{query}"),
                &acme.admin,
                None,
            )
            .await;
        assert_eq!(status, 400, "{query}: {answer}");
    }
    let other = server.tenant("Other").await;
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}/stats"),
            &other.admin,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_rate_limit_paces_a_webhooks_attempts() {
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let acme = server.tenant("Acme").await;
    let mut body = webhook();
    body["url"] = json!(receiver.url("/hooks"));
    body["rateLimit"] = json!(0);
    let (status, answer) = server
        .call(Method::POST, "/v1/webhooks", &acme.admin, Some(&body))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["diagnostics"][0]["path"], "rateLimit");
    body["rateLimit"] = json!(5);
    let id = server.create_webhook(&acme.admin, &body).await;
    let (_, shown) = server
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}"),
            &acme.admin,
            None,
        )
        .await;
    assert_eq!(shown["rateLimit"], 5);

    let events: Vec<Value> = (1..=8).map(|n| on_ticket(matching_event(), n)).collect();
    ingest(&server, &acme, Value::Array(events)).await;
    let got = receiver.wait_for(8, PATIENCE).await;
    let mut at: Vec<_> = got.iter().map(|r| r.at).collect();
    at.sort_unstable();
    // Five a second, 200 ms apart: no 950 ms holds more than five, and
    // eight take at least seven gaps.
    for (i, start) in at.iter().enumerate() {
        let within = at[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_millis(950))
            .count();
        assert!(
            within <= 5,
            "{within} attempts within 950 ms of attempt {i}"
        );
    }
    let span = at[7].duration_since(at[0]);
    assert!(span >= Duration::from_millis(1_300), "eight in {span:?}");
}

#[tokio::test]
async fn a_backtest_over_many_events_adds_up_its_batches() {
    let server = TestServer::start().await;
    let acme = server.tenant("Acme").await;
    // 2,500 events, oldest first; every third one matches.
    for start in (0..2_500).step_by(1_000) {
        let events: Vec<Value> = (start..(start + 1_000).min(2_500))
            .map(|n| {
                let base = if n % 3 == 0 {
                    matching_event()
                } else {
                    other_event()
                };
                on_ticket(base, n)
            })
            .collect();
        ingest(&server, &acme, Value::Array(events)).await;
    }
    let (status, answer) = backtest(&server, &acme, "?limit=2500", &webhook()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["scanned"], 2_500);
    assert_eq!(answer["matched"], 834);
    assert_eq!(answer["byEvent"], json!({"TicketCreated": 834}));
    let tickets: Vec<&str> = answer["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| s["ticketId"].as_str().expect("ticket"))
        .collect();
    let newest: Vec<String> = (0..2_500u32)
        .rev()
        .filter(|n| n % 3 == 0)
        .take(20)
        .map(|n| format!("00000000-0000-4000-8000-{n:012}"))
        .collect();
    assert_eq!(tickets, newest, "the newest 20 matches, newest first");
}
