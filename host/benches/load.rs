//! The load tool: drives ingest against a server on this machine, with a
//! receiver on 127.0.0.1 for its deliveries, and prints a table.
//!
//! ```sh
//! cargo bench -p inbox-webhooks --bench load               # 10 s per phase
//! cargo bench -p inbox-webhooks --bench load -- --seconds 30
//! cargo bench -p inbox-webhooks --bench load -- --webhook-concurrency 4
//! ```
//!
//! Phases: single-event requests from 32 concurrent connections, each
//! sending its next request as soon as the last is answered (the most the
//! server takes); then the same 32 connections offering a steady 5,000
//! requests/s between them (latency at a given rate, each request timed
//! from when it was due, so a late server is not hidden by sending less);
//! then batches of 100 events from 8 connections, delivered to the HTTP
//! receiver and then, with the webhook's URL changed, to an HTTPS receiver
//! (a CA made here, given to the server as `extra_ca_file`) speaking
//! HTTP/1.1 and then HTTP/2, so the cost of TLS shows beside plain HTTP in
//! one run. The server is the real one (`Server::start`,
//! SQLite in a temporary directory, `synchronous = FULL`), with one webhook
//! that every event matches, so each event is one delivery. Measured:
//! accepted events per second, deliveries per second (POSTs the receiver
//! got, until the queue is drained), ingest latency (request to 202) and
//! event-to-POST latency (request sent to the receiver's POST), p50 and p99.
#![allow(clippy::print_stdout, reason = "a bench binary prints its table")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// When each ticket's first POST arrived, and how many have.
#[derive(Clone, Default)]
struct Arrivals {
    at: Arc<Mutex<HashMap<String, Instant>>>,
    count: Arc<std::sync::atomic::AtomicUsize>,
}

/// Where a phase's deliveries go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Http,
    /// HTTPS, the receiver offering only HTTP/1.1.
    Https1,
    /// HTTPS, the receiver offering HTTP/2 (and HTTP/1.1).
    Https2,
}

struct Phase {
    name: &'static str,
    target: Target,
    connections: usize,
    batch: usize,
    /// Requests per second offered by all connections together; `None`:
    /// each connection sends again as soon as it is answered.
    rate: Option<f64>,
}

struct Row {
    name: &'static str,
    requests_per_second: f64,
    events_per_second: f64,
    deliveries_per_second: f64,
    ingest: (Duration, Duration),
    to_post: (Duration, Duration),
    failed: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn ticket(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// The receiver's handler: records when each ticket's first POST came.
fn receiver_app(arrivals: Arrivals) -> axum::Router {
    axum::Router::new().fallback(move |body: String| {
        let arrivals = arrivals.clone();
        async move {
            let now = Instant::now();
            if let Ok(event) = serde_json::from_str::<Value>(&body)
                && let Some(ticket) = event["ticketId"].as_str()
            {
                let first = arrivals
                    .at
                    .lock()
                    .expect("lock")
                    .insert(ticket.to_owned(), now)
                    .is_none();
                if first {
                    arrivals
                        .count
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            "ok"
        }
    })
}

async fn receiver(arrivals: Arrivals) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, receiver_app(arrivals)).await });
    format!("http://{addr}/hook")
}

/// An HTTPS receiver on 127.0.0.1 with a certificate from `ca`, offering
/// `alpn`; its URL.
async fn tls_receiver(
    arrivals: Arrivals,
    ca: &(rcgen::Certificate, rcgen::KeyPair),
    alpn: &[&[u8]],
) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
    let certificate = params.signed_by(&key, &ca.0, &ca.1).expect("certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = receiver_app(arrivals);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            });
        }
    });
    format!("https://{addr}/hook")
}

async fn run_phase(
    phase: &Phase,
    seconds: u64,
    base: &str,
    key: &str,
    arrivals: &Arrivals,
    first_ticket: u64,
) -> (Row, u64) {
    let arrived_before = arrivals.count.load(std::sync::atomic::Ordering::Relaxed);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(phase.connections)
        .build()
        .expect("client");
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(first_ticket));
    let start = Instant::now();
    let stop = start + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..phase.connections as u32 {
        let (http, base, key, sent, next) = (
            http.clone(),
            base.to_owned(),
            key.to_owned(),
            Arc::clone(&sent),
            Arc::clone(&next),
        );
        let batch = phase.batch;
        // A paced connection sends every `interval`, the connections spread
        // evenly over it.
        let interval = phase
            .rate
            .map(|rate| Duration::from_secs_f64(phase.connections as f64 / rate));
        let offset = interval.map_or(Duration::ZERO, |i| {
            i * connection / phase.connections as u32
        });
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            let mut events = 0;
            let mut due = start + offset;
            while Instant::now() < stop {
                if interval.is_some() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let first = next.fetch_add(batch as u64, std::sync::atomic::Ordering::Relaxed);
                let tickets: Vec<String> = (first..first + batch as u64).map(ticket).collect();
                let bodies: Vec<Value> = tickets
                    .iter()
                    .map(|t| json!({"event": "TicketCreated", "ticketId": t, "ticket": {"channel": "email", "subject": "load"}}))
                    .collect();
                let body = if batch == 1 { bodies[0].clone() } else { Value::Array(bodies) };
                // A paced request is timed from when it was due.
                let began = if interval.is_some() { due } else { Instant::now() };
                due += interval.unwrap_or_default();
                {
                    let mut sent = sent.lock().expect("lock");
                    for t in &tickets {
                        sent.insert(t.clone(), began);
                    }
                }
                let answer = http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status() == 202 => {
                        latencies.push(began.elapsed());
                        events += batch;
                    }
                    _ => failed += 1,
                }
            }
            (latencies, failed, events)
        });
    }
    let mut latencies = Vec::new();
    let (mut failed, mut events) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (l, f, e) = done.expect("task");
        latencies.extend(l);
        failed += f;
        events += e;
    }
    let elapsed = start.elapsed();
    // Wait for the deliveries of this phase to drain: each accepted event
    // of it has arrived once (the earlier phases drained before it began).
    let target = arrived_before + events;
    let drain_deadline = Instant::now() + Duration::from_secs(180);
    while arrivals.count.load(std::sync::atomic::Ordering::Relaxed) < target
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (to_post, last_arrival) = {
        let arrived = arrivals.at.lock().expect("lock");
        let sent = sent.lock().expect("lock");
        let to_post: Vec<Duration> = sent
            .iter()
            .filter_map(|(t, at)| arrived.get(t).map(|got| got.saturating_duration_since(*at)))
            .collect();
        let last = sent
            .keys()
            .filter_map(|t| arrived.get(t))
            .max()
            .copied()
            .unwrap_or(start);
        (to_post, last)
    };
    let mut to_post = to_post;
    latencies.sort_unstable();
    to_post.sort_unstable();
    let delivered = to_post.len();
    let row = Row {
        name: phase.name,
        requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        events_per_second: events as f64 / elapsed.as_secs_f64(),
        deliveries_per_second: delivered as f64 / (last_arrival - start).as_secs_f64().max(1e-9),
        ingest: (percentile(&latencies, 0.5), percentile(&latencies, 0.99)),
        to_post: (percentile(&to_post, 0.5), percentile(&to_post, 0.99)),
        failed,
    };
    (row, next.load(std::sync::atomic::Ordering::Relaxed))
}

fn main() {
    let mut seconds = 10;
    let mut webhook_concurrency = inbox_webhooks::config::Config::default().webhook_concurrency;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|s| s.parse().ok());
        match arg.as_str() {
            "--seconds" => seconds = value.unwrap_or(seconds),
            "--webhook-concurrency" => {
                webhook_concurrency = value.map_or(webhook_concurrency, |v| v as u32);
            }
            _ => {}
        }
    }
    println!("load: {seconds} s per phase, webhook_concurrency {webhook_concurrency}");
    // The server logs every request at `info`, as it does in production;
    // the lines go nowhere, but their cost is measured.
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let arrivals = Arrivals::default();
        let url = receiver(arrivals.clone()).await;
        let ca = {
            let key = rcgen::KeyPair::generate().expect("CA key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            (params.self_signed(&key).expect("CA"), key)
        };
        let ca_file = dir.path().join("bench-ca.pem");
        std::fs::write(&ca_file, ca.0.pem()).expect("CA file");
        let https1 = tls_receiver(arrivals.clone(), &ca, &[b"http/1.1"]).await;
        let https2 = tls_receiver(arrivals.clone(), &ca, &[b"h2", b"http/1.1"]).await;
        let config = inbox_webhooks::config::Config {
            bind: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            extra_ca_file: Some(ca_file),
            allow_private_targets: true,
            webhook_concurrency,
            log: "warn".to_owned(),
            ..Default::default()
        };
        // The tenant and its keys, as `tenant create` makes them.
        let command = inbox_webhooks::cli::TenantCommand::Create(inbox_webhooks::cli::TenantCreateArgs {
            name: "Load".to_owned(),
            id: None,
            json: true,
            store: inbox_webhooks::cli::StoreArgs {
                config: None,
                data_dir: Some(dir.path().to_path_buf()),
                database_url: None,
            },
        });
        let mut out = Vec::new();
        inbox_webhooks::commands::admin::tenant(&command, &mut out)
            .await
            .expect("tenant");
        let keys: Value = serde_json::from_slice(&out).expect("keys");
        let server = inbox_webhooks::server::Server::start(config).await.expect("server");
        let base = format!("http://{}", server.addr);
        let admin = keys["apiKey"].as_str().expect("key").to_owned();
        let created = reqwest::Client::new()
            .post(format!("{base}/v1/webhooks"))
            .bearer_auth(&admin)
            .json(&json!({"name": "everything", "url": url, "events": ["TicketCreated"]}))
            .send()
            .await
            .expect("webhook");
        assert_eq!(created.status(), 201);
        let webhook: Value = created.json().await.expect("webhook");
        let webhook = format!("{base}/v1/webhooks/{}", webhook["id"].as_str().expect("id"));
        let ingest = keys["ingestKey"].as_str().expect("key").to_owned();

        let phases = [
            Phase { name: "single events, 32 connections", target: Target::Http, connections: 32, batch: 1, rate: None },
            Phase {
                name: "single events, 32 connections, 5,000/s offered",
                target: Target::Http,
                connections: 32,
                batch: 1,
                rate: Some(5_000.0),
            },
            Phase { name: "batches of 100, 8 connections", target: Target::Http, connections: 8, batch: 100, rate: None },
            Phase {
                name: "batches of 100, 8 connections, HTTPS receiver (HTTP/1.1)",
                target: Target::Https1,
                connections: 8,
                batch: 100,
                rate: None,
            },
            Phase {
                name: "batches of 100, 8 connections, HTTPS receiver (HTTP/2)",
                target: Target::Https2,
                connections: 8,
                batch: 100,
                rate: None,
            },
        ];
        let mut rows = Vec::new();
        let mut first = 0;
        let mut target = Target::Http;
        for phase in &phases {
            if phase.target != target {
                target = phase.target;
                let url = match target {
                    Target::Http => &url,
                    Target::Https1 => &https1,
                    Target::Https2 => &https2,
                };
                let changed = reqwest::Client::new()
                    .patch(&webhook)
                    .bearer_auth(&admin)
                    .json(&json!({"url": url}))
                    .send()
                    .await
                    .expect("webhook");
                assert_eq!(changed.status(), 200);
            }
            let (row, next) = run_phase(phase, seconds, &base, &ingest, &arrivals, first).await;
            first = next;
            rows.push(row);
        }
        println!(
            "| phase | requests/s | events/s | deliveries/s | ingest p50 | ingest p99 | event→POST p50 | event→POST p99 | failed |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for row in rows {
            println!(
                "| {} | {:.0} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.1} ms | {:.1} ms | {} |",
                row.name,
                row.requests_per_second,
                row.events_per_second,
                row.deliveries_per_second,
                row.ingest.0.as_secs_f64() * 1e3,
                row.ingest.1.as_secs_f64() * 1e3,
                row.to_post.0.as_secs_f64() * 1e3,
                row.to_post.1.as_secs_f64() * 1e3,
                row.failed,
            );
        }
        server.stop().await.expect("stop");
    });
}
