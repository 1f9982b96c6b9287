//! `/v1/webhooks`: a webhook's whole life, secrets, listing, validation
//! answers, durability across a restart, and concurrent writes.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, corpus, webhook};

#[tokio::test]
async fn a_webhook_goes_through_its_whole_life() {
    let server = TestServer::start().await;
    let keys = server.tenant("Acme").await;
    let key = keys.admin.as_str();

    let (status, created) = server
        .call(Method::POST, "/v1/webhooks", key, Some(&webhook()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("wh_"), "{id}");
    assert!(
        created["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );
    assert_eq!(created["enabled"], true, "enabled by default");
    assert_eq!(created["accounts"], json!([]), "defaults are filled in");
    assert_eq!(created["warnings"], json!([]));
    assert_eq!(created["expression"], "1 or 2");

    let (status, got) = server
        .call(Method::GET, &format!("/v1/webhooks/{id}"), key, None)
        .await;
    assert_eq!(status, 200);
    assert!(got.get("secret").is_none(), "the secret is shown only once");
    assert_eq!(got["name"], "Refunds to CRM");

    // PUT replaces: what is left out takes its default.
    let mut replaced = webhook();
    replaced["name"] = json!("Renamed");
    replaced.as_object_mut().expect("object").remove("channels");
    let (status, put) = server
        .call(
            Method::PUT,
            &format!("/v1/webhooks/{id}"),
            key,
            Some(&replaced),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["name"], "Renamed");
    assert_eq!(put["channels"], json!([]));

    // PATCH merges; a GET body can be sent back as it is.
    let (status, patched) = server
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            key,
            Some(&json!({"match": "any", "expression": null})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["match"], "any");
    assert!(patched.get("expression").is_none());
    assert_eq!(patched["name"], "Renamed", "untouched keys stay");
    let (status, _) = server
        .call(Method::PUT, &format!("/v1/webhooks/{id}"), key, Some(&got))
        .await;
    assert_eq!(status, 200, "a GET body is a valid PUT body");

    let (status, disabled) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/disable"),
            key,
            None,
        )
        .await;
    assert_eq!((status, &disabled["enabled"]), (200, &json!(false)));
    let (status, enabled) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/enable"),
            key,
            None,
        )
        .await;
    assert_eq!((status, &enabled["enabled"]), (200, &json!(true)));

    let (status, rotated) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/secret/rotate"),
            key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(
        rotated["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(rotated["previousExpiresAt"].as_str().is_some());

    let (status, body) = server
        .call(Method::DELETE, &format!("/v1/webhooks/{id}"), key, None)
        .await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) = server
        .call(Method::GET, &format!("/v1/webhooks/{id}"), key, None)
        .await;
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_signing_for_the_configured_overlap() {
    let server =
        TestServer::start_with(|c| c.secret_overlap = std::time::Duration::from_secs(3600)).await;
    let key = server.tenant("Acme").await.admin;
    let (_, created) = server
        .call(Method::POST, "/v1/webhooks", &key, Some(&webhook()))
        .await;
    let id = created["id"].as_str().expect("id");
    let before = inbox_webhooks::store::now();
    let (_, rotated) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/secret/rotate"),
            &key,
            None,
        )
        .await;
    let store = inbox_webhooks::server::open_store(&server.config)
        .await
        .expect("store");
    // Stored sealed: opened with the server's key.
    let vault = inbox_webhooks::vault::Vault::open_or_create(&server.config.secret_key_file())
        .expect("the server's key");
    let signing = |at| {
        let store = &store;
        let vault = &vault;
        async move {
            inbox_webhooks::store::Store::signing_secrets(store.as_ref(), id, at)
                .await
                .expect("secrets")
                .iter()
                .map(|sealed| Value::String(vault.open(sealed).expect("opens")))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        signing(before + 1000).await,
        [rotated["secret"].clone(), created["secret"].clone()]
    );
    assert_eq!(
        signing(before + 3_700_000).await,
        [rotated["secret"].clone()],
        "an hour later only the new one signs"
    );
}

#[tokio::test]
async fn listing_pages_with_a_cursor() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    let mut created = Vec::new();
    for n in 0..5 {
        let mut body = webhook();
        body["name"] = json!(format!("hook {n}"));
        let (status, hook) = server
            .call(Method::POST, "/v1/webhooks", &key, Some(&body))
            .await;
        assert_eq!(status, 201);
        created.push(hook["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/webhooks?limit=2".to_owned();
    loop {
        let (status, page) = server.call(Method::GET, &path, &key, None).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().expect("data");
        assert!(data.len() <= 2);
        seen.extend(
            data.iter()
                .map(|w| w["id"].as_str().expect("id").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/webhooks?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    created.sort();
    assert_eq!(seen, created, "every webhook once, in id order");

    for bad in ["limit=0", "limit=101", "limit=many"] {
        let (status, body) = server
            .call(Method::GET, &format!("/v1/webhooks?{bad}"), &key, None)
            .await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_query")),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn an_invalid_webhook_answers_422_with_the_engines_diagnostics() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    let cases: Vec<_> = corpus()
        .into_iter()
        .filter(|c| c.op == "validate")
        .collect();
    assert!(cases.len() >= 50, "{} validate cases", cases.len());
    for case in cases {
        let (status, body) = server
            .call(Method::POST, "/v1/webhooks", &key, Some(&case.input))
            .await;
        if case.expect["valid"] == true {
            assert_eq!(status, 201, "{}: {body}", case.name);
            assert_eq!(body["warnings"], case.expect["warnings"], "{}", case.name);
        } else {
            assert_eq!(status, 422, "{}: {body}", case.name);
            assert_eq!(body["error"], "invalid_webhook", "{}", case.name);
            assert_eq!(body["diagnostics"], case.expect["errors"], "{}", case.name);
            assert_eq!(body["warnings"], case.expect["warnings"], "{}", case.name);
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    // Nothing invalid was stored.
    let valid = corpus()
        .iter()
        .filter(|c| c.op == "validate" && c.expect["valid"] == true)
        .count();
    let (_, page) = server
        .call(Method::GET, "/v1/webhooks?limit=100", &key, None)
        .await;
    assert_eq!(page["data"].as_array().expect("data").len(), valid);
}

#[tokio::test]
async fn an_invalid_expression_gets_its_spans() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    let mut body = webhook();
    body["expression"] = json!("(1 or 2");
    let (status, answer) = server
        .call(Method::POST, "/v1/webhooks", &key, Some(&body))
        .await;
    assert_eq!(status, 422, "{answer}");
    let first = &answer["diagnostics"][0];
    assert_eq!(first["path"], "expression");
    assert!(first["start"].is_u64() && first["end"].is_u64(), "{first}");
    // And the same webhook through /v1/rules/validate gives the same report.
    let (status, report) = server
        .call(
            Method::POST,
            "/v1/rules/validate",
            &key,
            Some(&json!({"webhook": body})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], answer["diagnostics"]);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    let (_, created) = server
        .call(Method::POST, "/v1/webhooks", &key, Some(&webhook()))
        .await;
    let server = server.restart().await;
    let (status, got) = server
        .call(
            Method::GET,
            &format!("/v1/webhooks/{}", created["id"].as_str().expect("id")),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200, "the key and the webhook are still there");
    let mut expected = created.clone();
    let expected = expected.as_object_mut().expect("object");
    expected.remove("secret");
    expected.remove("warnings");
    assert_eq!(&got, &Value::Object(expected.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_creates_all_land() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let key = server.tenant("Acme").await.admin;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..50 {
        let (server, key) = (std::sync::Arc::clone(&server), key.clone());
        tasks.spawn(async move {
            let mut body = webhook();
            body["name"] = json!(format!("parallel {n}"));
            server
                .call(Method::POST, "/v1/webhooks", &key, Some(&body))
                .await
        });
    }
    let mut ids = BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.expect("task");
        assert_eq!(status, 201, "{body}");
        ids.insert(body["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), 50);
    let (_, page) = server
        .call(Method::GET, "/v1/webhooks?limit=100", &key, None)
        .await;
    let names: BTreeSet<_> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|w| w["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        names.len(),
        50,
        "every create is stored, each with its own body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_patches_of_one_webhook_lose_nothing() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let key = server.tenant("Acme").await.admin;
    let (_, created) = server
        .call(Method::POST, "/v1/webhooks", &key, Some(&webhook()))
        .await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().expect("id"));
    let mut tasks = tokio::task::JoinSet::new();
    // Every patch reads, changes and writes the same row: each must land
    // (retried on a stale revision), none may fail or be refused.
    for n in 0..6 {
        let (server, key, path) = (std::sync::Arc::clone(&server), key.clone(), path.clone());
        tasks.spawn(async move {
            let (status, body) = server
                .call(
                    Method::PATCH,
                    &path,
                    &key,
                    Some(&json!({"name": format!("n{n}")})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    let (_, got) = server.call(Method::GET, &path, &key, None).await;
    assert!(
        got["name"].as_str().expect("name").starts_with('n'),
        "{got}"
    );
}
