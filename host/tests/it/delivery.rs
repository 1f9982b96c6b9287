//! Delivery, end to end: the server POSTs to receivers on 127.0.0.1 (so
//! these servers allow private targets, but the one that tests the guard),
//! with a short retry schedule, and every wait is bounded.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Keys, Received, Receiver, Reply, TestServer, webhook};
use crate::ingest::{matching_event, other_event};

const SECOND: Duration = Duration::from_secs(1);
const PATIENCE: Duration = Duration::from_secs(15);

/// A server that delivers to loopback and retries after 300 ms, twice.
pub(crate) async fn server_with(
    change: impl FnOnce(&mut inbox_webhooks::config::Config),
) -> TestServer {
    TestServer::start_with(|config| {
        config.allow_private_targets = true;
        config.retry_schedule = vec![Duration::from_millis(300); 2];
        config.retry_jitter = 0.0;
        config.delivery_timeout = Duration::from_secs(2);
        change(config);
    })
    .await
}

/// A tenant with `webhook()` pointed at `url`: its keys, id and secret.
pub(crate) async fn hooked(server: &TestServer, url: &str) -> (Keys, String, String) {
    let keys = server.tenant("Acme").await;
    let (id, secret) = hook(server, &keys, url).await;
    (keys, id, secret)
}

/// `webhook()` pointed at `url`, for the tenant of `keys`: its id and
/// secret.
pub(crate) async fn hook(server: &TestServer, keys: &Keys, url: &str) -> (String, String) {
    let mut body = webhook();
    body["url"] = json!(url);
    let (status, created) = server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&body))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    (id, secret)
}

pub(crate) async fn ingest(server: &TestServer, keys: &Keys, events: Value) -> Value {
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&events))
        .await;
    assert_eq!(status, 202, "{body}");
    body
}

/// `matching_event()` on `n` tickets, one each: a batch no ticket's order
/// holds back.
fn on_tickets(n: u32) -> Value {
    (0..n)
        .map(|n| {
            let mut event = matching_event();
            event["ticketId"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
            event
        })
        .collect()
}

/// Polls `GET path` until `done` holds (panics after `PATIENCE`).
pub(crate) async fn until(
    server: &TestServer,
    key: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, body) = server.call(Method::GET, path, key, None).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The webhook's newest delivery, once it has failed, with its attempts.
pub(crate) async fn failed_delivery(server: &TestServer, keys: &Keys, webhook: &str) -> Value {
    let page = until(
        server,
        &keys.admin,
        &format!("/v1/webhooks/{webhook}/deliveries"),
        |p| p["data"][0]["state"] == "failed",
    )
    .await;
    let message = page["data"][0]["id"].as_str().expect("id");
    let (_, detail) = server
        .call(
            Method::GET,
            &format!("/v1/deliveries/{message}"),
            &keys.admin,
            None,
        )
        .await;
    detail
}

/// Checks a request with an independent Standard Webhooks implementation.
pub(crate) fn verify(secret: &str, received: &Received) {
    let verifier = standardwebhooks::Webhook::new(secret).expect("secret");
    verifier
        .verify(received.body.as_bytes(), &received.headers)
        .unwrap_or_else(|e| panic!("signature does not verify: {e:?}"));
}

#[tokio::test]
async fn matching_events_arrive_signed_with_the_contracts_body() {
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let (keys, id, secret) = hooked(&server, &receiver.url("/hooks/crm")).await;

    let reply = json!({"event": "TicketFromUserReply",
        "ticketId": "ebcb7b53-6636-4c6b-8023-4a61d6df694c",
        "messageId": "ef0eee2d-5912-4016-bcec-3a173f83e6a1",
        "ticket": {"channel": "email", "subject": "about my refund"}});
    ingest(
        &server,
        &keys,
        json!([matching_event(), other_event(), reply]),
    )
    .await;
    let got = receiver.wait_for(2, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2, "exactly the matching events");

    let mut bodies: Vec<&str> = got.iter().map(|r| r.body.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(
        bodies,
        [
            r#"{"event":"TicketCreated","ticketId":"ebcb7b53-6636-4c6b-8023-4a61d6df694c"}"#,
            r#"{"event":"TicketFromUserReply","ticketId":"ebcb7b53-6636-4c6b-8023-4a61d6df694c","messageId":"ef0eee2d-5912-4016-bcec-3a173f83e6a1"}"#,
        ]
    );
    for request in &got {
        verify(&secret, request);
        assert_eq!(request.headers["content-type"], "application/json");
        assert!(
            request.headers["user-agent"]
                .to_str()
                .expect("ascii")
                .starts_with("inbox-webhooks/")
        );
        assert!(
            request.headers["webhook-id"]
                .to_str()
                .expect("ascii")
                .starts_with("msg_")
        );
        let signatures = request.headers["webhook-signature"]
            .to_str()
            .expect("ascii");
        assert!(
            signatures.starts_with("v1,") && !signatures.contains(' '),
            "{signatures}"
        );
    }

    // During a rotation both secrets sign, and each verifies on its own.
    let (_, rotated) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/secret/rotate"),
            &keys.admin,
            None,
        )
        .await;
    let new_secret = rotated["secret"].as_str().expect("secret");
    ingest(&server, &keys, matching_event()).await;
    let third = receiver.wait_for(3, PATIENCE).await.pop().expect("third");
    let signatures = third.headers["webhook-signature"].to_str().expect("ascii");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    verify(new_secret, &third);
    verify(&secret, &third);

    // The log: every delivery succeeded, and says why it matched.
    let page = until(
        &server,
        &keys.admin,
        &format!("/v1/webhooks/{id}/deliveries"),
        |page| {
            page["data"]
                .as_array()
                .is_some_and(|d| d.len() == 3 && d.iter().all(|d| d["state"] == "succeeded"))
        },
    )
    .await;
    let newest = &page["data"][0];
    assert_eq!(newest["attempts"], 1);
    assert_eq!(newest["payload"]["event"], "TicketCreated");
    assert!(
        newest.get("matched").is_none(),
        "a page leaves explanations out"
    );
    let one = format!("/v1/deliveries/{}", newest["id"].as_str().expect("id"));
    let (_, detail) = server.call(Method::GET, &one, &keys.admin, None).await;
    assert_eq!(detail["matched"]["fires"], true, "{detail}");
}

#[tokio::test]
async fn a_failure_is_retried_under_the_same_id() {
    let receiver = Receiver::start(vec![Reply::Status(500, Vec::new())], Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let (keys, _, secret) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    let got = receiver.wait_for(2, PATIENCE).await;
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    assert_eq!(got[0].body, got[1].body);
    verify(&secret, &got[1]);
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(250),
        "waited {gap:?} for a 300 ms step"
    );

    let id = got[0].headers["webhook-id"].to_str().expect("ascii");
    let detail = until(&server, &keys.admin, &format!("/v1/deliveries/{id}"), |d| {
        d["state"] == "succeeded"
    })
    .await;
    let log = detail["attemptsLog"].as_array().expect("attempts");
    assert_eq!(log.len(), 2, "{detail}");
    assert_eq!(
        (&log[0]["status"], &log[0]["errorKind"]),
        (&json!(500), &json!("status"))
    );
    assert_eq!(log[0]["response"], "receiver says hi");
    assert_eq!(log[1]["status"], 200);
    assert!(log[1]["errorKind"].is_null());

    let metrics = server.metrics().await;
    for line in [
        r#"inbox_deliveries_total{outcome="retrying"} 1"#,
        r#"inbox_deliveries_total{outcome="succeeded"} 1"#,
        "inbox_delivery_attempt_duration_seconds_count 2",
        "inbox_delivery_queue_depth 0",
        "inbox_delivery_oldest_pending_seconds 0.0",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_webhook_failing_without_a_break_is_disabled() {
    let receiver = Receiver::start(Vec::new(), Reply::Status(500, Vec::new())).await;
    let server = server_with(|c| {
        c.retry_schedule = vec![Duration::from_millis(150); 20];
        c.disable_after = Duration::from_millis(600);
    })
    .await;
    let (keys, id, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    let hook = until(&server, &keys.admin, &format!("/v1/webhooks/{id}"), |w| {
        w["enabled"] == false
    })
    .await;
    let reason = hook["disabledReason"].as_str().expect("reason");
    assert!(
        reason.contains("every delivery failed for 600ms"),
        "{reason}"
    );
    let tries = receiver.received().len();
    assert!(
        (3..20).contains(&tries),
        "{tries} attempts before disabling"
    );
    // Its pending delivery is not sent to a disabled webhook.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().len() <= tries + 1);
}

#[tokio::test]
async fn metrics_count_the_deliveries_waiting() {
    // A receiver that fails: the deliveries wait for their retries (in
    // 30 s), and the scrape reads them from the store.
    let receiver = Receiver::start(Vec::new(), Reply::Status(500, Vec::new())).await;
    let server = server_with(|c| c.retry_schedule = vec![Duration::from_secs(30)]).await;
    let (keys, _, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, on_tickets(3)).await;
    receiver.wait_for(3, PATIENCE).await;
    let deadline = Instant::now() + PATIENCE;
    let metrics = loop {
        let metrics = server.metrics().await;
        if metrics.contains(r#"inbox_deliveries_total{outcome="retrying"} 3"#) {
            break metrics;
        }
        assert!(Instant::now() < deadline, "no retries counted:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metrics.contains("inbox_delivery_queue_depth 3"),
        "three deliveries wait:\n{metrics}"
    );
    let oldest = metrics
        .lines()
        .find_map(|line| line.strip_prefix("inbox_delivery_oldest_pending_seconds "))
        .and_then(|age| age.parse::<f64>().ok())
        .expect("the oldest pending delivery's age");
    assert!(oldest > 0.0, "{oldest}");
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_step() {
    let receiver = Receiver::start(
        vec![Reply::Status(503, vec![("retry-after", "1".to_owned())])],
        Reply::ok(),
    )
    .await;
    let server = server_with(|c| c.retry_schedule = vec![Duration::from_secs(4)]).await;
    let (keys, _, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    let got = receiver.wait_for(2, PATIENCE).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_millis(3000),
        "{gap:?}"
    );
}

#[tokio::test]
async fn gone_disables_the_webhook_at_once() {
    let receiver = Receiver::start(Vec::new(), Reply::Status(410, Vec::new())).await;
    let server = server_with(|_| {}).await;
    let (keys, id, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    let hook = until(&server, &keys.admin, &format!("/v1/webhooks/{id}"), |w| {
        w["enabled"] == false
    })
    .await;
    assert!(
        hook["disabledReason"]
            .as_str()
            .expect("reason")
            .contains("410"),
        "{hook}"
    );
    assert_eq!(receiver.received().len(), 1, "no retry after 410");
    let answer = ingest(&server, &keys, matching_event()).await;
    assert_eq!(
        answer["deliveries"], 0,
        "a disabled webhook no longer matches"
    );
    let (_, enabled) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/enable"),
            &keys.admin,
            None,
        )
        .await;
    assert!(enabled.get("disabledReason").is_none(), "{enabled}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = Receiver::start(Vec::new(), Reply::ok()).await;
    let receiver = Receiver::start(
        Vec::new(),
        Reply::Status(302, vec![("location", elsewhere.url("/"))]),
    )
    .await;
    let server = server_with(|c| c.retry_schedule = Vec::new()).await;
    let (keys, id, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    let detail = failed_delivery(&server, &keys, &id).await;
    assert_eq!(detail["attemptsLog"][0]["errorKind"], "redirect");
    assert_eq!(detail["attemptsLog"][0]["status"], 302);
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let receiver = Receiver::start(Vec::new(), Reply::Hang).await;
    let server = server_with(|c| {
        c.retry_schedule = Vec::new();
        c.delivery_timeout = Duration::from_millis(400);
    })
    .await;
    let (keys, id, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    let detail = failed_delivery(&server, &keys, &id).await;
    let attempt = &detail["attemptsLog"][0];
    assert_eq!(attempt["errorKind"], "timeout", "{detail}");
    let took = attempt["durationMs"].as_i64().expect("ms");
    assert!((350..2000).contains(&took), "{took} ms");
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    let server = TestServer::start_with(|c| c.retry_schedule = Vec::new()).await;
    let (keys, id, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    let detail = failed_delivery(&server, &keys, &id).await;
    assert_eq!(
        detail["attemptsLog"][0]["errorKind"], "refused_target",
        "{detail}"
    );
    let error = detail["lastError"].as_str().expect("error");
    assert!(error.contains("non-public address"), "{error}");
    assert!(receiver.received().is_empty());

    // localhost by name is refused after resolution too.
    let mut by_name = webhook();
    by_name["url"] = json!(format!("http://localhost:{}/", receiver.addr.port()));
    let (_, created) = server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&by_name))
        .await;
    let (_, tested) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{}/test", created["id"].as_str().expect("id")),
            &keys.admin,
            Some(&json!({})),
        )
        .await;
    assert_eq!(tested["delivered"], false);
    assert_eq!(
        tested["delivery"]["attemptsLog"][0]["errorKind"],
        "refused_target"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_dead_receiver_never_delays_a_healthy_one() {
    let dead = Receiver::start(Vec::new(), Reply::Hang).await;
    let healthy = Receiver::start(Vec::new(), Reply::ok()).await;
    let server = server_with(|c| {
        c.delivery_timeout = Duration::from_millis(800);
        c.retry_schedule = vec![Duration::from_millis(100); 5];
        c.webhook_concurrency = 2;
    })
    .await;
    let (keys, dead_id, _) = hooked(&server, &dead.url("/")).await;
    let mut second = webhook();
    second["url"] = json!(healthy.url("/"));
    server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&second))
        .await;

    let mut latencies = Vec::new();
    for round in 0..12 {
        let sent = Instant::now();
        ingest(&server, &keys, matching_event()).await;
        let got = healthy.wait_for(round + 1, PATIENCE).await;
        latencies.push(got[round].at - sent);
    }
    let worst = latencies.iter().max().expect("latencies");
    assert!(
        *worst < SECOND,
        "a healthy delivery waited {worst:?}: {latencies:?}"
    );
    let hook = until(
        &server,
        &keys.admin,
        &format!("/v1/webhooks/{dead_id}"),
        |w| w["breaker"] == "open",
    )
    .await;
    assert_eq!(hook["enabled"], true, "paused, not disabled");
    let (_, other) = server
        .call(Method::GET, "/v1/webhooks", &keys.admin, None)
        .await;
    let states: Vec<&Value> = other["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|w| &w["breaker"])
        .collect();
    assert!(states.contains(&&json!("closed")), "{states:?}");
}

/// The string field `field` of each request's JSON body, in order.
fn body_fields(requests: &[Received], field: &str) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).expect("json")[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {}", r.body))
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn later_events_of_a_ticket_wait_for_earlier_ones() {
    let receiver = Receiver::start(vec![Reply::Status(500, Vec::new())], Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let (keys, _, _) = hooked(&server, &receiver.url("/")).await;
    let mut first = matching_event();
    first["event"] = json!("TicketCreated");
    let mut second = matching_event();
    second["event"] = json!("TicketFromUserReply");
    second["messageId"] = json!("ef0eee2d-5912-4016-bcec-3a173f83e6a1");
    ingest(&server, &keys, json!([first, second])).await;
    let got = receiver.wait_for(3, PATIENCE).await;
    assert_eq!(
        body_fields(&got, "event"),
        ["TicketCreated", "TicketCreated", "TicketFromUserReply"],
        "in ticket order"
    );
}

/// A busy ticket's deliveries are handed on in runs, sent one after
/// another; a failure in the middle of a run ends it: nothing behind the
/// failed delivery goes out before its retry has succeeded.
#[tokio::test]
async fn a_failure_ends_a_busy_tickets_run() {
    // The first delivery goes alone (leased at ingest); its record hands
    // on the next ones as a run, whose fifth fails once.
    let mut replies = vec![Reply::ok(); 5];
    replies.push(Reply::Status(500, Vec::new()));
    let receiver = Receiver::start(replies, Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let (keys, _, _) = hooked(&server, &receiver.url("/")).await;
    let message = |n: usize| format!("00000000-0000-4000-8000-{n:012}");
    let replies: Vec<Value> = (0..30)
        .map(|n| {
            let mut reply = matching_event();
            reply["event"] = json!("TicketFromUserReply");
            reply["messageId"] = json!(message(n));
            reply
        })
        .collect();
    ingest(&server, &keys, json!(replies)).await;
    let got = receiver.wait_for(31, PATIENCE).await;
    let arrived = body_fields(&got, "messageId");
    let expected: Vec<String> = (0..=5).chain(5..30).map(message).collect();
    assert_eq!(arrived, expected, "the failed one again, then the rest");
}

/// Under sustained load, a delivery that had to wait in the store for a
/// claim (no slot free when it was ingested) is not overtaken by newer
/// events handed over at ingest: with one slot, the receiver sees the
/// events of many tickets in the order they were accepted.
#[tokio::test]
async fn a_delivery_stored_for_a_claim_is_not_overtaken_by_newer_ones() {
    const EVENTS: usize = 60;
    let receiver = Receiver::start(Vec::new(), Reply::Slow(Duration::from_millis(20))).await;
    let server = server_with(|c| c.webhook_concurrency = 1).await;
    let (keys, _, _) = hooked(&server, &receiver.url("/")).await;
    let ticket = |n: usize| format!("00000000-0000-4000-8000-{n:012}");
    // Posted one after another, faster than the receiver takes them and
    // for longer than one attempt, so that slots come free while events
    // keep coming.
    for n in 0..EVENTS {
        let mut event = matching_event();
        event["ticketId"] = json!(ticket(n));
        ingest(&server, &keys, event).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = receiver.wait_for(EVENTS, PATIENCE).await;
    let arrived: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).expect("json")["ticketId"]
                .as_str()
                .expect("ticket")
                .to_owned()
        })
        .collect();
    let accepted: Vec<String> = (0..EVENTS).map(ticket).collect();
    assert_eq!(arrived, accepted, "in the order accepted");
}

#[tokio::test]
async fn a_delivery_can_be_sent_again() {
    let receiver = Receiver::start(vec![Reply::Status(500, Vec::new())], Reply::ok()).await;
    let server = server_with(|c| c.retry_schedule = Vec::new()).await;
    let (keys, id, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    let page = until(
        &server,
        &keys.admin,
        &format!("/v1/webhooks/{id}/deliveries"),
        |p| p["data"][0]["state"] == "failed",
    )
    .await;
    let message = page["data"][0]["id"].as_str().expect("id").to_owned();
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/deliveries/{message}/retry"),
            &keys.admin,
            None,
        )
        .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(2, PATIENCE).await;
    assert_eq!(got[1].headers["webhook-id"], message.as_str());
    until(
        &server,
        &keys.admin,
        &format!("/v1/deliveries/{message}"),
        |d| d["state"] == "succeeded",
    )
    .await;

    let other = server.tenant("Globex").await;
    for (method, path) in [
        (Method::GET, format!("/v1/deliveries/{message}")),
        (Method::POST, format!("/v1/deliveries/{message}/retry")),
        (Method::GET, format!("/v1/webhooks/{id}/deliveries")),
        (Method::POST, format!("/v1/webhooks/{id}/test")),
        (Method::POST, format!("/v1/webhooks/{id}/explain")),
    ] {
        let (status, body) = server
            .call(method.clone(), &path, &other.admin, Some(&json!({})))
            .await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn a_test_event_answers_with_its_outcome() {
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let (keys, id, secret) = hooked(&server, &receiver.url("/")).await;
    let (status, outcome) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/test"),
            &keys.admin,
            Some(&json!({"event": "TicketAgentReply"})),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["delivered"], true);
    assert_eq!(outcome["delivery"]["state"], "succeeded");
    assert_eq!(outcome["delivery"]["attemptsLog"][0]["status"], 200);
    let got = receiver.wait_for(1, PATIENCE).await;
    verify(&secret, &got[0]);
    let body: Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(body["event"], "TicketAgentReply");
    assert!(
        body["messageId"].is_string(),
        "a reply carries its message id"
    );
    let (status, bad) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/test"),
            &keys.admin,
            Some(&json!({"event": "Nope"})),
        )
        .await;
    assert_eq!((status, &bad["error"]), (422, &json!("invalid_event")));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "a test is sent once, by the request"
    );
}

#[tokio::test]
async fn explain_says_why_a_webhook_does_not_fire() {
    let server = server_with(|_| {}).await;
    let (keys, id, _) = hooked(&server, "https://crm.example/hook").await;
    let (status, explained) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/explain"),
            &keys.admin,
            Some(&other_event()),
        )
        .await;
    assert_eq!(status, 200, "{explained}");
    let (_, stored) = server
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}"),
            &keys.admin,
            None,
        )
        .await;
    let mut definition = stored.clone();
    for key in ["createdAt", "updatedAt", "breaker"] {
        definition.as_object_mut().expect("object").remove(key);
    }
    let native = inbox_rules::api::run(
        "explain",
        &json!({"webhook": definition, "event": other_event()}),
    )
    .expect("explain");
    assert_eq!(
        explained,
        serde_json::from_str::<Value>(&native).expect("json")
    );
    assert_eq!(explained["fires"], false);
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/explain"),
            &keys.admin,
            Some(&json!({"ticketId": 1})),
        )
        .await;
    assert_eq!(status, 422, "an event that is not one");
}

#[tokio::test]
async fn due_retries_resume_after_a_restart() {
    let receiver = Receiver::start(vec![Reply::Status(500, Vec::new())], Reply::ok()).await;
    let server = server_with(|c| c.retry_schedule = vec![Duration::from_millis(1500)]).await;
    let (keys, _, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, matching_event()).await;
    receiver.wait_for(1, PATIENCE).await;
    let server = server.restart().await;
    let got = receiver.wait_for(2, PATIENCE).await;
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_tarpits_leave_room_for_another_tenant() {
    // Every default but the timeout: 256 slots, 16 per webhook, so 16
    // webhooks of one tenant could hold them all.
    let server = server_with(|config| config.delivery_timeout = Duration::from_secs(5)).await;
    let tarpit = Receiver::start(Vec::new(), Reply::Hang).await;
    let greedy = server.tenant("Greedy").await;
    for n in 0..16 {
        hook(&server, &greedy, &tarpit.url(&format!("/slow/{n}"))).await;
    }
    ingest(&server, &greedy, on_tickets(20)).await;
    let limit = server.config.tenant_concurrency();
    tarpit.wait_for(limit as usize, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        tarpit.received().len(),
        limit as usize,
        "one tenant holds at most its share of the slots"
    );

    let fast = Receiver::start(Vec::new(), Reply::ok()).await;
    let (keys, _, _) = hooked(&server, &fast.url("/fast")).await;
    let sent = Instant::now();
    ingest(&server, &keys, matching_event()).await;
    fast.wait_for(1, SECOND).await;
    assert!(sent.elapsed() < SECOND, "{:?}", sent.elapsed());
}

#[tokio::test]
async fn another_tenant_cannot_reset_a_webhooks_breaker() {
    let failing = Receiver::start(Vec::new(), Reply::Status(500, Vec::new())).await;
    let server = server_with(|c| c.retry_schedule = vec![Duration::from_millis(100); 5]).await;
    let (keys, id, _) = hooked(&server, &failing.url("/")).await;
    ingest(&server, &keys, on_tickets(6)).await;
    let path = format!("/v1/webhooks/{id}");
    until(&server, &keys.admin, &path, |w| w["breaker"] == "open").await;

    let intruder = server.tenant("Intruder").await;
    let (status, _) = server
        .call(
            Method::POST,
            &format!("{path}/enable"),
            &intruder.admin,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, hook) = server.call(Method::GET, &path, &keys.admin, None).await;
    assert_eq!(hook["breaker"], "open", "{hook}");
}

/// An open circuit breaker is the store's, not only the process's: after a
/// restart the webhook is still shown open and its deliveries still wait
/// for the pause, instead of a fresh process sending at once.
#[tokio::test]
async fn an_open_breaker_holds_across_a_restart() {
    // Failing until the breaker opens, then healthy.
    let failing = vec![Reply::Status(500, Vec::new()); 8];
    let receiver = Receiver::start(failing, Reply::ok()).await;
    let server = server_with(|c| c.retry_schedule = vec![Duration::from_millis(50); 10]).await;
    let (keys, id, _) = hooked(&server, &receiver.url("/")).await;
    ingest(&server, &keys, on_tickets(6)).await;
    let path = format!("/v1/webhooks/{id}");
    until(&server, &keys.admin, &path, |w| w["breaker"] == "open").await;

    let server = server.restart().await;
    let (_, hook) = server.call(Method::GET, &path, &keys.admin, None).await;
    assert_eq!(hook["breaker"], "open", "{hook}");
    let before = receiver.received().len();
    let mut event = matching_event();
    event["ticketId"] = json!("00000000-0000-4000-8000-999999999999");
    ingest(&server, &keys, event).await;
    tokio::time::sleep(2 * SECOND).await;
    assert_eq!(
        receiver.received().len(),
        before,
        "a delivery went out during the pause"
    );
    // Enabled by hand: a fresh start, at once.
    let (status, _) = server
        .call(Method::POST, &format!("{path}/enable"), &keys.admin, None)
        .await;
    assert_eq!(status, 200);
    receiver.wait_for(before + 1, PATIENCE).await;
}
