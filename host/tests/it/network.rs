//! Delivery as real receivers meet it: HTTPS checked against a CA made in
//! the test (given to the server as `extra_ca_file`), certificates that
//! must fail, mutual TLS per webhook, and proxies (the environment's
//! ignored, an explicit one guarded).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{FakeProxy, Keys, Receiver, Reply, TestCa, TestServer, webhook};
use crate::delivery::{failed_delivery, hook, hooked, ingest, server_with, verify};
use crate::ingest::matching_event;
use crate::serve::{Serving, tenant_create};

const PATIENCE: Duration = Duration::from_secs(15);

/// A server that trusts `ca` besides the system's store.
async fn trusting(ca: &TestCa) -> TestServer {
    server_with(|config| {
        let file = config.data_dir.join("extra-ca.pem");
        std::fs::write(&file, ca.pem()).expect("CA file");
        config.extra_ca_file = Some(file);
    })
    .await
}

#[tokio::test]
async fn an_https_receiver_gets_a_signed_delivery_over_http2() {
    let ca = TestCa::new("Test CA");
    let tls = ca.server(&["127.0.0.1"]).server(None);
    let receiver = Receiver::start_tls(Vec::new(), Reply::ok(), tls).await;
    let server = trusting(&ca).await;
    let (keys, id, secret) = hooked(&server, &receiver.https("/hooks/crm")).await;

    ingest(&server, &keys, matching_event()).await;
    let got = receiver.wait_for(1, PATIENCE).await;
    verify(&secret, &got[0]);
    assert_eq!(
        got[0].version,
        axum::http::Version::HTTP_2,
        "ALPN picks HTTP/2 where the receiver offers it"
    );

    // "Send test event", as the panel's button calls it.
    let (status, tested) = server
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/test"),
            &keys.admin,
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["delivered"], true, "{tested}");
    let got = receiver.wait_for(2, PATIENCE).await;
    verify(&secret, &got[1]);
}

/// `PATCH path` with `body`: the status and the answer.
pub(crate) async fn patch(
    server: &TestServer,
    keys: &Keys,
    path: &str,
    body: Value,
) -> (u16, Value) {
    server
        .call(Method::PATCH, path, &keys.admin, Some(&body))
        .await
}

/// The attempts of a delivery to `url` (by a new webhook of the tenant
/// of `keys`) once it has failed for good.
async fn attempts_to(server: &TestServer, keys: &Keys, url: &str) -> Vec<Value> {
    let (id, _) = hook(server, keys, url).await;
    ingest(server, keys, matching_event()).await;
    let detail = failed_delivery(server, keys, &id).await;
    detail["attemptsLog"].as_array().expect("attempts").clone()
}

#[tokio::test]
async fn bad_certificates_fail_as_tls_attempts_and_are_retried() {
    let ca = TestCa::new("Test CA");
    let stranger = TestCa::new("Someone else's CA");
    let cases = [
        (ca.server(&["other.example"]), "name mismatch"),
        (ca.expired_server(&["127.0.0.1"]), "expired"),
        (stranger.server(&["127.0.0.1"]), "unknown issuer"),
    ];
    let server = trusting(&ca).await;
    for (certificate, says) in cases {
        let keys = server.tenant(says).await;
        let receiver = Receiver::start_tls(Vec::new(), Reply::ok(), certificate.server(None)).await;
        let url = receiver.https("/hook?token=tenant-secret");
        let attempts = attempts_to(&server, &keys, &url).await;
        assert_eq!(
            attempts.len(),
            3,
            "the first try and two retries: {attempts:?}"
        );
        for attempt in &attempts {
            assert_eq!(attempt["errorKind"], "tls", "{attempt}");
            let error = attempt["error"].as_str().expect("error");
            assert!(error.contains(says), "{says}: {error}");
            assert!(!error.contains("tenant-secret"), "no URL query: {error}");
        }
        assert!(receiver.received().is_empty(), "nothing was sent in clear");
    }
}

#[tokio::test]
async fn a_webhook_with_a_client_certificate_passes_mutual_tls_and_one_without_does_not() {
    let ca = TestCa::new("Test CA");
    let tls = ca.server(&["127.0.0.1"]).server(Some(&ca));
    let receiver = Receiver::start_tls(Vec::new(), Reply::ok(), tls).await;
    let server = trusting(&ca).await;
    let client = ca.client("inbox-webhooks acme");

    let (keys, with, secret) = hooked(&server, &receiver.https("/with")).await;
    let (status, written) = server
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{with}"),
            &keys.admin,
            Some(
                &json!({"tls": {"clientCertificate": client.pem(), "clientKey": client.key_pem()}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(
        written["tls"]["clientCertificate"]["subject"],
        "CN=inbox-webhooks acme"
    );
    assert!(
        !written.to_string().contains("PRIVATE KEY"),
        "the key is never shown: {written}"
    );

    let (without, _) = hook(&server, &keys, &receiver.https("/without")).await;

    ingest(&server, &keys, matching_event()).await;
    let got = receiver.wait_for(1, PATIENCE).await;
    verify(&secret, &got[0]);
    let refused = failed_delivery(&server, &keys, &without).await;
    let attempt = &refused["attemptsLog"][0];
    assert_eq!(attempt["errorKind"], "tls", "{refused}");
    let error = attempt["error"].as_str().expect("error");
    assert!(error.contains("handshake failure"), "{error}");
    assert!(
        receiver.received().len() == 1,
        "only the webhook with a certificate got through"
    );
}

#[tokio::test]
async fn client_certificates_are_checked_when_set_and_can_be_removed() {
    let ca = TestCa::new("Test CA");
    let server = server_with(|_| {}).await;
    let (keys, id, _) = hooked(&server, "https://crm.example/hook").await;
    let path = format!("/v1/webhooks/{id}");
    let client = ca.client("acme");
    let other = ca.client("other");
    let expired = {
        let issued = ca.expired_server(&["acme.example"]);
        (issued.pem(), issued.key_pem())
    };
    let cases = [
        (
            json!({"clientCertificate": "junk", "clientKey": client.key_pem()}),
            "tls.clientCertificate",
        ),
        (
            json!({"clientCertificate": client.pem(), "clientKey": "junk"}),
            "tls.clientKey",
        ),
        (
            json!({"clientCertificate": client.pem(), "clientKey": other.key_pem()}),
            "tls.clientKey",
        ),
        (
            json!({"clientCertificate": expired.0, "clientKey": expired.1}),
            "tls.clientCertificate",
        ),
        (json!({"clientCertificate": client.pem()}), "tls.clientKey"),
        (json!({"clientCertificat": client.pem()}), "tls"),
    ];
    for (tls, at) in cases {
        let (status, body) = patch(&server, &keys, &path, json!({"tls": tls})).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["diagnostics"][0]["path"], at, "{body}");
        assert!(!body.to_string().contains("PRIVATE KEY"), "{body}");
    }
    let (_, unchanged) = server.call(Method::GET, &path, &keys.admin, None).await;
    assert!(
        unchanged.get("tls").is_none(),
        "nothing was stored: {unchanged}"
    );

    let (status, set) = patch(&server, &keys, &path, json!({"tls": client.tls()})).await;
    assert_eq!(status, 200, "{set}");
    // A PUT of what GET shows keeps it.
    let (_, shown) = server.call(Method::GET, &path, &keys.admin, None).await;
    assert!(
        shown["tls"]["clientCertificate"]["notAfter"].is_string(),
        "{shown}"
    );
    let (status, put) = server
        .call(Method::PUT, &path, &keys.admin, Some(&shown))
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["tls"], shown["tls"]);
    let (status, removed) = patch(&server, &keys, &path, json!({"tls": null})).await;
    assert_eq!(status, 200, "{removed}");
    assert!(removed.get("tls").is_none(), "{removed}");
}

#[tokio::test]
async fn an_explicit_proxy_carries_deliveries_and_internal_targets_never_reach_it() {
    let proxy = FakeProxy::start().await;
    let server = TestServer::start_with(|config| {
        config.delivery_proxy = Some(proxy.url());
        // One loopback address is allowed; the rest of 127.0.0.0/8 (where
        // `localhost` points) is not.
        config.allowed_targets = vec!["127.0.0.2/32".parse().expect("network")];
        config.retry_schedule = vec![Duration::from_millis(300)];
        config.retry_jitter = 0.0;
    })
    .await;
    // Allowed: it goes through the proxy.
    let (keys, _, _) = hooked(&server, "http://127.0.0.2:9/allowed").await;
    ingest(&server, &keys, matching_event()).await;
    let other = server.tenant("Other").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while proxy.seen().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the proxy saw nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(proxy.seen(), ["POST http://127.0.0.2:9/allowed HTTP/1.1"]);

    // Internal names and addresses are refused before anything leaves.
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9/x",
        "http://[::1]:9/x",
    ] {
        let attempts = attempts_to(&server, &other, url).await;
        let attempt = &attempts[0];
        assert_eq!(attempt["errorKind"], "refused_target", "{url}: {attempt}");
        let error = attempt["error"].as_str().expect("error");
        assert!(error.contains("non-public address"), "{error}");
        assert!(
            !error.contains("127.0.0.1"),
            "which address stays in the log: {error}"
        );
    }
    assert_eq!(proxy.seen().len(), 1, "{:?}", proxy.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_variables_of_the_environment_are_ignored() {
    let proxy = FakeProxy::start().await;
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = tenant_create(dir.path());
    let url = proxy.url();
    let serving = Serving::start_with(
        dir.path(),
        &[
            ("INBOX_ALLOW_PRIVATE_TARGETS", "true"),
            ("HTTP_PROXY", &url),
            ("http_proxy", &url),
            ("HTTPS_PROXY", &url),
            ("ALL_PROXY", &url),
            ("all_proxy", &url),
            ("NO_PROXY", ""),
        ],
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let base = format!("http://{}", serving.addr);
    let mut body = webhook();
    body["url"] = json!(receiver.url("/hook"));
    let created = http
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&keys.admin)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
    let accepted = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(&keys.ingest)
        .json(&matching_event())
        .send()
        .await
        .expect("sent");
    assert_eq!(accepted.status(), 202);
    receiver.wait_for(1, PATIENCE).await;
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    serving.kill();
}
