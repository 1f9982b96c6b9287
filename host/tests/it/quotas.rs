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
