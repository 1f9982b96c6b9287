//! Black-box tests of the HTTP API: the real server on port 0 with a
//! temporary SQLite database, driven over HTTP.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, answer, corpus, webhook};

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
            inbox_webhooks::store::Store::signing_secrets(store, id, at)
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
async fn rules_validate_answers_what_the_corpus_says() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    let mut checked = 0;
    for case in corpus()
        .into_iter()
        .filter(|c| c.op == "check" || c.op == "validate")
    {
        let body = match case.op.as_str() {
            "check" => case.input.clone(),
            _ => json!({"webhook": case.input}),
        };
        let response = server
            .request(Method::POST, "/v1/rules/validate", &key)
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{}", case.name);
        let text = response.text().await.expect("text");
        // Byte for byte: the engine's own serialisation, untouched.
        assert_eq!(text, case.expect.to_string(), "{}", case.name);
        checked += 1;
    }
    assert!(checked > 200, "{checked} cases");
}

#[tokio::test]
async fn the_catalog_is_the_engines() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    let (status, catalog) = server.call(Method::GET, "/v1/catalog", &key, None).await;
    assert_eq!(status, 200);
    let native: Value =
        serde_json::from_str(&inbox_rules::api::encode(&inbox_rules::catalog())).expect("json");
    assert_eq!(catalog, native);
}

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
async fn bad_requests_get_the_right_status_and_shape() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;

    let malformed = server
        .request(Method::POST, "/v1/webhooks", &key)
        .header("content-type", "application/json")
        .body("{\"name\": \"x\",\n \"url\": }")
        .send()
        .await
        .expect("sent");
    let (status, body) = answer(malformed).await;
    assert_eq!((status, &body["error"]), (400, &json!("malformed_json")));
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("line 2 column"),
        "{body}"
    );

    let text = server
        .request(Method::POST, "/v1/webhooks", &key)
        .header("content-type", "text/plain")
        .body(webhook().to_string())
        .send()
        .await
        .expect("sent");
    let (status, body) = answer(text).await;
    assert_eq!(
        (status, &body["error"]),
        (415, &json!("unsupported_media_type"))
    );

    let missing_type = server
        .request(Method::POST, "/v1/webhooks", &key)
        .body(webhook().to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(missing_type.status(), 415);

    let mut huge = webhook();
    huge["name"] = json!("x".repeat(1 << 20));
    let (status, body) = server
        .call(Method::POST, "/v1/webhooks", &key, Some(&huge))
        .await;
    assert_eq!((status, &body["error"]), (413, &json!("body_too_large")));

    let (status, body) = server
        .call(Method::POST, "/v1/webhooks", &key, Some(&json!([1, 2])))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &json!("invalid_body")),
        "{body}"
    );

    let mut typo = webhook();
    typo["channel"] = json!(["email"]);
    let (status, body) = server
        .call(Method::POST, "/v1/webhooks", &key, Some(&typo))
        .await;
    assert_eq!((status, &body["error"]), (422, &json!("invalid_webhook")));
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("`channel`"),
        "{body}"
    );
    // The engine's diagnostic, with the path the panel marks.
    assert_eq!(
        (
            &body["diagnostics"][0]["code"],
            &body["diagnostics"][0]["path"]
        ),
        (&json!("unknown_key"), &json!("channel")),
        "{body}"
    );

    let mut wrong_type = webhook();
    wrong_type["events"] = json!("TicketCreated");
    let (status, body) = server
        .call(Method::POST, "/v1/webhooks", &key, Some(&wrong_type))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &json!("invalid_webhook")),
        "{body}"
    );

    let (status, body) = server
        .call(Method::GET, "/v1/nothing-here", &key, None)
        .await;
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));
    let (status, body) = server
        .call(Method::DELETE, "/v1/webhooks", &key, None)
        .await;
    assert_eq!(
        (status, &body["error"]),
        (405, &json!("method_not_allowed"))
    );

    let (_, page) = server.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(page["data"], json!([]), "no bad request stored anything");
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
    assert_eq!(status, 200, "another key has its own bucket");
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

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start().await;
    let key = server.tenant("Acme").await.admin;
    let (status, body) = answer(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = answer(
        server
            .http
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    server
        .call(Method::POST, "/v1/webhooks", &key, Some(&webhook()))
        .await;
    server
        .call(Method::GET, "/v1/webhooks/wh_nope", &key, None)
        .await;
    let metrics = server.metrics().await;
    for line in [
        r#"inbox_http_requests_total{method="POST",route="/v1/webhooks",status="201"} 1"#,
        r#"inbox_http_requests_total{method="GET",route="/v1/webhooks/{id}",status="404"} 1"#,
        r#"inbox_webhooks{state="enabled"} 1"#,
        r#"inbox_http_request_duration_seconds_count{method="POST",route="/v1/webhooks"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn requests_carry_an_id() {
    let server = TestServer::start().await;
    let mine = server
        .http
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        mine.headers()["x-request-id"],
        "trace-me-42",
        "a client's id is kept"
    );
    let made = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        made.headers()["x-request-id"].len(),
        26,
        "else a ULID is made"
    );
}

/// Every route the API serves, as the issue lists them.
const ROUTES: [(&str, &str); 21] = [
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("get", "/v1/deliveries/{id}"),
    ("post", "/v1/deliveries/{id}/retry"),
    ("post", "/v1/webhooks/{id}/test"),
    ("post", "/v1/webhooks/{id}/explain"),
    ("post", "/v1/events"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/{id}"),
    ("put", "/v1/webhooks/{id}"),
    ("patch", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("post", "/v1/webhooks/{id}/enable"),
    ("post", "/v1/webhooks/{id}/disable"),
    ("post", "/v1/webhooks/{id}/secret/rotate"),
    ("post", "/v1/rules/validate"),
    ("get", "/v1/catalog"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

#[tokio::test]
async fn the_openapi_document_lists_every_route_the_router_serves() {
    let server = TestServer::start().await;
    let (status, doc) = answer(
        server
            .http
            .get(server.url("/openapi.json"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented, expected,
        "the document and the route list differ"
    );

    // Every documented route is served: no 404 from the router, no 405.
    for (method, path) in &documented {
        let method: Method = method.to_uppercase().parse().expect("method");
        let url = server.url(&path.replace("{id}", "wh_none"));
        let response = server
            .http
            .request(method.clone(), url)
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            status != 404 || !body.contains("no such route"),
            "{method} {path}: {body}"
        );
    }

    // And the router serves nothing undocumented: every route goes through
    // `routes!`, which documents it. A plain `.route(` would bypass that.
    let api = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    for entry in std::fs::read_dir(api).expect("src/api") {
        let path = entry.expect("entry").path();
        let source = std::fs::read_to_string(&path).expect("source");
        assert!(
            !source.contains(".route("),
            "{} registers a route outside `routes!`",
            path.display()
        );
    }
    // The 401s of the protected routes are documented, with the scheme.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_control_panel_is_served_at_the_root() {
    let panel = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        panel.path().join("index.html"),
        "<!doctype html><title>panel</title>",
    )
    .expect("write");
    std::fs::create_dir(panel.path().join("assets")).expect("mkdir");
    std::fs::write(panel.path().join("assets/app.js"), "console.log(1)").expect("write");
    let dir = panel.path().to_path_buf();
    let server = TestServer::start_with(move |c| c.panel_dir = dir).await;
    let get = |path: &str| server.http.get(server.url(path)).send();

    let index = get("/").await.expect("sent");
    assert_eq!(index.status(), 200);
    assert!(
        index
            .text()
            .await
            .expect("text")
            .contains("<title>panel</title>")
    );
    let asset = get("/assets/app.js").await.expect("sent");
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .contains("javascript")
    );
    let deep = get("/webhooks/anything").await.expect("sent");
    assert!(
        deep.text().await.expect("text").contains("panel"),
        "the page for any other path"
    );
    let (status, body) = answer(get("/v1/nothing").await.expect("sent")).await;
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("not_found")),
        "the API keeps its 404"
    );
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
