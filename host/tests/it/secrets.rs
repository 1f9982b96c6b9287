//! Secrets at rest: signing secrets and client keys are encrypted under a
//! key kept outside the database, the files are private, a leaked secret
//! can be cut off at once, and a database written under another key does
//! not start.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use inbox_webhooks::store::StoredSecret;

use crate::common::{Receiver, Reply, TestCa};
use crate::delivery::{hooked, ingest, server_with, verify};
use crate::ingest::matching_event;
use crate::network::patch;

const PATIENCE: Duration = Duration::from_secs(15);

/// A signing secret as an earlier version stored it.
const CLEAR: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every byte of the database's files (the database, its log and index).
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.join(format!("inbox.db{suffix}"));
        if let Ok(content) = std::fs::read(&file) {
            bytes.extend(content);
        }
    }
    bytes
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn no_secret_reaches_the_database_files_in_clear() {
    let ca = TestCa::new("Test CA");
    let client = ca.client("acme");
    let server = server_with(|_| {}).await;
    let (keys, id, first) = hooked(&server, "https://crm.example/hook").await;
    let path = format!("/v1/webhooks/{id}");
    let (status, _) = patch(&server, &keys, &path, json!({"tls": client.tls()})).await;
    assert_eq!(status, 200);
    let mut secrets = vec![first];
    for body in [None, Some(json!({"previousExpiresIn": "0s"}))] {
        let (status, rotated) = server
            .call(
                Method::POST,
                &format!("{path}/secret/rotate"),
                &keys.admin,
                body.as_ref(),
            )
            .await;
        assert_eq!(status, 200, "{rotated}");
        secrets.push(rotated["secret"].as_str().expect("secret").to_owned());
    }

    let dir = server.config.data_dir.clone();
    let key_body = client
        .key_pem()
        .lines()
        .nth(1)
        .expect("a base64 line")
        .to_owned();
    let check = |when: &str| {
        let bytes = database_bytes(&dir);
        assert!(!bytes.is_empty());
        // `whsec_` and base64: a secret (the schema's comments say
        // `whsec_…`, which is not one).
        let clear = bytes.windows(7).any(|w| {
            w.starts_with(b"whsec_") && (w[6].is_ascii_alphanumeric() || b"+/".contains(&w[6]))
        });
        assert!(!clear, "{when}: a signing secret in clear");
        for secret in &secrets {
            let key = secret.trim_start_matches("whsec_");
            assert!(!holds(&bytes, key), "{when}: {secret} in clear");
        }
        assert!(!holds(&bytes, &key_body), "{when}: the client key in clear");
        assert!(
            holds(&bytes, "sealed:v1:"),
            "{when}: the secrets are there, sealed"
        );
    };
    check("while serving");
    assert_eq!(mode(&dir), 0o700, "the data directory");
    for file in ["inbox.db", "inbox.db-wal", "inbox.db-shm", "secret.key"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let server = server.restart().await;
    check("after a restart");
    drop(server);
}

#[tokio::test]
async fn a_leaked_secret_can_be_cut_off_at_once() {
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    let server = server_with(|config| config.secret_overlap = Duration::from_secs(3600)).await;
    let (keys, id, leaked) = hooked(&server, &receiver.url("/hook")).await;
    let rotate = format!("/v1/webhooks/{id}/secret/rotate");
    for (body, code) in [
        (json!({"previousExpiresIn": "2h"}), "invalid_duration"),
        (json!({"previousExpiresIn": "soon"}), "invalid_duration"),
        (json!({"previousExpiresIn": 5}), "invalid_body"),
    ] {
        let (status, refused) = server
            .call(Method::POST, &rotate, &keys.admin, Some(&body))
            .await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (422, Some(code)),
            "{refused}"
        );
    }
    let (status, rotated) = server
        .call(
            Method::POST,
            &rotate,
            &keys.admin,
            Some(&json!({"previousExpiresIn": "0s"})),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let fresh = rotated["secret"].as_str().expect("secret");
    ingest(&server, &keys, matching_event()).await;
    let got = receiver.wait_for(1, PATIENCE).await;
    let signatures = got[0].headers["webhook-signature"].to_str().expect("ascii");
    assert_eq!(
        signatures.split(' ').count(),
        1,
        "only the new secret signs"
    );
    verify(fresh, &got[0]);
    let old = standardwebhooks::Webhook::new(&leaked).expect("secret");
    assert!(
        old.verify(got[0].body.as_bytes(), &got[0].headers).is_err(),
        "the leaked secret no longer verifies anything"
    );
}

#[tokio::test]
async fn clear_secrets_of_an_earlier_version_are_encrypted_at_start() {
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    let server = server_with(|_| {}).await;
    let (keys, _, _) = hooked(&server, &receiver.url("/hook")).await;
    let config = server.config.clone();
    // What an earlier version stored: the secret in clear.
    let server = server.stop().await;
    let store = inbox_webhooks::server::open_store(&config)
        .await
        .expect("store");
    let clear: Vec<_> = store
        .stored_secrets()
        .await
        .expect("stored")
        .into_iter()
        .map(|secret| StoredSecret {
            text: CLEAR.to_owned(),
            ..secret
        })
        .collect();
    store.rewrite_secrets(clear).await.expect("rewrite");
    store.close().await;
    let server = server.resume().await;
    let store = inbox_webhooks::server::open_store(&config)
        .await
        .expect("store");
    let stored = store.stored_secrets().await.expect("stored");
    assert!(
        stored.iter().all(|s| s.text.starts_with("sealed:v1:")),
        "sealed at start"
    );
    store.close().await;
    ingest(&server, &keys, matching_event()).await;
    let got = receiver.wait_for(1, PATIENCE).await;
    verify(CLEAR, &got[0]);
}

#[tokio::test]
async fn a_database_written_under_another_key_does_not_start() {
    let server = server_with(|_| {}).await;
    hooked(&server, "https://crm.example/hook").await;
    let server = server.stop().await;
    let mut config = server.config.clone();
    let other = server.dir.path().join("other.key");
    config.secret_key_file = Some(other);
    let Err(error) = inbox_webhooks::server::Server::start(config).await else {
        panic!("a database sealed under another key started");
    };
    let text = format!("{error:#}");
    assert!(text.contains("INBOX_SECRET_KEY_FILE"), "{text}");
    assert!(
        text.contains("another") || text.contains("encrypted under"),
        "{text}"
    );
    assert!(!text.contains("whsec_"), "{text}");
}
