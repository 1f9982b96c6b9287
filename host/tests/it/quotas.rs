//! Per-tenant quotas: webhooks per tenant, and deliveries per ingest
//! request. Each refusal has its own code and changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::TestServer;
use crate::ingest::{matching_event, other_event, queue_depth};

/// A webhook every `TicketCreated` event fires.
fn match_all(name: &str) -> Value {
    json!({"name": name, "url": "https://crm.example/hook", "events": ["TicketCreated"]})
}

#[tokio::test]
async fn a_tenant_has_at_most_its_quota_of_webhooks() {
    let server = TestServer::start_with(|config| {
        config.max_webhooks_per_tenant = 3;
        config.max_deliveries_per_request = 3;
    })
    .await;
    let acme = server.tenant("Acme").await.admin;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            server
                .create_webhook(&acme, &match_all(&format!("w{n}")))
                .await,
        );
    }
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/webhooks",
            &acme,
            Some(&match_all("one more")),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &json!("too_many_webhooks")),
        "{body}"
    );
    assert!(
        body["message"].as_str().expect("message").contains("3"),
        "{body}"
    );
    let (_, page) = server.call(Method::GET, "/v1/webhooks", &acme, None).await;
    assert_eq!(
        page["data"].as_array().expect("list").len(),
        3,
        "nothing was added"
    );

    // The quota is per tenant, and deleting one makes room.
    let other = server.tenant("Other").await.admin;
    server.create_webhook(&other, &match_all("theirs")).await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{}", ids[0]),
            &acme,
            None,
        )
        .await;
    assert_eq!(status, 204);
    server.create_webhook(&acme, &match_all("again")).await;
}

#[tokio::test]
async fn a_request_creates_at_most_its_quota_of_deliveries() {
    let server = TestServer::start_with(|config| {
        config.max_webhooks_per_tenant = 2;
        config.max_deliveries_per_request = 3;
    })
    .await;
    let keys = server.tenant("Acme").await;
    for name in ["a", "b"] {
        server.create_webhook(&keys.admin, &match_all(name)).await;
    }
    // Two events, each firing both webhooks: four deliveries, over three.
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            &keys.ingest,
            Some(&json!([matching_event(), other_event()])),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &json!("too_many_deliveries")),
        "{body}"
    );
    assert!(
        body["message"].as_str().expect("message").contains("4"),
        "{body}"
    );
    assert_eq!(queue_depth(&server).await, 0, "nothing was stored");

    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            &keys.ingest,
            Some(&matching_event()),
        )
        .await;
    assert_eq!((status, &body["deliveries"]), (202, &json!(2)), "{body}");
}

/// The body of `GET path`, as text.
async fn text(server: &TestServer, path: &str, key: &str) -> String {
    let response = server.request(Method::GET, path, key).send().await;
    response.expect("sent").text().await.expect("body")
}

/// A large event does not make large answers: an explanation shows each
/// value shortened, and a page of deliveries leaves explanations out.
#[tokio::test]
async fn a_large_event_makes_no_large_answer() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    let conditions: Vec<Value> = (1..=10)
        .map(|id| json!({"id": id, "field": "subject", "operator": "contains", "value": format!("x{id}")}))
        .collect();
    let webhook = json!({
        "name": "big", "url": "https://crm.example/hook", "events": ["TicketCreated"],
        "conditions": conditions, "match": "any",
    });
    let id = server.create_webhook(&keys.admin, &webhook).await;
    let mut event = matching_event();
    event["ticket"]["subject"] = json!(format!("x1 {}", "y".repeat(900_000)));
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&event))
        .await;
    assert_eq!((status, &body["deliveries"]), (202, &json!(1)), "{body}");

    let page = text(
        &server,
        &format!("/v1/webhooks/{id}/deliveries"),
        &keys.admin,
    )
    .await;
    assert!(
        page.len() < 10_000,
        "a page of one delivery: {} bytes",
        page.len()
    );
    let page: Value = serde_json::from_str(&page).expect("json");
    let delivery = page["data"][0]["id"].as_str().expect("delivery id");
    let detail = text(&server, &format!("/v1/deliveries/{delivery}"), &keys.admin).await;
    assert!(
        detail.len() < 20_000,
        "one delivery: {} bytes",
        detail.len()
    );
    let detail: Value = serde_json::from_str(&detail).expect("json");
    for condition in detail["matched"]["conditions"]
        .as_array()
        .expect("conditions")
    {
        assert_eq!(condition["truncated"], true, "{condition}");
        assert_eq!(
            condition["actual"].as_str().expect("text").chars().count(),
            256
        );
    }
}

/// A request past the delivery quota costs its matching alone: the engine
/// explains none of its matches. Explaining the 100,000 this one would
/// create takes far longer than the deadline, which used to make it a 503
/// `engine_unavailable`, retried by its client forever; it is a 422 that
/// says what to change.
#[tokio::test]
async fn a_request_past_the_delivery_quota_is_refused_before_any_match_is_explained() {
    let server = TestServer::start_with(|config| {
        config.max_webhooks_per_tenant = 100;
        config.max_deliveries_per_request = 100;
        config.engine_deadline = std::time::Duration::from_millis(200);
    })
    .await;
    let keys = server.tenant("Acme").await;
    for n in 0..100 {
        server
            .create_webhook(&keys.admin, &match_all(&format!("w{n}")))
            .await;
    }
    let events = Value::Array(vec![matching_event(); 1_000]);
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&events))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &json!("too_many_deliveries")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("100000"),
        "{body}"
    );
    assert_eq!(queue_depth(&server).await, 0, "nothing was stored");
}

/// A webhook with one `matches` condition on the subject.
fn with_pattern(name: &str, pattern: &str) -> Value {
    json!({"name": name, "url": "https://crm.example/hook", "events": ["TicketCreated"],
           "conditions": [{"id": 1, "field": "subject", "operator": "matches", "value": pattern}]})
}

/// Weighs 101 (`inbox_rules::weight`): 95 repeated classes and their
/// bound, one literal, and the scan.
const HEAVY: &str = "[^\\n]{0,95}x";

/// Sends `body` to `path` and checks that it is refused as too costly (422
/// `too_costly`); the answer.
async fn too_costly(
    server: &TestServer,
    method: Method,
    path: &str,
    key: &str,
    body: &Value,
) -> Value {
    let (status, answer) = server.call(method, path, key, Some(body)).await;
    assert_eq!(
        (status, &answer["error"]),
        (422, &json!("too_costly")),
        "{answer}"
    );
    answer
}

/// The tenant's webhooks' patterns together: each within its own limit,
/// but two of `HEAVY` are past a tenant quota of 200. Creating or changing
/// a webhook past it is refused and changes nothing; a change that does not
/// add weight passes even over a quota lowered since; webhooks stored
/// without a weight (by an earlier version) are weighed at start and count.
#[tokio::test]
async fn a_tenants_patterns_weigh_at_most_its_quota_together() {
    let server = TestServer::start_with(|config| config.max_pattern_weight_per_tenant = 200).await;
    let acme = server.tenant("Acme").await.admin;
    server
        .create_webhook(&acme, &with_pattern("heavy", HEAVY))
        .await;
    let body = too_costly(
        &server,
        Method::POST,
        "/v1/webhooks",
        &acme,
        &with_pattern("heavy too", HEAVY),
    )
    .await;
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("202") && message.contains("200"), "{body}");
    let (_, page) = server.call(Method::GET, "/v1/webhooks", &acme, None).await;
    assert_eq!(
        page["data"].as_array().expect("list").len(),
        1,
        "nothing was added"
    );

    // Per tenant; and webhooks without patterns weigh nothing.
    let other = server.tenant("Other").await.admin;
    server
        .create_webhook(&other, &with_pattern("theirs", HEAVY))
        .await;
    server.create_webhook(&acme, &match_all("plain")).await;

    // A change that adds weight past the quota is refused, the webhook
    // unchanged.
    let light = server
        .create_webhook(&acme, &with_pattern("light", "refund"))
        .await;
    let path = format!("/v1/webhooks/{light}");
    let heavier = json!({"conditions": [{"id": 1, "field": "subject", "operator": "matches", "value": HEAVY}]});
    too_costly(&server, Method::PATCH, &path, &acme, &heavier).await;
    let (_, stored) = server.call(Method::GET, &path, &acme, None).await;
    assert_eq!(stored["conditions"][0]["value"], "refund", "{stored}");

    // Under a higher quota the two fit; lowered again, the tenant is over
    // it, and may still disable a webhook, but not add weight.
    let mut server = server.stop().await;
    server.config.max_pattern_weight_per_tenant = 1_000;
    let server = server.resume().await;
    let second = server
        .create_webhook(&acme, &with_pattern("heavy again", HEAVY))
        .await;
    let mut server = server.stop().await;
    server.config.max_pattern_weight_per_tenant = 200;
    let server = server.resume().await;
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{second}"),
            &acme,
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let refunds = json!({"conditions": [{"id": 1, "field": "subject", "operator": "matches", "value": "refunds"}]});
    too_costly(&server, Method::PATCH, &path, &acme, &refunds).await;

    // Webhooks an earlier version stored carry no weight; the server weighs
    // them when it starts, so they count.
    let server = server.stop().await;
    let db = rusqlite::Connection::open(server.config.data_dir.join("inbox.db")).expect("db");
    let cleared = db
        .execute("UPDATE webhooks SET pattern_weight = NULL", [])
        .expect("clear the weights");
    assert!(cleared >= 4, "{cleared}");
    drop(db);
    let server = server.resume().await;
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{second}"),
            &acme,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // The first webhook, weighed at start, still counts.
    too_costly(
        &server,
        Method::POST,
        "/v1/webhooks",
        &acme,
        &with_pattern("heavy once more", HEAVY),
    )
    .await;
}
