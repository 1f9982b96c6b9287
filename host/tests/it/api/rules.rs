//! `/v1/rules/validate` and `/v1/catalog`: the engine's answers, byte for
//! byte.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, corpus};

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
