//! The stores against real databases: every test of what a store promises
//! runs on both backends (the conformance suite, [`conformance!`]), SQLite
//! in a temporary file and Postgres in a throwaway cluster; tests of one
//! backend's own ways (files, the serving lock) follow it.

use super::{Millis, PgStore, Quota, SqliteStore, Store, StoreError, WebhookRecord, now};

#[allow(dead_code, reason = "the clusters of integration tests, not used here")]
#[path = "../../tests/support/postgres.rs"]
mod postgres;

/// Room for every test's webhooks.
const QUOTA: Quota = Quota {
    webhooks: 1_000,
    pattern_weight: 1_000,
};
use crate::keys::{KeyKind, NewKey, digest};

/// The database a conformance test runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A test database: its URL, for statements a test makes behind the
/// store's back, and the directory an SQLite file lives in (removed when
/// dropped).
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    /// Runs `sql` (no parameters: values written in) on a connection of
    /// its own.
    async fn execute(&self, sql: &str) {
        use sqlx::Connection as _;
        if self.url.starts_with("sqlite:") {
            let mut connection = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query(sql).execute(&mut connection).await.expect(sql);
        } else {
            let mut connection = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query(sql).execute(&mut connection).await.expect(sql);
        }
    }

    /// The one integer (or NULL) `sql` selects.
    async fn integer(&self, sql: &str) -> Option<i64> {
        use sqlx::Connection as _;
        if self.url.starts_with("sqlite:") {
            let mut connection = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_one(&mut connection)
                .await
                .expect(sql)
        } else {
            let mut connection = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_one(&mut connection)
                .await
                .expect(sql)
        }
    }
}

/// Another handle on `db`, as a second server process would have.
async fn open_again(db: &Db) -> Box<dyn Store> {
    if db.url.starts_with("sqlite:") {
        Box::new(SqliteStore::open(&db.url).await.expect("open again"))
    } else {
        Box::new(PgStore::open(&db.url).await.expect("open again"))
    }
}

/// A fresh store of `backend`, and its database.
async fn open(backend: Backend) -> (Db, Box<dyn Store>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            let store = SqliteStore::open(&url).await.expect("open");
            let db = Db {
                url,
                _dir: Some(dir),
            };
            (db, Box::new(store))
        }
        Backend::Postgres => {
            let url = postgres::database().await;
            let store = PgStore::open(&url).await.expect("open");
            (Db { url, _dir: None }, Box::new(store))
        }
    }
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
        disabled_reason: None,
        client_tls: None,
        pattern_weight: Some(0),
        paused_until: None,
    }
}

async fn tenants_are_unique(backend: Backend) {
    let (_db, store) = open(backend).await;
    store.create_tenant("acme", "Acme").await.expect("create");
    let again = store.create_tenant("acme", "Other").await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let tenants = store.tenants().await.expect("list");
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].name, "Acme");
}

async fn a_key_authenticates_until_revoked(backend: Backend) {
    let (_db, store) = open(backend).await;
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

async fn keys_need_a_tenant(backend: Backend) {
    let (_db, store) = open(backend).await;
    let key = NewKey::generate(KeyKind::Ingest);
    let error = store.create_key("ghost", KeyKind::Ingest, &key).await;
    assert!(matches!(error, Err(StoreError::NotFound(_))), "{error:?}");
}

async fn webhooks_page_by_id_and_stay_in_their_tenant(backend: Backend) {
    let (_db, store) = open(backend).await;
    store.create_tenant("a", "A").await.expect("a");
    store.create_tenant("b", "B").await.expect("b");
    for id in ["wh_3", "wh_1", "wh_2"] {
        store
            .create_webhook(&record("a", id), "whsec_x", QUOTA)
            .await
            .expect("create");
    }
    store
        .create_webhook(&record("b", "wh_0"), "whsec_y", QUOTA)
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

async fn updates_are_refused_on_a_stale_revision(backend: Backend) {
    let (_db, store) = open(backend).await;
    store.create_tenant("a", "A").await.expect("a");
    let original = record("a", "wh_1");
    store
        .create_webhook(&original, "whsec_x", QUOTA)
        .await
        .expect("create");
    let next = WebhookRecord {
        revision: 2,
        enabled: false,
        ..original.clone()
    };
    assert!(store.update_webhook(&next, QUOTA).await.expect("update"));
    assert!(
        !store.update_webhook(&next, QUOTA).await.expect("stale"),
        "revision 1 is gone"
    );
    let stored = store
        .webhook("a", "wh_1")
        .await
        .expect("get")
        .expect("some");
    assert_eq!((stored.revision, stored.enabled), (2, false));
}

async fn rotation_keeps_the_old_secret_for_the_overlap(backend: Backend) {
    let (_db, store) = open(backend).await;
    store.create_tenant("a", "A").await.expect("a");
    store
        .create_webhook(&record("a", "wh_1"), "whsec_old", QUOTA)
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

async fn at_most_two_secrets_sign_and_a_zero_overlap_cuts_the_old_one_off(backend: Backend) {
    let (_db, store) = open(backend).await;
    store.create_tenant("a", "A").await.expect("a");
    store
        .create_webhook(&record("a", "wh_1"), "whsec_1", QUOTA)
        .await
        .expect("create");
    let at = now();
    for secret in ["whsec_2", "whsec_3"] {
        assert!(
            store
                .rotate_secret("a", "wh_1", secret, at + 60_000)
                .await
                .expect("rotate")
        );
    }
    let signing = store.signing_secrets("wh_1", at).await.expect("secrets");
    assert_eq!(signing, ["whsec_3", "whsec_2"], "the first is gone");
    let stored = store.stored_secrets().await.expect("stored");
    assert_eq!(stored.len(), 2, "nothing kept beyond the two");
    assert!(
        store
            .rotate_secret("a", "wh_1", "whsec_4", now())
            .await
            .expect("cut off")
    );
    let signing = store.signing_secrets("wh_1", at).await.expect("secrets");
    assert_eq!(signing, ["whsec_4"], "a zero overlap keeps no previous");
}

async fn client_certificates_are_stored_changed_and_removed_with_the_webhook(backend: Backend) {
    let (_db, store) = open(backend).await;
    store.create_tenant("a", "A").await.expect("a");
    let tls = super::ClientTls {
        certificate: "CERT".to_owned(),
        key: "sealed:v1:k:KEY".to_owned(),
    };
    let original = WebhookRecord {
        client_tls: Some(tls.clone()),
        ..record("a", "wh_1")
    };
    store
        .create_webhook(&original, "whsec_1", QUOTA)
        .await
        .expect("create");
    let stored = store
        .webhook("a", "wh_1")
        .await
        .expect("get")
        .expect("some");
    assert_eq!(stored.client_tls, Some(tls.clone()));
    let secrets = store.stored_secrets().await.expect("stored");
    assert!(
        secrets.iter().any(
            |s| s.place == super::SecretPlace::ClientKey("wh_1".to_owned()) && s.text == tls.key
        ),
        "the client key is a stored secret"
    );
    let next = WebhookRecord {
        revision: 2,
        client_tls: None,
        ..stored
    };
    assert!(store.update_webhook(&next, QUOTA).await.expect("update"));
    let stored = store
        .webhook("a", "wh_1")
        .await
        .expect("get")
        .expect("some");
    assert_eq!(stored.client_tls, None);
}

async fn stored_secrets_are_rewritten_in_place(backend: Backend) {
    let (_db, store) = open(backend).await;
    store.create_tenant("a", "A").await.expect("a");
    let with_tls = WebhookRecord {
        client_tls: Some(super::ClientTls {
            certificate: "CERT".to_owned(),
            key: "KEY".to_owned(),
        }),
        ..record("a", "wh_1")
    };
    store
        .create_webhook(&with_tls, "whsec_1", QUOTA)
        .await
        .expect("create");
    let rewritten: Vec<super::StoredSecret> = store
        .stored_secrets()
        .await
        .expect("stored")
        .into_iter()
        .map(|s| super::StoredSecret {
            text: format!("sealed({})", s.text),
            ..s
        })
        .collect();
    assert_eq!(rewritten.len(), 2);
    store.rewrite_secrets(rewritten).await.expect("rewrite");
    assert_eq!(
        store.signing_secrets("wh_1", now()).await.expect("secrets"),
        ["sealed(whsec_1)"]
    );
    let stored = store
        .webhook("a", "wh_1")
        .await
        .expect("get")
        .expect("some");
    assert_eq!(
        stored.client_tls.map(|tls| tls.key).as_deref(),
        Some("sealed(KEY)")
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

fn event(id: &str, key: Option<&str>, deliveries: &[(&str, &str, &str)]) -> super::NewEvent {
    super::NewEvent {
        id: id.to_owned(),
        idempotency_key: key.map(str::to_owned),
        body: "{}".to_owned(),
        event_type: "TicketCreated".to_owned(),
        test: false,
        deliveries: deliveries
            .iter()
            .map(|(msg, webhook, ticket)| super::NewDelivery {
                id: (*msg).to_owned(),
                webhook_id: (*webhook).to_owned(),
                event_type: "TicketCreated".to_owned(),
                ticket_id: (*ticket).to_owned(),
                payload: format!(r#"{{"msg":"{msg}"}}"#),
                explanation: "{}".to_owned(),
                due: None,
                lease_until: None,
            })
            .collect(),
    }
}

/// One event per delivery (`{prefix}_0`, …): an event has at most one
/// delivery per webhook.
fn each_event(prefix: &str, deliveries: &[(&str, &str, &str)]) -> Vec<super::NewEvent> {
    deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| event(&format!("{prefix}_{i}"), None, &[*d]))
        .collect()
}

/// Stores event `event` with one delivery, `message`, to `wh_1` for
/// `ticket`.
async fn ingest_one(store: &dyn Store, event_id: &str, message: &str, ticket: &str, at: Millis) {
    store
        .ingest(
            "a",
            vec![event(event_id, None, &[(message, "wh_1", ticket)])],
            at,
        )
        .await
        .expect("ingest");
}

/// Stores `evt_<n>` with one delivery, `msg_<n>`, to `wh_1` for its
/// ticket, for each `(n, ticket)`, in that order.
async fn ingest_on(store: &dyn Store, deliveries: &[(u32, &str)], at: Millis) {
    for (n, ticket) in deliveries {
        ingest_one(store, &format!("evt_{n}"), &format!("msg_{n}"), ticket, at).await;
    }
}

async fn with_webhook(backend: Backend) -> (Db, Box<dyn Store>) {
    let (dir, store) = open(backend).await;
    store.create_tenant("a", "A").await.expect("tenant");
    let mut hook = record("a", "wh_1");
    hook.definition = r#"{"id":"wh_1","enabled":true,"url":"https://x.example/h"}"#.to_owned();
    store
        .create_webhook(&hook, "whsec_x", QUOTA)
        .await
        .expect("webhook");
    (dir, store)
}

async fn a_webhook_the_store_holds_disabled_gets_no_delivery(backend: Backend) {
    // What the matcher may not know yet (it hears of a disabling after the
    // store), the write does: the delivery for the disabled webhook is not
    // stored, the enabled one's is.
    let (_db, store) = with_webhook(backend).await;
    let mut off = record("a", "wh_2");
    off.enabled = false;
    store
        .create_webhook(&off, "whsec_y", QUOTA)
        .await
        .expect("webhook");
    let ingested = store
        .ingest(
            "a",
            vec![event(
                "evt_1",
                None,
                &[("msg_1", "wh_1", "t"), ("msg_2", "wh_2", "t")],
            )],
            now(),
        )
        .await
        .expect("ingest");
    assert_eq!(ingested[0].stored, 1);
    assert_eq!(
        store
            .deliveries_of(&["evt_1".to_owned()])
            .await
            .expect("count"),
        1
    );
}

async fn an_idempotency_key_stores_an_event_once(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let first = store
        .ingest(
            "a",
            vec![event("evt_1", Some("k"), &[("msg_1", "wh_1", "t")])],
            now(),
        )
        .await
        .expect("ingest");
    assert!(first[0].new);
    let again = store
        .ingest(
            "a",
            vec![event("evt_2", Some("k"), &[("msg_2", "wh_1", "t")])],
            now(),
        )
        .await
        .expect("ingest");
    assert_eq!(
        again[0],
        super::Ingested {
            event_id: "evt_1".to_owned(),
            new: false,
            stored: 0,
            leased: Vec::new(),
        }
    );
    assert_eq!(
        store
            .deliveries_of(&["evt_1".to_owned()])
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        store.queue().await.expect("queue").depth,
        1,
        "nothing enqueued twice"
    );
}

async fn claims_take_no_more_per_webhook_than_its_room_and_the_oldest_first(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let at = now();
    // wh_1: five deliveries due at `at`; wh_2 (deleted: no row) two, one
    // due earlier than all of them, one not due yet.
    let mut events: Vec<_> = (1..=5)
        .map(|n| {
            event(
                &format!("evt_{n}"),
                None,
                &[(&format!("msg_1_{n}"), "wh_1", &format!("t{n}"))],
            )
        })
        .collect();
    let mut early = event("evt_e", None, &[("msg_2_early", "wh_2", "t")]);
    early.deliveries[0].due = Some(at - 10);
    let mut later = event("evt_l", None, &[("msg_2_later", "wh_2", "u")]);
    later.deliveries[0].due = Some(at + 60_000);
    events.extend([early, later]);
    store.ingest("a", events, at).await.expect("ingest");

    let room = super::Room::new(10).with("wh_1", 2);
    let claimed = store.claim(at, at + 1000, 10, &room).await.expect("claim");
    let ids: Vec<_> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["msg_2_early", "msg_1_1", "msg_1_2"],
        "wh_1 gives two, oldest due first"
    );
    assert_eq!(
        claimed[0].url, None,
        "a deleted webhook's rows come without a URL"
    );

    let claimed = store
        .claim(at, at + 1000, 1, &super::Room::new(10))
        .await
        .expect("claim");
    let ids: Vec<_> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["msg_1_3"], "the limit holds over every webhook");

    let none = super::Room::new(0).with("wh_2", 5);
    assert!(
        store
            .claim(at, at + 1000, 10, &none)
            .await
            .expect("claim")
            .is_empty(),
        "no room for wh_1; wh_2's only pending row is not due"
    );
}

/// What a claim at `at` leases until `until`, room 10 everywhere.
async fn claim_all(store: &dyn Store, at: Millis, until: Millis) -> Vec<super::Claimed> {
    store
        .claim(at, until, 10, &super::Room::new(10))
        .await
        .expect("claim")
}

/// The ids a claim at `at` leases until `until`, room 10 everywhere.
async fn claim_ids(store: &dyn Store, at: Millis, until: Millis) -> Vec<String> {
    let claimed = claim_all(store, at, until).await;
    claimed.into_iter().map(|c| c.id).collect()
}

/// Records the success of a delivery its holder sent.
async fn succeed(store: &dyn Store, delivery: &super::Claimed) {
    store
        .finish(
            &delivery.id,
            &delivery.lease,
            None,
            super::Next::Succeeded,
            super::Health::Healthy,
            None,
        )
        .await
        .expect("finish");
}

async fn claims_keep_ticket_order_and_leases(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let at = now();
    store
        .ingest(
            "a",
            vec![
                event("evt_1", None, &[("msg_1", "wh_1", "t1")]),
                event("evt_2", None, &[("msg_2", "wh_1", "t1")]),
                event("evt_3", None, &[("msg_3", "wh_1", "t2")]),
            ],
            at,
        )
        .await
        .expect("ingest");
    let claimed = store
        .claim(at, at + 1000, 10, &super::Room::new(10))
        .await
        .expect("claim");
    let ids: Vec<_> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["msg_1", "msg_3"],
        "msg_2 waits for msg_1 of the same ticket"
    );
    assert_eq!(claimed[0].url.as_deref(), Some("https://x.example/h"));
    assert_eq!(
        claimed[0].secrets,
        ["whsec_x"],
        "the claim carries the signing secrets"
    );
    assert!(
        store
            .claim(at, at + 1000, 10, &super::Room::new(10))
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );
    // A crashed worker's lease runs out and the row comes back, under a
    // lease of its own: the first holder can record nothing now.
    let back = claim_all(store.as_ref(), at + 1000, at + 2000).await;
    assert_eq!(back.len(), 2);
    let late = store
        .finish(
            "msg_1",
            &claimed[0].lease,
            None,
            super::Next::Failed,
            super::Health::Unchanged,
            None,
        )
        .await
        .expect_err("the lease is another's");
    assert!(
        matches!(late, StoreError::LeaseLost(ref id) if id == "msg_1"),
        "{late}"
    );
    store
        .release("msg_1", &claimed[0].lease)
        .await
        .expect("a stale release changes nothing");
    assert!(
        claim_ids(store.as_ref(), at + 1000, at + 2000)
            .await
            .is_empty(),
        "still leased to the second holder"
    );
    succeed(store.as_ref(), &back[0]).await;
    assert_eq!(
        claim_ids(store.as_ref(), at + 2000, at + 3000).await,
        ["msg_2", "msg_3"],
        "msg_2 is free once msg_1 is done, and older"
    );
    let skipped = store
        .claim(
            at + 3000,
            at + 4000,
            10,
            &super::Room::new(10).with("wh_1", 0),
        )
        .await
        .expect("claim");
    assert!(skipped.is_empty(), "a skipped webhook's rows stay put");
}

/// A delivery ingest leases to this process comes back ready to send and
/// no claim takes it, unless an earlier one of its ticket is pending: that
/// one waits for a claim, after the earlier one (per-ticket order).
async fn a_delivery_leased_at_ingest_needs_no_claim_unless_its_ticket_waits(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let at = now();
    let leased = |mut event: super::NewEvent| {
        for delivery in &mut event.deliveries {
            delivery.lease_until = Some(at + 1000);
        }
        event
    };
    let ingested = store
        .ingest(
            "a",
            vec![
                leased(event("evt_1", None, &[("msg_1", "wh_1", "t1")])),
                leased(event("evt_2", None, &[("msg_2", "wh_1", "t1")])),
                leased(event("evt_2b", None, &[("msg_3", "wh_1", "t2")])),
                event("evt_3", None, &[("msg_4", "wh_1", "t3")]),
            ],
            at,
        )
        .await
        .expect("ingest");
    let ids = |i: &super::Ingested| i.leased.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&ingested[0]), ["msg_1"]);
    assert!(ids(&ingested[1]).is_empty(), "msg_2 waits behind msg_1");
    assert_eq!(ids(&ingested[2]), ["msg_3"]);
    assert!(ingested[3].leased.is_empty(), "no lease asked for");
    let first = &ingested[0].leased[0];
    assert_eq!(first.url.as_deref(), Some("https://x.example/h"));
    assert!(first.enabled);
    assert_eq!(first.secrets, ["whsec_x"]);
    assert_eq!(first.payload, r#"{"msg":"msg_1"}"#);

    assert_eq!(
        claim_ids(store.as_ref(), at, at + 1000).await,
        ["msg_4"],
        "the leased ones and msg_2 are not claimed"
    );
    succeed(store.as_ref(), first).await;
    assert_eq!(
        claim_ids(store.as_ref(), at, at + 1000).await,
        ["msg_2"],
        "msg_2 is claimed once msg_1 is done"
    );
    // Like a claim's, the lease of a crashed process runs out.
    assert_eq!(
        claim_ids(store.as_ref(), at + 1000, at + 2000).await,
        ["msg_2", "msg_3", "msg_4"]
    );
}

/// Records `next` for a delivery its holder sent, asking for the ticket's
/// next deliveries with a lease until `chain`: those handed on.
async fn finish_chained(
    store: &dyn Store,
    delivery: &super::Claimed,
    next: super::Next,
    chain: Millis,
) -> Vec<super::Claimed> {
    finish_with(store, delivery, next, Some(chain)).await
}

/// Records `next` for a delivery its holder sent, with `chain` as
/// [`Store::finish`] takes it: the deliveries handed on.
async fn finish_with(
    store: &dyn Store,
    delivery: &super::Claimed,
    next: super::Next,
    chain: Option<Millis>,
) -> Vec<super::Claimed> {
    store
        .finish(
            &delivery.id,
            &delivery.lease,
            None,
            next,
            super::Health::Unchanged,
            chain,
        )
        .await
        .expect("finish")
        .next
}

/// The ids of `deliveries`, in order.
fn ids_of(deliveries: &[super::Claimed]) -> Vec<&str> {
    deliveries.iter().map(|c| c.id.as_str()).collect()
}

async fn a_finished_delivery_hands_its_ticket_on(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let store = store.as_ref();
    let at = now();
    ingest_on(
        store,
        &[(1, "t"), (2, "t"), (3, "t"), (4, "u"), (5, "v")],
        at,
    )
    .await;
    let claimed = claim_all(store, at, at + 1000).await;
    let ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["msg_1", "msg_4", "msg_5"], "each ticket's head");

    // Done: the rest of the ticket comes back leased, in order, each
    // with its target.
    let run = finish_chained(store, &claimed[0], super::Next::Succeeded, at + 1000).await;
    assert_eq!(ids_of(&run), ["msg_2", "msg_3"]);
    for next in &run {
        assert_eq!(next.url.as_deref(), Some("https://x.example/h"));
        assert_eq!(next.secrets, ["whsec_x"]);
    }
    assert!(
        claim_ids(store, at, at + 1000).await.is_empty(),
        "msg_2 and msg_3 are leased"
    );

    // A retry keeps its place at the head: nothing is handed on, and the
    // run's rest is given back (as a worker does), to wait behind it.
    let retry = super::Next::RetryAt(at + 5000);
    assert!(
        finish_chained(store, &run[0], retry, at + 1000)
            .await
            .is_empty()
    );
    store
        .release(&run[1].id, &run[1].lease)
        .await
        .expect("release");
    // Nor when the ticket has nothing more.
    assert!(
        finish_chained(store, &claimed[1], super::Next::Failed, at + 1000)
            .await
            .is_empty()
    );
    assert!(
        finish_chained(store, &claimed[2], super::Next::Succeeded, at + 1000)
            .await
            .is_empty()
    );

    // A delivery sent again goes after what its ticket has pending: msg_1
    // comes back behind msg_2 (retrying) and before msg_3.
    assert!(store.redeliver("a", "msg_1", at).await.expect("redeliver"));
    assert!(
        claim_ids(store, at, at + 1000).await.is_empty(),
        "msg_2 is not due"
    );
    let msg_2 = claim_all(store, at + 5000, at + 6000).await;
    assert_eq!(ids_of(&msg_2), ["msg_2"]);
    let run = finish_chained(store, &msg_2[0], super::Next::Succeeded, at + 6000).await;
    assert_eq!(ids_of(&run), ["msg_1", "msg_3"]);

    // An open breaker holds the next back: it becomes the head, unleased,
    // and a claim takes it once the pause is over.
    store
        .pause_webhook("wh_1", Some(at + 7000))
        .await
        .expect("pause");
    store
        .release(&run[1].id, &run[1].lease)
        .await
        .expect("release");
    let held = finish_chained(store, &run[0], super::Next::Succeeded, at + 6000).await;
    assert!(held.is_empty(), "{held:?}");
    assert!(
        claim_ids(store, at + 6000, at + 8000).await.is_empty(),
        "paused"
    );
    assert_eq!(claim_ids(store, at + 7000, at + 8000).await, ["msg_3"]);
}

/// A busy ticket is handed on in runs of at most [`super::HAND_ON`]: a
/// worker records those it sent without asking for more (their ticket's
/// next are its already), in whatever order the records commit, and the
/// last record of the run hands on the next run.
async fn a_busy_ticket_is_handed_on_in_runs(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let store = store.as_ref();
    let at = now();
    let busy: Vec<(u32, &str)> = (1..=20).map(|n| (n, "t")).chain([(21, "u")]).collect();
    ingest_on(store, &busy, at).await;
    let claimed = claim_all(store, at, at + 1000).await;
    assert_eq!(ids_of(&claimed), ["msg_1", "msg_21"]);

    let run = finish_chained(store, &claimed[0], super::Next::Succeeded, at + 1000).await;
    let expected: Vec<String> = (2..=17).map(|n| format!("msg_{n}")).collect();
    assert_eq!(ids_of(&run), expected, "the head and 15 behind it");
    assert_eq!(run.len(), super::HAND_ON);

    // Records of the run, the second before the first: whichever leaves
    // the head's place, the oldest pending becomes the head.
    for delivery in [&run[1], &run[0]] {
        let none = finish_with(store, delivery, super::Next::Succeeded, None).await;
        assert!(none.is_empty(), "nothing asked for, nothing handed on");
    }
    for delivery in &run[2..run.len() - 1] {
        finish_with(store, delivery, super::Next::Succeeded, None).await;
    }
    assert!(
        claim_ids(store, at, at + 1000).await.is_empty(),
        "msg_17, the head now, is still leased"
    );
    let rest = finish_chained(
        store,
        &run[run.len() - 1],
        super::Next::Succeeded,
        at + 1000,
    )
    .await;
    assert_eq!(ids_of(&rest), ["msg_18", "msg_19", "msg_20"]);

    // A run ends where a delivery behind the head is not free (leased
    // here: a run given back only in part).
    let held = rest[2].clone();
    store
        .release(&rest[1].id, &rest[1].lease)
        .await
        .expect("release");
    let run = finish_chained(store, &rest[0], super::Next::Succeeded, at + 1000).await;
    assert_eq!(ids_of(&run), ["msg_19"], "msg_20 is still leased");
    assert_eq!(held.id, "msg_20");
}

/// A database whose deliveries were stored before ticket heads existed
/// gets each ticket's oldest pending delivery as its head when it is
/// upgraded: nothing pending is stranded behind a queue without a head.
async fn an_upgrade_finds_each_tickets_head(backend: Backend) {
    let (db, store) = with_webhook(backend).await;
    let at = now();
    ingest_on(
        store.as_ref(),
        &[(1, "t"), (2, "t"), (3, "u"), (4, "t")],
        at,
    )
    .await;
    let done = claim_all(store.as_ref(), at, at + 1000).await;
    succeed(store.as_ref(), &done[0]).await;
    store.close().await;
    // The schema as it was before the heads migration.
    let version = match backend {
        Backend::Sqlite => 8,
        Backend::Postgres => 2,
    };
    for sql in [
        "DROP INDEX deliveries_heads",
        "ALTER TABLE deliveries DROP COLUMN head",
        "CREATE INDEX deliveries_pending ON deliveries (webhook_id, next_attempt_at)
         WHERE state = 'pending'",
        &format!("DELETE FROM _sqlx_migrations WHERE version = {version}"),
    ] {
        db.execute(sql).await;
    }
    let store = open_again(&db).await;
    let claimed = claim_all(store.as_ref(), at + 1000, at + 2000).await;
    let ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["msg_2", "msg_3"], "t's next and u's only");
    let next = finish_chained(
        store.as_ref(),
        &claimed[0],
        super::Next::Succeeded,
        at + 2000,
    )
    .await;
    assert_eq!(ids_of(&next), ["msg_4"]);
}

async fn failures_retry_then_disable_the_webhook_after_the_limit(backend: Backend) {
    let (db, store) = with_webhook(backend).await;
    let at = now();
    ingest_one(store.as_ref(), "evt_1", "msg_1", "t", at).await;
    let failed = super::Attempt {
        started_at: at,
        duration_ms: 3,
        status: Some(500),
        response: Some("oops".to_owned()),
        error_kind: Some("status".to_owned()),
        error: Some("the receiver answered 500".to_owned()),
    };
    let health = super::Health::Failing {
        disable_after: 60_000,
    };
    let disabled = store
        .finish(
            "msg_1",
            "",
            Some(&failed),
            super::Next::RetryAt(at + 5000),
            health,
            None,
        )
        .await
        .expect("finish")
        .disabled;
    assert!(!disabled, "one failure does not disable");
    let (record, attempts) = store
        .delivery("a", "msg_1")
        .await
        .expect("get")
        .expect("some");
    assert_eq!(
        (
            record.state.as_str(),
            record.attempts,
            record.next_attempt_at
        ),
        ("pending", 1, Some(at + 5000))
    );
    assert_eq!(attempts, std::slice::from_ref(&failed));
    assert_eq!(
        record.last_error.as_deref(),
        Some("the receiver answered 500")
    );

    // Pretend the run of failures began long ago.
    db.execute(&format!(
        "UPDATE webhooks SET failing_since = {}",
        at - 120_000
    ))
    .await;
    let disabled = store
        .finish(
            "msg_1",
            "",
            Some(&failed),
            super::Next::RetryAt(at + 9000),
            health,
            None,
        )
        .await
        .expect("finish")
        .disabled;
    assert!(disabled);
    let hook = store
        .webhook("a", "wh_1")
        .await
        .expect("get")
        .expect("some");
    assert!(!hook.enabled);
    assert!(
        hook.definition.contains(r#""enabled":false"#),
        "{}",
        hook.definition
    );
    assert!(hook.disabled_reason.expect("reason").contains("1m"));
}

async fn gone_disables_at_once_and_success_clears_the_failure_run(backend: Backend) {
    let (db, store) = with_webhook(backend).await;
    store
        .ingest(
            "a",
            each_event("evt", &[("msg_1", "wh_1", "t"), ("msg_2", "wh_1", "u")]),
            now(),
        )
        .await
        .expect("ingest");
    let health = super::Health::Failing {
        disable_after: 60_000,
    };
    store
        .finish("msg_1", "", None, super::Next::RetryAt(now()), health, None)
        .await
        .expect("fail");
    store
        .finish(
            "msg_1",
            "",
            None,
            super::Next::Succeeded,
            super::Health::Healthy,
            None,
        )
        .await
        .expect("ok");
    let since = db.integer("SELECT failing_since FROM webhooks").await;
    assert_eq!(since, None);
    let disabled = store
        .finish(
            "msg_2",
            "",
            None,
            super::Next::Failed,
            super::Health::Gone,
            None,
        )
        .await
        .expect("gone")
        .disabled;
    assert!(disabled);
    let hook = store
        .webhook("a", "wh_1")
        .await
        .expect("get")
        .expect("some");
    assert_eq!(
        hook.disabled_reason.as_deref(),
        Some("the receiver answered 410 Gone")
    );
}

async fn redelivery_and_pruning(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    let at = now();
    store
        .ingest(
            "a",
            vec![event("evt_1", None, &[("msg_1", "wh_1", "t")])],
            at - 10_000,
        )
        .await
        .expect("ingest");
    store
        .finish(
            "msg_1",
            "",
            None,
            super::Next::Failed,
            super::Health::Unchanged,
            None,
        )
        .await
        .expect("fail");
    assert!(store.redeliver("a", "msg_1", at).await.expect("redeliver"));
    assert!(
        !store
            .redeliver("b", "msg_1", at)
            .await
            .expect("other tenant")
    );
    let claimed = store
        .claim(at, at + 1, 10, &super::Room::new(10))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    succeed(store.as_ref(), &claimed[0]).await;
    assert_eq!(
        store.prune(at - 20_000).await.expect("prune"),
        0,
        "nothing that old"
    );
    let gone = store.prune(at + 10_000).await.expect("prune");
    assert_eq!(gone, 2, "the finished delivery and then its event");
    assert_eq!(store.delivery("a", "msg_1").await.expect("get"), None);
}

async fn a_failing_write_in_a_group_fails_alone(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    store
        .ingest("a", vec![event("evt_taken", None, &[])], now())
        .await
        .expect("first");
    let at = now();
    let good = vec![event("evt_2", None, &[("msg_2", "wh_1", "t")])];
    let clash = vec![event("evt_taken", None, &[("msg_3", "wh_1", "t")])];
    let also_good = vec![event("evt_4", None, &[("msg_4", "wh_1", "u")])];
    let (a, b, c) = tokio::join!(
        store.ingest("a", good, at),
        store.ingest("a", clash, at),
        store.ingest("a", also_good, at),
    );
    assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
    assert!(b.is_err(), "a duplicate event id is refused");
    assert_eq!(
        store.queue().await.expect("queue").depth,
        2,
        "msg_3 was rolled back"
    );
    assert!(store.delivery("a", "msg_3").await.expect("get").is_none());
}

/// The events of many requests at once, as a loaded server writes them:
/// each request answered as it would be alone, one lease per ticket.
async fn concurrent_ingests_are_answered_as_each_alone(backend: Backend) {
    let (_db, store) = with_webhook(backend).await;
    store
        .ingest("a", vec![event("evt_k", Some("k"), &[])], now())
        .await
        .expect("the key's first event");
    let at = now();
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(store);
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..64 {
        let store = std::sync::Arc::clone(&store);
        requests.spawn(async move {
            let message = format!("msg_{n}");
            let ticket = format!("t{}", n % 4);
            let mut new = event(&format!("evt_{n}"), None, &[(&message, "wh_1", &ticket)]);
            new.deliveries[0].lease_until = Some(at + 10_000);
            let repeat = event(&format!("evt_again_{n}"), Some("k"), &[]);
            let (new, repeat) = tokio::join!(
                store.ingest("a", vec![new], at),
                store.ingest("a", vec![repeat], at),
            );
            (new.expect("new event"), repeat.expect("repeated key"))
        });
    }
    let mut leased = Vec::new();
    for (new, repeat) in requests.join_all().await {
        assert!(new[0].new && new[0].stored == 1, "{new:?}");
        leased.extend(new[0].leased.iter().map(|c| c.id.clone()));
        assert!(
            !repeat[0].new && repeat[0].event_id == "evt_k",
            "{repeat:?}"
        );
    }
    assert_eq!(
        leased.len(),
        4,
        "the first of each ticket's four: {leased:?}"
    );
    assert_eq!(store.queue().await.expect("queue").depth, 64);
}

/// A group written together: leases and order as one request after the
/// other, in one transaction; a group meeting a stored idempotency key is
/// written again request by request, each answered as alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_ingest_group_answers_each_request_as_alone() {
    let (db, store) = with_webhook(Backend::Postgres).await;
    drop(store);
    let store = PgStore::open(&db.url).await.expect("open");
    let at = now();
    let leased = |id: &str, message: &str, ticket: &str| {
        let mut new = event(id, None, &[(message, "wh_1", ticket)]);
        new.deliveries[0].lease_until = Some(at + 10_000);
        new
    };
    let answers = store
        .ingest_as_group(vec![
            ("a", vec![leased("evt_1", "msg_1", "t1")], at),
            ("a", vec![leased("evt_2", "msg_2", "t1")], at),
            ("a", vec![leased("evt_3", "msg_3", "t2")], at),
        ])
        .await;
    let ids: Vec<Vec<String>> = answers
        .iter()
        .map(|a| {
            a.as_ref().expect("written")[0]
                .leased
                .iter()
                .map(|c| c.id.clone())
                .collect()
        })
        .collect();
    assert_eq!(
        ids,
        [vec!["msg_1"], vec![], vec!["msg_3"]],
        "msg_2 waits behind msg_1"
    );
    let first = &answers[0].as_ref().expect("written")[0].leased[0];
    assert_eq!(first.url.as_deref(), Some("https://x.example/h"));
    assert_eq!(first.secrets, ["whsec_x"]);
    assert_eq!(
        db.integer(
            "SELECT COUNT(DISTINCT xmin::TEXT) FROM events WHERE id IN ('evt_1', 'evt_2', 'evt_3')"
        )
        .await,
        Some(1),
        "one transaction"
    );
    succeed(&store, first).await;
    assert_eq!(claim_ids(&store, at, at + 10_000).await, ["msg_2"]);

    let mut repeat = event("evt_4", Some("k"), &[("msg_4", "wh_1", "t3")]);
    store
        .ingest("a", vec![repeat.clone()], at)
        .await
        .expect("the key's first event");
    repeat.id = "evt_5".to_owned();
    let mut mismatch = event("evt_6", Some("k"), &[]);
    mismatch.body = r#"{"other":true}"#.to_owned();
    let answers = store
        .ingest_as_group(vec![
            ("a", vec![repeat], at),
            ("a", vec![mismatch], at),
            (
                "a",
                vec![event("evt_7", None, &[("msg_7", "wh_1", "t4")])],
                at,
            ),
        ])
        .await;
    let repeated = answers[0].as_ref().expect("a repeat");
    assert_eq!(
        (repeated[0].event_id.as_str(), repeated[0].new),
        ("evt_4", false)
    );
    assert!(
        matches!(answers[1], Err(StoreError::IdempotencyMismatch(_))),
        "{:?}",
        answers[1]
    );
    assert_eq!(answers[2].as_ref().expect("new")[0].stored, 1);
    assert!(store.delivery("a", "msg_7").await.expect("get").is_some());
}

/// Keys looked up as one group: each lookup answered with its own key's
/// caller, a revoked or unknown key with none, a key presented twice
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_lookup_group_answers_each_caller() {
    let (db, store) = open(Backend::Postgres).await;
    drop(store);
    let store = PgStore::open(&db.url).await.expect("open");
    let mut made = Vec::new();
    for (tenant, kind) in [("acme", KeyKind::Admin), ("globex", KeyKind::Ingest)] {
        store.create_tenant(tenant, tenant).await.expect("tenant");
        let key = NewKey::generate(kind);
        let record = store.create_key(tenant, kind, &key).await.expect("key");
        made.push((digest(&key.secret), record));
    }
    let revoked = NewKey::generate(KeyKind::Admin);
    let record = store
        .create_key("acme", KeyKind::Admin, &revoked)
        .await
        .expect("key");
    assert!(store.revoke_key(&record.id).await.expect("revoke"));
    let answers = store
        .callers_as_group(vec![
            made[0].0.clone(),
            made[1].0.clone(),
            digest(&revoked.secret),
            digest("ik_admin_never_made"),
            made[0].0.clone(),
        ])
        .await;
    let callers: Vec<Option<(String, String, KeyKind)>> = answers
        .into_iter()
        .map(|answer| {
            answer
                .expect("looked up")
                .map(|c| (c.key_id, c.tenant_id, c.kind))
        })
        .collect();
    let acme = Some((made[0].1.id.clone(), "acme".to_owned(), KeyKind::Admin));
    let globex = Some((made[1].1.id.clone(), "globex".to_owned(), KeyKind::Ingest));
    assert_eq!(callers, [acme.clone(), globex, None, None, acme]);
}

/// Attempts recorded as one group: each answered as alone, the ticket's
/// next handed on; one lease lost among them fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_record_group_answers_each_as_alone() {
    use super::{Health, Next};
    let (db, store) = with_webhook(Backend::Postgres).await;
    drop(store);
    let store = PgStore::open(&db.url).await.expect("open");
    let at = now();
    ingest_on(
        &store,
        &[(1, "t"), (2, "t"), (3, "u"), (4, "v"), (5, "v"), (6, "v")],
        at,
    )
    .await;
    let claimed = claim_all(&store, at, at + 1000).await;
    let ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["msg_1", "msg_3", "msg_4"]);
    let mut stolen = claimed[2].clone();
    stolen.lease = "not the lease".to_owned();
    let chain = Some(at + 1000);
    let answers = store
        .finish_as_group(vec![
            (&claimed[0], Next::Succeeded, Health::Healthy, chain),
            (
                &claimed[1],
                Next::RetryAt(at + 5000),
                Health::Unchanged,
                chain,
            ),
            (&stolen, Next::Succeeded, Health::Healthy, chain),
        ])
        .await;
    let next = answers[0].as_ref().expect("recorded").next.first();
    assert_eq!(next.map(|c| c.id.as_str()), Some("msg_2"));
    assert_eq!(
        next.and_then(|c| c.url.as_deref()),
        Some("https://x.example/h")
    );
    assert!(
        answers[1].as_ref().expect("recorded").next.is_empty(),
        "a retry keeps its place"
    );
    assert!(
        matches!(answers[2], Err(StoreError::LeaseLost(_))),
        "{:?}",
        answers[2]
    );

    // All plain: one transaction, each queue's next handed to its caller.
    let msg_2 = next.expect("msg_2").clone();
    let answers = store
        .finish_as_group(vec![
            (&msg_2, Next::Succeeded, Health::Healthy, chain),
            (&claimed[2], Next::Failed, Health::Unchanged, chain),
        ])
        .await;
    assert!(
        answers[0].as_ref().expect("recorded").next.is_empty(),
        "t has nothing more"
    );
    let run = &answers[1].as_ref().expect("recorded").next;
    assert_eq!(ids_of(run), ["msg_5", "msg_6"], "v's run, in order");
    assert!(run.iter().all(|c| c.url.is_some()), "with their targets");
    assert_eq!(
        db.integer(
            "SELECT COUNT(DISTINCT xmin::TEXT) FROM deliveries WHERE id IN ('msg_2', 'msg_4')"
        )
        .await,
        Some(1),
        "one transaction"
    );
}

/// Deliveries an instance of the version before ticket heads stored
/// beside a newer one (no head) are taken up when an instance starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_instance_starting_gives_headless_queues_a_head() {
    let (db, store) = with_webhook(Backend::Postgres).await;
    let at = now();
    ingest_on(store.as_ref(), &[(1, "t"), (2, "t"), (3, "u")], at).await;
    db.execute("UPDATE deliveries SET head = FALSE").await;
    assert!(
        claim_all(store.as_ref(), at, at + 1000).await.is_empty(),
        "headless"
    );
    let again = open_again(&db).await;
    assert_eq!(
        claim_ids(again.as_ref(), at, at + 1000).await,
        ["msg_1", "msg_3"]
    );
}

#[tokio::test]
async fn an_in_memory_database_is_refused_with_a_reason() {
    for url in ["sqlite::memory:", "sqlite://inbox.db?mode=memory"] {
        let error = SqliteStore::open(url).await.expect_err("refused");
        assert!(matches!(error, StoreError::InMemory), "{url}: {error}");
        assert!(error.to_string().contains("in-memory"), "{error}");
    }
    assert!(
        !std::path::Path::new("file:sqlx-in-memory-0").exists(),
        "no file was made for it"
    );
}

async fn writes_after_close_fail_cleanly(backend: Backend) {
    let (_db, store) = open(backend).await;
    store.close().await;
    let error = store.create_tenant("a", "A").await.expect_err("closed");
    assert!(
        matches!(error, StoreError::WriterGone | StoreError::Unavailable(_)),
        "{error}"
    );
}

async fn tenants_take_turns_in_a_claim_within_their_room(backend: Backend) {
    let (_db, store) = open(backend).await;
    for tenant in ["a", "b"] {
        store.create_tenant(tenant, tenant).await.expect("tenant");
    }
    // Tenant a's backlog is older than b's one delivery, and larger than
    // the claim: due order alone would give a every row.
    let backlog: Vec<(String, String, String)> = (0..20)
        .map(|i| {
            (
                format!("msg_a{i:02}"),
                format!("wh_a{}", i % 4),
                format!("t{i}"),
            )
        })
        .collect();
    let backlog: Vec<(&str, &str, &str)> = backlog
        .iter()
        .map(|(m, w, t)| (m.as_str(), w.as_str(), t.as_str()))
        .collect();
    let at = now();
    store
        .ingest("a", each_event("evt_a", &backlog), at - 1_000)
        .await
        .expect("a");
    store
        .ingest(
            "b",
            vec![event("evt_b", None, &[("msg_b", "wh_b", "t")])],
            at,
        )
        .await
        .expect("b");
    let claimed = store
        .claim(at, at + 1_000, 4, &super::Room::new(10))
        .await
        .expect("claim");
    let ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.contains(&"msg_b"), "b gets its turn: {ids:?}");
    assert_eq!(ids[0], "msg_a00", "the oldest due goes first: {ids:?}");

    // A tenant at its limit gets nothing, whatever its webhooks' room.
    let claimed = store
        .claim(
            at,
            at + 1_000,
            10,
            &super::Room::new(10).with_tenant("a", 0),
        )
        .await
        .expect("claim");
    assert!(claimed.is_empty(), "{claimed:?}");
    let claimed = store
        .claim(
            at,
            at + 1_000,
            10,
            &super::Room::new(10).with_tenant("a", 3),
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3, "at most the tenant's room");
    assert!(claimed.iter().all(|c| c.tenant_id == "a"));
}

#[tokio::test]
async fn the_database_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("inbox.db");
    // An earlier version's file, readable by everyone.
    std::fs::write(&path, b"").expect("file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    store.create_tenant("a", "A").await.expect("write");
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).expect(&file).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    store.close().await;
}

#[tokio::test]
async fn one_process_serves_a_database_until_it_closes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let serving = SqliteStore::serve(&url).await.expect("the first serves");
    let error = SqliteStore::serve(&url)
        .await
        .expect_err("a second is refused");
    assert!(
        matches!(error, StoreError::AlreadyServed { pid: Some(pid), .. } if pid == std::process::id()),
        "{error}"
    );
    // A command opens it beside the server.
    let command = SqliteStore::open(&url).await.expect("a command opens it");
    command.tenants().await.expect("and reads");
    command.close().await;
    serving.close().await;
    SqliteStore::serve(&url)
        .await
        .expect("free once the first closed it");
}

/// An open circuit breaker, recorded by one process, holds the webhook's
/// deliveries back from every claim until its pause ends or it closes.
async fn a_paused_webhooks_deliveries_wait_for_the_pause(backend: Backend) {
    let (db, store) = with_webhook(backend).await;
    let at = now();
    ingest_one(store.as_ref(), "evt_1", "msg_1", "t", at).await;
    store
        .pause_webhook("wh_1", Some(at + 1000))
        .await
        .expect("pause");
    let mut leased = event("evt_2", None, &[("msg_2", "wh_1", "u")]);
    leased.deliveries[0].lease_until = Some(at + 10);
    let ingested = store.ingest("a", vec![leased], at).await.expect("ingest");
    assert!(ingested[0].leased.is_empty(), "no lease at ingest either");
    let other = open_again(&db).await;
    assert!(
        claim_ids(other.as_ref(), at, at + 10).await.is_empty(),
        "another process leaves it"
    );
    assert_eq!(
        claim_ids(other.as_ref(), at + 1000, at + 1010).await,
        ["msg_1", "msg_2"],
        "the pause is over"
    );
    store
        .pause_webhook("wh_1", Some(at + 5000))
        .await
        .expect("pause");
    assert!(
        claim_ids(store.as_ref(), at + 2000, at + 2010)
            .await
            .is_empty()
    );
    store.pause_webhook("wh_1", None).await.expect("close");
    assert_eq!(
        claim_ids(store.as_ref(), at + 2000, at + 2010).await,
        ["msg_1", "msg_2"],
        "closed"
    );
}

/// Claims and succeeds deliveries until claims keep coming back empty,
/// logging each as sent.
async fn send_all(store: &dyn Store, sent: &std::sync::Mutex<Vec<String>>) {
    let mut idle = 0;
    while idle < 20 {
        let at = now();
        let claimed = store
            .claim(at, at + 60_000, 3, &super::Room::new(3))
            .await
            .expect("claim");
        if claimed.is_empty() {
            idle += 1;
            tokio::task::yield_now().await;
            continue;
        }
        idle = 0;
        for delivery in claimed {
            sent.lock().expect("log").push(delivery.id.clone());
            store
                .finish(
                    &delivery.id,
                    &delivery.lease,
                    None,
                    super::Next::Succeeded,
                    super::Health::Healthy,
                    None,
                )
                .await
                .expect("finish");
        }
    }
}

/// Two handles on one database (two server processes) claiming at once:
/// no delivery is leased by both, and each ticket's deliveries are sent
/// in the order they were stored.
async fn concurrent_claims_share_the_queue_in_ticket_order(backend: Backend) {
    const TICKETS: usize = 5;
    const PER_TICKET: usize = 12;
    let (db, first) = with_webhook(backend).await;
    let second = open_again(&db).await;
    for n in 0..PER_TICKET {
        let messages: Vec<(String, String)> = (0..TICKETS)
            .map(|t| (format!("msg_{t}_{n:02}"), format!("t{t}")))
            .collect();
        let deliveries: Vec<(&str, &str, &str)> = messages
            .iter()
            .map(|(msg, ticket)| (msg.as_str(), "wh_1", ticket.as_str()))
            .collect();
        first
            .ingest("a", each_event(&format!("evt_{n}"), &deliveries), now())
            .await
            .expect("ingest");
    }
    let sent = std::sync::Mutex::new(Vec::<String>::new());
    tokio::join!(
        send_all(first.as_ref(), &sent),
        send_all(second.as_ref(), &sent)
    );
    let sent = sent.into_inner().expect("log");
    let mut once = sent.clone();
    once.sort();
    once.dedup();
    assert_eq!(
        once.len(),
        sent.len(),
        "a delivery was sent twice: {sent:?}"
    );
    assert_eq!(sent.len(), TICKETS * PER_TICKET, "every delivery was sent");
    for t in 0..TICKETS {
        let ticket: Vec<&String> = sent
            .iter()
            .filter(|id| id.starts_with(&format!("msg_{t}_")))
            .collect();
        let mut ordered = ticket.clone();
        ordered.sort();
        assert_eq!(ticket, ordered, "ticket t{t} out of order");
    }
    assert_eq!(first.queue().await.expect("queue").depth, 0);
}

/// Each conformance test, once per backend: `sqlite::name` and
/// `postgres::name`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

conformance!(
    tenants_are_unique,
    a_key_authenticates_until_revoked,
    keys_need_a_tenant,
    webhooks_page_by_id_and_stay_in_their_tenant,
    updates_are_refused_on_a_stale_revision,
    rotation_keeps_the_old_secret_for_the_overlap,
    at_most_two_secrets_sign_and_a_zero_overlap_cuts_the_old_one_off,
    client_certificates_are_stored_changed_and_removed_with_the_webhook,
    stored_secrets_are_rewritten_in_place,
    a_webhook_the_store_holds_disabled_gets_no_delivery,
    an_idempotency_key_stores_an_event_once,
    claims_take_no_more_per_webhook_than_its_room_and_the_oldest_first,
    claims_keep_ticket_order_and_leases,
    a_delivery_leased_at_ingest_needs_no_claim_unless_its_ticket_waits,
    a_finished_delivery_hands_its_ticket_on,
    a_busy_ticket_is_handed_on_in_runs,
    an_upgrade_finds_each_tickets_head,
    failures_retry_then_disable_the_webhook_after_the_limit,
    gone_disables_at_once_and_success_clears_the_failure_run,
    redelivery_and_pruning,
    a_failing_write_in_a_group_fails_alone,
    concurrent_ingests_are_answered_as_each_alone,
    writes_after_close_fail_cleanly,
    tenants_take_turns_in_a_claim_within_their_room,
    concurrent_claims_share_the_queue_in_ticket_order,
    a_paused_webhooks_deliveries_wait_for_the_pause,
);

/// Several instances prune one Postgres database in turn: while one holds
/// the pruning lock, another prunes nothing.
#[tokio::test]
async fn postgres_instances_prune_one_at_a_time() {
    use sqlx::Connection as _;
    let (db, store) = with_webhook(Backend::Postgres).await;
    let at = now();
    ingest_one(store.as_ref(), "evt_1", "msg_1", "t", at).await;
    store
        .finish(
            "msg_1",
            "",
            None,
            super::Next::Succeeded,
            super::Health::Healthy,
            None,
        )
        .await
        .expect("finish");
    let mut other = sqlx::PgConnection::connect(&db.url)
        .await
        .expect("another instance's connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(super::postgres::PRUNE_LOCK)
        .execute(&mut other)
        .await
        .expect("lock");
    assert_eq!(store.prune(at + 10_000).await.expect("prune"), 0);
    assert!(store.delivery("a", "msg_1").await.expect("get").is_some());
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(super::postgres::PRUNE_LOCK)
        .execute(&mut other)
        .await
        .expect("unlock");
    assert_eq!(store.prune(at + 10_000).await.expect("prune"), 2);
}

mod history;
