//! `POST /v1/events`: checked by the engine, matched in wasmtime against the
//! tenant's current webhooks, stored with its deliveries before the 202.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, answer, costly_conditions, costly_text, webhook};

const TICKET: &str = "ebcb7b53-6636-4c6b-8023-4a61d6df694c";
const MESSAGE: &str = "ef0eee2d-5912-4016-bcec-3a173f83e6a1";

/// An event `webhook()` fires for (its subject contains "refund").
pub(crate) fn matching_event() -> Value {
    json!({
        "event": "TicketCreated",
        "ticketId": TICKET,
        "ticket": {"channel": "email", "subject": "Refund please", "priority": "low"}
    })
}

/// An event `webhook()` does not fire for.
pub(crate) fn other_event() -> Value {
    json!({
        "event": "TicketCreated",
        "ticketId": TICKET,
        "ticket": {"channel": "email", "subject": "Hello", "priority": "low"}
    })
}

pub(crate) async fn queue_depth(server: &TestServer) -> i64 {
    let store = inbox_webhooks::server::open_store(&server.config)
        .await
        .expect("store");
    inbox_webhooks::store::Store::queue(store.as_ref())
        .await
        .expect("queue")
        .depth
}

#[tokio::test]
async fn matching_events_get_a_delivery_and_others_do_not() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    let (status, _) = server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&webhook()))
        .await;
    assert_eq!(status, 201);

    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            &keys.ingest,
            Some(&matching_event()),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["deliveries"], 1);
    let ids = body["eventIds"].as_array().expect("ids");
    assert_eq!(ids.len(), 1);
    assert!(ids[0].as_str().expect("id").starts_with("evt_"));

    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            &keys.ingest,
            Some(&other_event()),
        )
        .await;
    assert_eq!((status, &body["deliveries"]), (202, &json!(0)));

    let batch = json!([matching_event(), other_event(), matching_event()]);
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&batch))
        .await;
    assert_eq!((status, &body["deliveries"]), (202, &json!(2)), "{body}");
    assert_eq!(body["eventIds"].as_array().expect("ids").len(), 3);
    assert_eq!(queue_depth(&server).await, 3);
}

#[tokio::test]
async fn one_bad_event_rejects_the_request_naming_index_and_field() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&webhook()))
        .await;
    let reply_without_message = json!({"event": "TicketAgentReply", "ticketId": TICKET});
    let batch = json!([matching_event(), reply_without_message, matching_event()]);
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&batch))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "invalid_event");
    assert_eq!(
        body["message"],
        "event 1: `messageId`: this event needs `messageId`"
    );
    assert_eq!(
        body["diagnostics"],
        json!([{"code": "missing_field", "message": "this event needs `messageId`",
                "path": "messageId", "index": 1}])
    );
    assert_eq!(
        queue_depth(&server).await,
        0,
        "nothing of the request was stored"
    );

    for (bad, path) in [
        (
            json!({"event": "TicketDeleted", "ticketId": TICKET}),
            "event",
        ),
        (
            json!({"event": "TicketCreated", "ticketId": "42"}),
            "ticketId",
        ),
        (
            json!({"event": "TicketCreated", "ticketId": TICKET, "occurredAt": "now"}),
            "occurredAt",
        ),
        (
            json!({"tenantId": "globex", "event": "TicketCreated", "ticketId": TICKET}),
            "tenantId",
        ),
    ] {
        let (status, body) = server
            .call(Method::POST, "/v1/events", &keys.ingest, Some(&bad))
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["diagnostics"][0]["path"], path, "{body}");
        assert_eq!(body["diagnostics"][0]["index"], 0);
    }
    // The engine's problems and a foreign `tenantId` are reported together.
    let both = json!({"tenantId": "globex", "event": "TicketCreated", "ticketId": "42"});
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&both))
        .await;
    assert_eq!(status, 422, "{body}");
    let paths: Vec<&Value> = body["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| &d["path"])
        .collect();
    assert_eq!(paths, [&json!("ticketId"), &json!("tenantId")], "{body}");
    let reply = json!({"event": "TicketAgentReply", "ticketId": TICKET, "messageId": MESSAGE,
                       "tenantId": "acme"});
    let (status, _) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&reply))
        .await;
    assert_eq!(status, 202, "the key's own tenant may be named");
}

#[tokio::test]
async fn the_size_and_shape_of_a_batch_are_checked() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    let many = Value::Array(vec![other_event(); 1001]);
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&many))
        .await;
    assert_eq!((status, &body["error"]), (422, &json!("too_many_events")));
    let most = Value::Array(vec![other_event(); 1000]);
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&most))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["eventIds"].as_array().expect("ids").len(), 1000);
    for bad in [json!([]), json!("TicketCreated"), json!(7)] {
        let (status, body) = server
            .call(Method::POST, "/v1/events", &keys.ingest, Some(&bad))
            .await;
        assert_eq!(
            (status, &body["error"]),
            (422, &json!("invalid_body")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn only_an_ingest_key_may_send_events() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    for key in [keys.admin.as_str(), "ik_ingest_nope", ""] {
        let (status, body) = server
            .call(Method::POST, "/v1/events", key, Some(&matching_event()))
            .await;
        assert_eq!(
            (status, &body["error"]),
            (401, &json!("unauthorized")),
            "{key}"
        );
    }
}

#[tokio::test]
async fn webhook_changes_take_effect_for_the_next_event() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    let (_, created) = server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&webhook()))
        .await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().expect("id"));
    let deliveries = |body: Value| body["deliveries"].as_i64().expect("count");
    let event = matching_event();
    let send = || server.call(Method::POST, "/v1/events", &keys.ingest, Some(&event));

    assert_eq!(deliveries(send().await.1), 1);
    server
        .call(Method::POST, &format!("{path}/disable"), &keys.admin, None)
        .await;
    assert_eq!(deliveries(send().await.1), 0, "disabled");
    server
        .call(Method::POST, &format!("{path}/enable"), &keys.admin, None)
        .await;
    assert_eq!(deliveries(send().await.1), 1, "enabled again");
    let (status, _) = server
        .call(
            Method::PATCH,
            &path,
            &keys.admin,
            Some(&json!({"expression": "1 and 2"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        deliveries(send().await.1),
        0,
        "now the priority must be high too"
    );
    server.call(Method::DELETE, &path, &keys.admin, None).await;
    let (_, again) = server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&webhook()))
        .await;
    assert_eq!(
        deliveries(send().await.1),
        1,
        "a new webhook matches at once"
    );
    assert!(again["id"].is_string());
}

#[tokio::test]
async fn rule_sets_are_loaded_at_start() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&webhook()))
        .await;
    let server = server.restart().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            &keys.ingest,
            Some(&matching_event()),
        )
        .await;
    assert_eq!((status, &body["deliveries"]), (202, &json!(1)), "{body}");
}

#[tokio::test]
async fn tenants_match_only_their_own_webhooks() {
    let server = TestServer::start().await;
    let acme = server.tenant("Acme").await;
    let globex = server.tenant("Globex").await;
    server
        .call(Method::POST, "/v1/webhooks", &acme.admin, Some(&webhook()))
        .await;
    let (_, body) = server
        .call(
            Method::POST,
            "/v1/events",
            &globex.ingest,
            Some(&matching_event()),
        )
        .await;
    assert_eq!(body["deliveries"], 0);
}

#[tokio::test]
async fn a_retried_request_enqueues_nothing_twice() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&webhook()))
        .await;
    let batch = json!([matching_event(), other_event(), matching_event()]);
    let send = |key: &'static str| {
        server
            .request(Method::POST, "/v1/events", &keys.ingest)
            .header("idempotency-key", key)
            .json(&batch)
            .send()
    };
    let (status, first) = answer(send("retry-me").await.expect("sent")).await;
    assert_eq!((status, &first["deliveries"]), (202, &json!(2)));
    let (status, again) = answer(send("retry-me").await.expect("sent")).await;
    assert_eq!(status, 202);
    assert_eq!(again, first, "the same answer, nothing stored twice");
    assert_eq!(queue_depth(&server).await, 2);
    let (_, other) = answer(send("another").await.expect("sent")).await;
    assert_ne!(
        other["eventIds"], first["eventIds"],
        "another key is another request"
    );

    // An event's own id works the same way, across requests.
    let mut event = matching_event();
    event["id"] = json!("helpdesk-event-1");
    let (_, one) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&event))
        .await;
    let (_, two) = server
        .call(
            Method::POST,
            "/v1/events",
            &keys.ingest,
            Some(&json!([event])),
        )
        .await;
    assert_eq!(one["eventIds"], two["eventIds"]);
    assert_eq!(queue_depth(&server).await, 5);

    let bad = server
        .request(Method::POST, "/v1/events", &keys.ingest)
        .header("idempotency-key", "x".repeat(256))
        .json(&batch)
        .send()
        .await
        .expect("sent");
    let (status, body) = answer(bad).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_header")));
}

#[tokio::test]
async fn an_idempotency_key_reused_with_other_events_is_refused_and_stores_nothing() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&webhook()))
        .await;
    let send = |key: &'static str, body: Value| {
        server
            .request(Method::POST, "/v1/events", &keys.ingest)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let batch = json!([matching_event(), other_event()]);
    let (status, first) = answer(send("k", batch.clone()).await.expect("sent")).await;
    assert_eq!((status, &first["deliveries"]), (202, &json!(1)));

    let mut changed = matching_event();
    changed["ticket"]["subject"] = json!("something else entirely");
    let longer = json!([matching_event(), other_event(), matching_event()]);
    let shorter_then_other = json!([matching_event(), changed.clone()]);
    for body in [json!([changed]), longer, shorter_then_other] {
        let (status, answered) = answer(send("k", body.clone()).await.expect("sent")).await;
        assert_eq!(
            (status, &answered["error"]),
            (422, &json!("idempotency_mismatch")),
            "{body}: {answered}"
        );
    }
    assert_eq!(queue_depth(&server).await, 1, "nothing more was stored");

    // The same events, keys in another order, are the same request.
    let reversed = |event: &Value| {
        let fields = event.as_object().expect("an object").iter().rev();
        Value::Object(fields.map(|(k, v)| (k.clone(), v.clone())).collect())
    };
    let reordered = json!([reversed(&matching_event()), reversed(&other_event())]);
    assert_ne!(reordered.to_string(), batch.to_string());
    let (status, again) = answer(send("k", reordered).await.expect("sent")).await;
    assert_eq!((status, &again), (202, &first));

    // An event's own id: the same id with another body is refused too, but
    // a batch may repeat some events by id and bring new ones.
    let mut event = matching_event();
    event["id"] = json!("helpdesk-event-7");
    let (status, _) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&event))
        .await;
    assert_eq!(status, 202);
    let mut altered = event.clone();
    altered["ticket"]["subject"] = json!("altered");
    let (status, body) = server
        .call(Method::POST, "/v1/events", &keys.ingest, Some(&altered))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &json!("idempotency_mismatch"))
    );
    let mut next = matching_event();
    next["id"] = json!("helpdesk-event-8");
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            &keys.ingest,
            Some(&json!([event, next])),
        )
        .await;
    assert_eq!((status, &body["deliveries"]), (202, &json!(2)), "{body}");
    assert_eq!(queue_depth(&server).await, 3);
}

/// A webhook as slow to match as validation lets it be, on a long subject.
fn slow_webhook(salt: usize) -> Value {
    let conditions = costly_conditions("subject", salt);
    json!({
        "name": "slow", "url": "https://crm.example/hook", "events": ["TicketCreated"],
        "conditions": conditions, "match": "any",
    })
}

/// A server whose tenant has `count` webhooks like `slow_webhook`, written
/// under the default deadline and a tenant pattern weight quota raised to
/// let them in (as an operator may), then restarted with `deadline`.
async fn with_slow_webhooks(count: usize, deadline: Duration) -> (TestServer, crate::common::Keys) {
    let server = TestServer::start_with(|config| {
        config.max_pattern_weight_per_tenant = 200 * u32::try_from(count).expect("a few");
    })
    .await;
    let keys = server.tenant("Acme").await;
    for salt in 0..count {
        server
            .create_webhook(&keys.admin, &slow_webhook(salt))
            .await;
    }
    let mut server = server.stop().await;
    server.config.engine_deadline = deadline;
    (server.resume().await, keys)
}

/// An event with a 900,000-character subject.
fn slow_event() -> Value {
    let mut event = matching_event();
    event["ticket"]["subject"] = json!(costly_text(900_000));
    event
}

/// The attack that made valid events fail: a hundred patterns that try
/// every start with up to 400 characters each, which took 2 s on a
/// 2,000-character event. Refused when written, with the condition to
/// change.
#[tokio::test]
async fn a_webhook_whose_patterns_cost_too_much_is_refused() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    let conditions: Vec<Value> = (1..=100)
        .map(|id| json!({"id": id, "field": "message.body", "operator": "matches", "value": ".{0,400}!N"}))
        .collect();
    let webhook = json!({
        "name": "costly", "url": "https://crm.example/hook", "events": ["TicketCreated"],
        "conditions": conditions, "match": "any",
    });
    let (status, body) = server
        .call(Method::POST, "/v1/webhooks", &keys.admin, Some(&webhook))
        .await;
    assert_eq!(status, 422, "{body}");
    let errors = body["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(
        (
            &errors[0]["code"],
            &errors[0]["path"],
            &errors[0]["conditionId"]
        ),
        (
            &json!("too_costly"),
            &json!("conditions[0].value"),
            &json!(1)
        ),
        "{body}"
    );
    let (_, page) = server
        .call(Method::GET, "/v1/webhooks", &keys.admin, None)
        .await;
    assert_eq!(page["data"], json!([]), "nothing was stored");
}

/// Explaining (one webhook, one event) gets a quarter of the deadline
/// ingest gets, so that one tenant's heavy explains cannot hold the
/// engine long: past it, 422 `too_complex` naming that deadline.
///
/// The quarter is one epoch tick (5 ms of a 20 ms deadline): the slow
/// explanation takes several times that on any machine. (With 25 ms of
/// 100, a fast machine explained it in time.)
#[tokio::test]
async fn explaining_has_a_shorter_deadline_than_ingest() {
    let (server, keys) = with_slow_webhooks(1, Duration::from_millis(20)).await;
    let (_, page) = server
        .call(Method::GET, "/v1/webhooks", &keys.admin, None)
        .await;
    let id = page["data"][0]["id"]
        .as_str()
        .expect("the webhook")
        .to_owned();
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/explain"),
            &keys.admin,
            Some(&slow_event()),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &json!("too_complex")),
        "{body}"
    );
    assert!(
        body["message"].as_str().expect("message").contains("5ms"),
        "a quarter of 20 ms: {body}"
    );
}

/// Events the engine cannot take in within its deadline are answered 503
/// with `Retry-After` (the client keeps them and retries) and nothing of
/// the request is stored; never a 4xx, which would tell it to drop them.
#[tokio::test]
async fn an_engine_deadline_during_ingest_is_a_retryable_503_that_stores_nothing() {
    // Ten webhooks of the costliest patterns validation lets through:
    // about 100 ms of engine time on this event on a fast machine, which
    // sometimes took it in within a 100 ms deadline (five runs in a row,
    // after passing an hour before). A 20 ms deadline is overrun on any
    // machine.
    let (server, keys) = with_slow_webhooks(10, Duration::from_millis(20)).await;

    let event = slow_event();
    let response = server
        .request(Method::POST, "/v1/events", &keys.ingest)
        .json(&json!([other_event(), event]))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, body) = answer(response).await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("engine_unavailable")),
        "{body}"
    );
    assert_eq!(queue_depth(&server).await, 0, "nothing was stored");

    // The engine recovers: the next request is taken in.
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/events",
            &keys.ingest,
            Some(&other_event()),
        )
        .await;
    assert_eq!(status, 202);
}
