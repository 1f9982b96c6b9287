//! The SQLite store against a temporary database.

use super::{SqliteStore, Store, StoreError, WebhookRecord, now};
use crate::keys::{KeyKind, NewKey, digest};

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = SqliteStore::open(&url).await.expect("open");
    (dir, store)
}

fn record(tenant: &str, id: &str) -> WebhookRecord {
    let at = now();
    WebhookRecord {
        id: id.to_owned(),
        tenant_id: tenant.to_owned(),
        definition: format!(r#"{{"id":"{id}"}}"#),
        enabled: true,
        revision: 1,
        created_at: at,
        updated_at: at,
    }
}

#[tokio::test]
async fn tenants_are_unique() {
    let (_dir, store) = open().await;
    store.create_tenant("acme", "Acme").await.expect("create");
    let again = store.create_tenant("acme", "Other").await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let tenants = store.tenants().await.expect("list");
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].name, "Acme");
}

#[tokio::test]
async fn a_key_authenticates_until_revoked() {
    let (_dir, store) = open().await;
    store.create_tenant("acme", "Acme").await.expect("tenant");
    let key = NewKey::generate(KeyKind::Admin);
    let record = store
        .create_key("acme", KeyKind::Admin, &key)
        .await
        .expect("key");
    let caller = store.caller(&digest(&key.secret)).await.expect("lookup");
    assert_eq!(caller.map(|c| c.tenant_id), Some("acme".to_owned()));
    assert!(store.revoke_key(&record.id).await.expect("revoke"));
    assert!(
        !store.revoke_key(&record.id).await.expect("twice"),
        "already revoked"
    );
    assert_eq!(
        store.caller(&digest(&key.secret)).await.expect("lookup"),
        None
    );
    let listed = store.keys("acme").await.expect("keys");
    assert!(listed[0].revoked_at.is_some());
}

#[tokio::test]
async fn keys_need_a_tenant() {
    let (_dir, store) = open().await;
    let key = NewKey::generate(KeyKind::Ingest);
    let error = store.create_key("ghost", KeyKind::Ingest, &key).await;
    assert!(matches!(error, Err(StoreError::NotFound(_))), "{error:?}");
}

#[tokio::test]
async fn webhooks_page_by_id_and_stay_in_their_tenant() {
    let (_dir, store) = open().await;
    store.create_tenant("a", "A").await.expect("a");
    store.create_tenant("b", "B").await.expect("b");
    for id in ["wh_3", "wh_1", "wh_2"] {
        store
            .create_webhook(&record("a", id), "whsec_x")
            .await
            .expect("create");
    }
    store
        .create_webhook(&record("b", "wh_0"), "whsec_y")
        .await
        .expect("create");
    let first = store.webhooks("a", None, 2).await.expect("page 1");
    let ids: Vec<_> = first.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["wh_1", "wh_2"]);
    let rest = store.webhooks("a", Some("wh_2"), 2).await.expect("page 2");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, "wh_3");
    assert_eq!(store.webhook("b", "wh_1").await.expect("get"), None);
    assert!(!store.delete_webhook("b", "wh_1").await.expect("delete"));
    let counts = store.webhook_counts().await.expect("counts");
    assert_eq!((counts.enabled, counts.disabled), (4, 0));
}

#[tokio::test]
async fn updates_are_refused_on_a_stale_revision() {
    let (_dir, store) = open().await;
    store.create_tenant("a", "A").await.expect("a");
    let original = record("a", "wh_1");
    store
        .create_webhook(&original, "whsec_x")
        .await
        .expect("create");
    let next = WebhookRecord {
        revision: 2,
        enabled: false,
        ..original.clone()
    };
    assert!(store.update_webhook(&next).await.expect("update"));
    assert!(
        !store.update_webhook(&next).await.expect("stale"),
        "revision 1 is gone"
    );
    let stored = store
        .webhook("a", "wh_1")
        .await
        .expect("get")
        .expect("some");
    assert_eq!((stored.revision, stored.enabled), (2, false));
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_the_overlap() {
    let (_dir, store) = open().await;
    store.create_tenant("a", "A").await.expect("a");
    store
        .create_webhook(&record("a", "wh_1"), "whsec_old")
        .await
        .expect("create");
    let at = now();
    assert!(
        store
            .rotate_secret("a", "wh_1", "whsec_new", at + 60_000)
            .await
            .expect("rotate")
    );
    let during = store.signing_secrets("wh_1", at).await.expect("secrets");
    assert_eq!(
        during,
        ["whsec_new", "whsec_old"],
        "new first, old alongside"
    );
    let after = store
        .signing_secrets("wh_1", at + 60_001)
        .await
        .expect("secrets");
    assert_eq!(after, ["whsec_new"]);
    assert!(
        !store
            .rotate_secret("b", "wh_1", "whsec_x", at)
            .await
            .expect("other tenant"),
        "another tenant's webhook is not found"
    );
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = SqliteStore::open(&url).await.expect("open");
    store.create_tenant("acme", "Acme").await.expect("tenant");
    store.close().await;
    let store = SqliteStore::open(&url).await.expect("reopen");
    assert_eq!(store.tenants().await.expect("list").len(), 1);
}
