//! What every route shares: error shapes, health, readiness and metrics,
//! request ids, the OpenAPI document, and the panel at `/`.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;

use crate::common::{TestServer, answer, webhook};

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

    // An id that is not UTF-8 once decoded, and a query of the wrong type:
    // the error shape, not axum's plain text.
    for (path, code) in [
        ("/v1/webhooks/%FF", "invalid_path"),
        ("/v1/webhooks/%FF/deliveries", "invalid_path"),
        ("/v1/deliveries/%C3%28", "invalid_path"),
        ("/v1/webhooks?limit=many", "invalid_query"),
    ] {
        let (status, body) = server.call(Method::GET, path, &key, None).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!(code)),
            "{path}: {body}"
        );
        assert!(body["message"].is_string(), "{path}: {body}");
    }

    let (_, page) = server.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(page["data"], json!([]), "no bad request stored anything");
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
const ROUTES: [(&str, &str); 26] = [
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("get", "/v1/deliveries"),
    ("post", "/v1/webhooks/backtest"),
    ("post", "/v1/webhooks/{id}/replay"),
    ("post", "/v1/webhooks/{id}/recover"),
    ("get", "/v1/webhooks/{id}/stats"),
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
