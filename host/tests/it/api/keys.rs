//! Keys and tenants: every route checks its key, tenants never see each
//! other, rate limits, revocation, the bearer scheme.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, answer, webhook};

#[tokio::test]
async fn keys_are_checked_on_every_route() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    let routes = [
        (Method::GET, "/v1/webhooks"),
        (Method::POST, "/v1/webhooks"),
        (Method::GET, "/v1/webhooks/wh_x"),
        (Method::PUT, "/v1/webhooks/wh_x"),
        (Method::PATCH, "/v1/webhooks/wh_x"),
        (Method::DELETE, "/v1/webhooks/wh_x"),
        (Method::POST, "/v1/webhooks/wh_x/enable"),
        (Method::POST, "/v1/webhooks/wh_x/disable"),
        (Method::POST, "/v1/webhooks/wh_x/secret/rotate"),
        (Method::POST, "/v1/rules/validate"),
        (Method::GET, "/v1/catalog"),
    ];
    for (method, path) in routes {
        for key in [
            None,
            Some("ik_admin_nope"),
            Some(keys.ingest.as_str()),
            Some(""),
        ] {
            let mut request = server.http.request(method.clone(), server.url(path));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let (status, body) = answer(request.send().await.expect("sent")).await;
            assert_eq!(status, 401, "{method} {path} with {key:?}: {body}");
            assert_eq!(body["error"], "unauthorized");
        }
        let basic = server
            .http
            .request(method.clone(), server.url(path))
            .header("authorization", format!("Basic {}", keys.admin))
            .send()
            .await
            .expect("sent");
        assert_eq!(basic.status(), 401, "{method} {path}: only Bearer");
    }
}

#[tokio::test]
async fn another_tenants_webhook_is_not_found_on_every_route() {
    let server = TestServer::start().await;
    let acme = server.tenant("Acme").await.admin;
    let globex = server.tenant("Globex").await.admin;
    let (_, created) = server
        .call(Method::POST, "/v1/webhooks", &acme, Some(&webhook()))
        .await;
    let id = created["id"].as_str().expect("id");
    let routes = [
        (Method::GET, format!("/v1/webhooks/{id}"), None),
        (Method::PUT, format!("/v1/webhooks/{id}"), Some(webhook())),
        (
            Method::PATCH,
            format!("/v1/webhooks/{id}"),
            Some(json!({"name": "mine"})),
        ),
        (Method::POST, format!("/v1/webhooks/{id}/enable"), None),
        (Method::POST, format!("/v1/webhooks/{id}/disable"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/secret/rotate"),
            None,
        ),
        (Method::DELETE, format!("/v1/webhooks/{id}"), None),
    ];
    for (method, path, body) in &routes {
        let (status, answer) = server
            .call(method.clone(), path, &globex, body.as_ref())
            .await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "not_found");
        // Exactly what a webhook that never existed answers.
        let never = path.replace(id, "wh_01JNEVEREXISTED0000000000");
        let (_, other) = server
            .call(method.clone(), &never, &globex, body.as_ref())
            .await;
        assert_eq!(answer, other, "{method} {path}");
    }
    let (_, list) = server
        .call(Method::GET, "/v1/webhooks", &globex, None)
        .await;
    assert_eq!(list["data"], json!([]), "lists show only the tenant's own");
    let (status, untouched) = server
        .call(Method::GET, &format!("/v1/webhooks/{id}"), &acme, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(untouched["name"], "Refunds to CRM", "nothing was changed");
    assert_eq!(untouched["enabled"], true);
}

#[tokio::test]
async fn a_key_past_its_rate_limit_gets_429_and_others_do_not() {
    let server = TestServer::start_with(|c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 3;
    })
    .await;
    let acme = server.tenant("Acme").await.admin;
    let globex = server.tenant("Globex").await.admin;
    for _ in 0..3 {
        let (status, _) = server.call(Method::GET, "/v1/webhooks", &acme, None).await;
        assert_eq!(status, 200);
    }
    let response = server
        .request(Method::GET, "/v1/webhooks", &acme)
        .send()
        .await
        .expect("sent");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (status, body) = answer(response).await;
    assert_eq!((status, &body["error"]), (429, &json!("rate_limited")));
    let (status, _) = server
        .call(Method::GET, "/v1/webhooks", &globex, None)
        .await;
    assert_eq!(status, 200, "another tenant's key has its own bucket");
    // The limit is per key, not per tenant (the tenant's engine time has
    // its own bound, `tenant_engine_share`).
    let second = server.admin_key("acme").await;
    let (status, _) = server
        .call(Method::GET, "/v1/webhooks", &second, None)
        .await;
    assert_eq!(
        status, 200,
        "another key of the same tenant has its own bucket"
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    let (status, _) = server.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(status, 200);
    let mut listed = Vec::new();
    let list = inbox_webhooks::cli::KeyCommand::List(inbox_webhooks::cli::KeyListArgs {
        tenant: "acme".to_owned(),
        json: true,
        store: server.store_args(),
    });
    inbox_webhooks::commands::admin::key(&list, &mut listed)
        .await
        .expect("key list");
    let keys: Value = serde_json::from_slice(&listed).expect("json");
    let admin = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kind"] == "admin")
        .expect("admin key");
    assert!(
        !listed.windows(key.len()).any(|w| w == key.as_bytes()),
        "lists never show a key"
    );
    let revoke = inbox_webhooks::cli::KeyCommand::Revoke(inbox_webhooks::cli::KeyRevokeArgs {
        key_id: admin["id"].as_str().expect("id").to_owned(),
        store: server.store_args(),
    });
    inbox_webhooks::commands::admin::key(&revoke, &mut Vec::new())
        .await
        .expect("key revoke");
    let (status, _) = server.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(status, 401, "the very next request is refused");
}

#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_letter_case() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    for (scheme, status) in [
        ("Bearer", 200),
        ("bearer", 200),
        ("BEARER", 200),
        ("Basic", 401),
    ] {
        let response = server
            .http
            .get(server.url("/v1/webhooks"))
            .header("authorization", format!("{scheme} {key}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), status, "{scheme}");
    }
}
