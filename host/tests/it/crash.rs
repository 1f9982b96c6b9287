//! Crash safety: the server as a child process, killed with SIGKILL in the
//! middle of a stream of events, at random moments, and started again.
//! Every event that got a 202 must reach the receiver at least once, and
//! every copy of one delivery must carry the same `webhook-id`. A test
//! delivery cut short by a crash is sent once its lease runs out.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Receiver, Reply};
use crate::serve::{Serving, tenant_create};

/// A number from the process's random hasher keys: enough to vary the
/// moment of each kill from run to run.
fn random_below(n: u64) -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0u8) % n
}

fn ticket(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_event_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = tenant_create(dir.path());
    let (admin, ingest) = (keys.admin, keys.ingest);
    let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
    // A short timeout makes a short lease (timeout + 10 s): the deliveries
    // a killed process held come back sooner, and the test ends sooner.
    let settings = [
        ("INBOX_ALLOW_PRIVATE_TARGETS", "true"),
        ("INBOX_DELIVERY_TIMEOUT", "2s"),
        (
            "INBOX_RETRY_SCHEDULE",
            "200ms,200ms,200ms,200ms,200ms,200ms",
        ),
    ];
    let http = reqwest::Client::new();

    let mut server = Serving::start_with(dir.path(), &settings);
    let created = http
        .post(format!("http://{}/v1/webhooks", server.addr))
        .bearer_auth(&admin)
        .json(&json!({"name": "everything", "url": receiver.url("/"), "events": ["TicketCreated"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);

    let mut accepted = BTreeSet::new();
    let mut next = 0u32;
    for round in 0..4 {
        // Send events, four at a time, until the kill: a random moment
        // after the round's first 202 (a loaded machine may take a while to
        // answer the first one; the test is about what comes after).
        let kill_after = Duration::from_millis(100 + random_below(400));
        let mut deadline = None;
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        let before = accepted.len();
        let base = format!("http://{}", server.addr);
        let mut sending = tokio::task::JoinSet::new();
        loop {
            let now = tokio::time::Instant::now();
            if accepted.len() > before && deadline.is_none() {
                deadline = Some(now + kill_after);
            }
            if deadline.is_some_and(|d| now >= d) || now >= give_up {
                break;
            }
            for _ in 0..4 {
                next += 1;
                let (http, base, key, n) = (http.clone(), base.clone(), ingest.clone(), next);
                sending.spawn(async move {
                    let event = json!({"event": "TicketCreated", "ticketId": ticket(n)});
                    let answer = http
                        .post(format!("{base}/v1/events"))
                        .bearer_auth(&key)
                        .json(&event)
                        .send()
                        .await;
                    answer.ok().filter(|r| r.status() == 202).map(|_| n)
                });
            }
            while let Some(done) = sending.try_join_next() {
                accepted.extend(done.expect("task"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Kill while requests are in flight; only their 202s count.
        let killing = tokio::task::spawn_blocking(move || server.kill());
        while let Some(done) = sending.join_next().await {
            accepted.extend(done.expect("task"));
        }
        killing.await.expect("killed");
        assert!(
            accepted.len() > before,
            "round {round}: nothing was accepted"
        );
        server = Serving::start_with(dir.path(), &settings);
    }

    // Everything accepted arrives, each delivery under one id.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for request in receiver.received() {
            let body: Value = serde_json::from_str(&request.body).expect("json");
            let ticket = body["ticketId"].as_str().expect("ticket").to_owned();
            let id = request.headers["webhook-id"]
                .to_str()
                .expect("ascii")
                .to_owned();
            ids.entry(ticket).or_default().insert(id);
        }
        let missing = accepted
            .iter()
            .filter(|n| !ids.contains_key(&ticket(**n)))
            .count();
        if missing == 0 {
            break ids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} of {} accepted events never arrived",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (ticket, ids) in &delivered {
        assert_eq!(
            ids.len(),
            1,
            "ticket {ticket} arrived under several ids: {ids:?}"
        );
    }
    let duplicates = receiver.received().len() - delivered.len();
    eprintln!(
        "crash test: {} accepted, {} delivered, {duplicates} duplicate posts",
        accepted.len(),
        delivered.len()
    );
    server.kill();
}

/// A test delivery whose process dies during its attempt is not left
/// pending for good: once its lease runs out, the next process sends it.
#[tokio::test]
async fn a_test_delivery_cut_short_by_a_crash_is_sent_after_its_lease() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = tenant_create(dir.path());
    // The first attempt hangs: the process is killed while it waits.
    let receiver = Receiver::start(vec![Reply::Hang], Reply::ok()).await;
    let settings = [
        ("INBOX_ALLOW_PRIVATE_TARGETS", "true"),
        // A lease of 11 s: the timeout and a 10 s margin.
        ("INBOX_DELIVERY_TIMEOUT", "1s"),
    ];
    let http = reqwest::Client::new();
    let server = Serving::start_with(dir.path(), &settings);
    let created = http
        .post(format!("http://{}/v1/webhooks", server.addr))
        .bearer_auth(&keys.admin)
        .json(&json!({"name": "tested", "url": receiver.url("/"), "events": ["TicketCreated"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let testing = http
        .post(format!("http://{}/v1/webhooks/{id}/test", server.addr))
        .bearer_auth(&keys.admin)
        .json(&json!({}))
        .send();
    let testing = tokio::spawn(testing);
    let first = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(first.len(), 1, "the test attempt reached the receiver");
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .expect("killed");
    assert!(testing.await.expect("task").is_err(), "no answer: killed");

    let server = Serving::start_with(dir.path(), &settings);
    let again = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(again.len(), 2, "sent again once its lease ran out");
    assert_eq!(
        again[0].headers["webhook-id"], again[1].headers["webhook-id"],
        "the same delivery"
    );
    server.kill();
}

/// The message id of a ticket's `seq`-th reply: the order it was posted in.
fn message(seq: u32) -> String {
    format!("00000000-0000-4000-8000-{seq:012}")
}

/// Three servers on one Postgres database, events for many tickets posted
/// round-robin to all three, one server killed with SIGKILL mid-stream and
/// started again: every event answered 202 arrives, each ticket's in the
/// order they were posted, and a delivery sent twice carries one
/// `webhook-id`. A client whose server died sends the event again to
/// another, under the same `Idempotency-Key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_on_postgres_lose_nothing_when_one_is_killed() {
    use std::sync::{Arc, Mutex};

    const TICKETS: u32 = 8;
    const REPLIES: u32 = 20;
    /// The first probe ticket's number, after the stream's tickets.
    const PROBES: u32 = 1000;
    let url = crate::postgres::database().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let crate::common::Keys { admin, ingest } = crate::serve::tenant_create_on(dir.path(), &url);
    // Each attempt takes a while: the killed server dies with some in
    // flight, sent but not recorded, which another sends again once their
    // leases run out.
    let receiver = Receiver::start(Vec::new(), Reply::Slow(Duration::from_millis(150))).await;
    let settings = [
        ("INBOX_DATABASE_URL", url.as_str()),
        ("INBOX_ALLOW_PRIVATE_TARGETS", "true"),
        // A lease of 12 s (the timeout and a 10 s margin): what the killed
        // server held comes back within the test.
        ("INBOX_DELIVERY_TIMEOUT", "2s"),
        // An attempt that fails on a loaded machine is tried again within
        // the test: it is about losing nothing, not about back-off.
        (
            "INBOX_RETRY_SCHEDULE",
            "200ms,200ms,200ms,200ms,200ms,200ms",
        ),
    ];
    let mut servers: Vec<Serving> = (0..3)
        .map(|_| Serving::start_with(dir.path(), &settings))
        .collect();
    let addrs = Arc::new(Mutex::new(
        servers.iter().map(|s| s.addr.clone()).collect::<Vec<_>>(),
    ));
    let http = reqwest::Client::new();
    hook_replies(&http, &servers[0].addr, &admin, &receiver).await;
    // A webhook reaches the other instances' rule sets within a second of
    // its write (a notification, not the write's transaction): the stream
    // starts once every instance matches it, one probe ticket each.
    let ten_seconds = Duration::from_secs(10);
    for (probe, server) in servers.iter().enumerate() {
        let probe = ticket(PROBES + probe as u32);
        let reply =
            || json!({"event": "TicketFromUserReply", "ticketId": probe, "messageId": message(0)});
        let to = (&http, server.addr.as_str(), ingest.as_str());
        let what = "did not match the new webhook";
        crate::serve::posted_until(to, reply, 1, ten_seconds, what).await;
    }

    // One client per ticket, each reply after the last was accepted.
    let clients: Vec<_> = (0..TICKETS)
        .map(|t| {
            let (http, addrs, key) = (http.clone(), Arc::clone(&addrs), ingest.clone());
            tokio::spawn(async move {
                for seq in 0..REPLIES {
                    let event = json!({"event": "TicketFromUserReply", "ticketId": ticket(t),
                                       "messageId": message(seq)});
                    let mut tries = 0usize;
                    loop {
                        let addr = {
                            let addrs = addrs.lock().expect("addresses");
                            addrs[(t as usize + seq as usize + tries) % addrs.len()].clone()
                        };
                        let answer = http
                            .post(format!("http://{addr}/v1/events"))
                            .bearer_auth(&key)
                            .header("Idempotency-Key", format!("t{t}-r{seq}"))
                            .json(&event)
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        if answer.is_ok_and(|r| r.status() == 202) {
                            break;
                        }
                        tries += 1;
                        assert!(tries < 50, "ticket {t} reply {seq} was never accepted");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    // Mid-stream: the second server dies, then comes back on a new port.
    tokio::time::sleep(Duration::from_millis(300 + random_below(400))).await;
    let killed = servers.remove(1);
    tokio::task::spawn_blocking(move || killed.kill())
        .await
        .expect("killed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir_path = dir.path().to_owned();
    let settings_owned: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let back = tokio::task::spawn_blocking(move || {
        let settings: Vec<(&str, &str)> = settings_owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Serving::start_with(&dir_path, &settings)
    })
    .await
    .expect("restarted");
    addrs.lock().expect("addresses")[1].clone_from(&back.addr);
    servers.insert(1, back);
    for client in clients {
        client.await.expect("client");
    }

    // Everything arrives, in order per ticket, each under one id (the
    // stream's replies and a probe per server).
    let expected = (TICKETS * REPLIES) as usize + servers.len();
    let posts = match arrive_in_order(&receiver, expected).await {
        Ok(posts) => posts,
        Err(missing) => panic!("{missing}; not delivered:\n{}", undelivered(&url).await),
    };
    eprintln!(
        "three servers: {expected} replies delivered (a probe per server), {posts} posts in all"
    );
    for server in servers {
        server.kill();
    }
}

/// A webhook of every `TicketFromUserReply` to `receiver`, created
/// through the server at `addr`.
async fn hook_replies(http: &reqwest::Client, addr: &str, admin: &str, receiver: &Receiver) {
    let created = http
        .post(format!("http://{addr}/v1/webhooks"))
        .bearer_auth(admin)
        .json(&json!({"name": "replies", "url": receiver.url("/"),
                      "events": ["TicketFromUserReply"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
}

/// Every event without a delivered delivery, as the store has it: its
/// ticket and message, and each delivery's state and attempts, or "no
/// delivery" when nothing matched it.
async fn undelivered(url: &str) -> String {
    let mut connection = crate::postgres::connect(url).await;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT format('ticket %s message %s: %s', e.body::jsonb ->> 'ticketId',
                       e.body::jsonb ->> 'messageId',
                       CASE WHEN d.id IS NULL THEN 'no delivery'
                            ELSE format('seq %s %s head %s attempts %s due in %s ms leased for %s ms error %s',
                                        d.seq, d.state, d.head, d.attempts, d.next_attempt_at - now,
                                        d.leased_until - now, d.last_error) END)
         FROM events e LEFT JOIN deliveries d ON d.event_id = e.id,
              (SELECT (extract(epoch FROM now()) * 1000)::BIGINT AS now) AS clock
         WHERE d.state IS DISTINCT FROM 'succeeded'
         ORDER BY e.received_at, d.seq",
    )
    .fetch_all(&mut connection)
    .await
    .expect("undelivered events");
    rows.into_iter()
        .map(|(line,)| line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `expected` replies have arrived (an error saying how many
/// did after a minute), then checks that each ticket's arrived in the
/// order they were posted (`messageId`, first arrivals) and that each was
/// posted under one `webhook-id`: how many posts the receiver got in all.
async fn arrive_in_order(receiver: &Receiver, expected: usize) -> Result<usize, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let received = receiver.received();
        let mut first: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut ids: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for request in &received {
            let body: Value = serde_json::from_str(&request.body).expect("json");
            let ticket = body["ticketId"].as_str().expect("ticket").to_owned();
            let message = body["messageId"].as_str().expect("message").to_owned();
            let id = request.headers["webhook-id"]
                .to_str()
                .expect("ascii")
                .to_owned();
            let seen = first.entry(ticket.clone()).or_default();
            if !seen.contains(&message) {
                seen.push(message.clone());
            }
            ids.entry((ticket, message)).or_default().insert(id);
        }
        let arrived: usize = first.values().map(Vec::len).sum();
        if arrived == expected {
            for (ticket, messages) in &first {
                let mut ordered = messages.clone();
                ordered.sort();
                assert_eq!(messages, &ordered, "ticket {ticket} arrived out of order");
            }
            for ((ticket, message), ids) in &ids {
                assert_eq!(ids.len(), 1, "{ticket}/{message} arrived under {ids:?}");
            }
            return Ok(received.len());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{arrived} of {expected} accepted replies arrived"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One busy ticket: replies posted one after another faster than the
/// receiver takes them, so that its queue grows and each finished delivery
/// hands the next one on, leased; the server is killed with SIGKILL
/// mid-stream and started again. Every reply answered 202 arrives, in the
/// order posted, each under one `webhook-id`: a delivery handed on but not
/// sent when the process died waits for its lease, then goes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_tickets_order_survives_kill_9() {
    const REPLIES: u32 = 120;
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = tenant_create(dir.path());
    let receiver = Receiver::start(Vec::new(), Reply::Slow(Duration::from_millis(15))).await;
    let settings = [
        ("INBOX_ALLOW_PRIVATE_TARGETS", "true"),
        // A lease of 11 s: what the killed process held comes back within
        // the test.
        ("INBOX_DELIVERY_TIMEOUT", "1s"),
    ];
    let http = reqwest::Client::new();
    let mut server = Serving::start_with(dir.path(), &settings);
    hook_replies(&http, &server.addr, &keys.admin, &receiver).await;

    let kill_at = 30 + random_below(40) as u32;
    for seq in 0..REPLIES {
        if seq == kill_at {
            let backlog = receiver.received().len();
            assert!(
                (backlog as u32) < seq,
                "the queue should have grown: {backlog} of {seq} delivered"
            );
            tokio::task::spawn_blocking(move || server.kill())
                .await
                .expect("killed");
            server = Serving::start_with(dir.path(), &settings);
        }
        let event = json!({"event": "TicketFromUserReply", "ticketId": ticket(0),
                           "messageId": message(seq)});
        let answer = http
            .post(format!("http://{}/v1/events", server.addr))
            .bearer_auth(&keys.ingest)
            .header("Idempotency-Key", format!("r{seq}"))
            .json(&event)
            .send()
            .await
            .expect("sent");
        assert_eq!(answer.status(), 202, "reply {seq}");
    }
    let posts = arrive_in_order(&receiver, REPLIES as usize)
        .await
        .unwrap_or_else(|missing| panic!("{missing}"));
    eprintln!("busy ticket: {REPLIES} replies delivered, {posts} posts in all");
    server.kill();
}
